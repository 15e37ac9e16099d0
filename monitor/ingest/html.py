"""Plain text out of the HTML that feeds put in titles and summaries.

Feeds may carry anything in these fields, including markup a sanitizer would
remove (`<script>`, `onerror=`): reducing to text is what makes them harmless,
so the text of script-like elements is dropped, not just their tags.
"""

from __future__ import annotations

import functools
import html
import re
import threading

from cssselect import HTMLTranslator
from cssselect.xpath import XPathExpr
from lxml import etree

from monitor.core.errors import NotAFeed
from monitor.core.safetext import clean
from monitor.ingest.sniff import CHARSET, codec

# Elements whose text is code or metadata, never prose.
_DROPPED = frozenset(
    {"script", "style", "template", "noscript", "head", "title", "iframe", "object", "svg", "math"}
)

# Elements that start a new line in a browser: without a separator their words glue together.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th",
        "tr", "ul", "caption", "fieldset", "legend", "body", "html",
    }
)  # fmt: skip

_BLOCK_TAG = re.compile(
    "<(?=/?(?:" + "|".join(sorted(_BLOCKS, key=len, reverse=True)) + r")(?![\w:-]))", re.IGNORECASE
)

# Plenty for a 4,000-character summary; bounds the cost of a 5 MB content:encoded.
MAX_HTML_CHARS = 200_000


class _Parsers(threading.local):
    """One HTML parser per thread: lxml serializes parses that share a parser."""

    def __init__(self) -> None:
        self.html = etree.HTMLParser(
            recover=True,
            no_network=True,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
        )


_parsers = _Parsers()


# Windows-1252 text declared as Latin-1 (or written as `&#146;`) leaves C1 control
# characters where quotes and dashes were; browsers show the Windows-1252 ones.
_C1 = re.compile("[\x80-\x9f]")
_C1_TO_CP1252 = {
    code: bytes([code]).decode("cp1252", errors="ignore") or None for code in range(0x80, 0xA0)
}


def collapse_whitespace(s: str) -> str:
    """Runs of whitespace become one space; leading and trailing whitespace goes."""
    return " ".join(s.split())


def html_to_text(s: str) -> str:
    """The readable text of an HTML fragment, on one line.

    Entities are decoded, tags removed, the contents of script, style and similar
    elements dropped, block elements separated by a space, whitespace collapsed.
    Plain text without `<` passes through (entities decoded), so calling this on
    text that is already plain is harmless. The result is `clean`: no control
    characters, bidi overrides or lone surrogates, whether they came as characters
    or as character references.
    """
    if not s.isascii() and _C1.search(s):
        s = s.translate(_C1_TO_CP1252)
    if "<" not in s:
        return _clean_line(html.unescape(s) if "&" in s else s)
    # A space before every block tag, opening or closing, keeps the words on either
    # side apart. Done on the string, it costs a tenth of padding each element after
    # parsing; a space that lands inside an attribute or a comment is dropped anyway.
    # Cleaned first: lxml would turn a NUL into U+FFFD and drop a lone surrogate.
    spaced = _BLOCK_TAG.sub(" <", clean(s[:MAX_HTML_CHARS]))
    root = etree.fromstring(spaced, _parsers.html)
    if root is None:
        return ""
    # Code-like elements go with their text; their tails (prose after them) stay.
    etree.strip_elements(root, *_DROPPED, with_tail=False)
    text: str = etree.tostring(root, method="text", encoding="unicode", with_tail=False)
    return _clean_line(text)


def _clean_line(text: str) -> str:
    """`text` on one line and `clean`; a removed control leaves no double space."""
    line = collapse_whitespace(text)
    cleaned = clean(line)
    return line if cleaned is line else collapse_whitespace(cleaned)


# --- whole pages (Telegram previews, listing pages) ------------------------------------------


def html_document(body: bytes, content_type: str | None) -> etree._Element:
    """A whole HTML page parsed leniently (broken markup is repaired, never fatal).

    The encoding is the header's charset, else UTF-8 when the bytes are valid UTF-8,
    else what the page's own `<meta charset>` says (lxml reads it). No network, no
    DTD, no entities are ever loaded. Raises NotAFeed for a body with no document in it.
    """
    charset = _charset(content_type)
    if charset is None and _is_utf8(body):
        charset = "utf-8"
    try:
        parser = _page_parser(charset)
    except LookupError:  # a charset Python knows and libxml2 does not
        parser = _page_parser(None)
    try:
        root = etree.fromstring(body, parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise NotAFeed(f"not an HTML page: {exc}") from None
    if root is None:
        raise NotAFeed("an HTML page with nothing in it")
    return root


def _page_parser(encoding: str | None) -> etree.HTMLParser:
    return etree.HTMLParser(
        encoding=encoding,
        recover=True,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


class _Translator(HTMLTranslator):
    """CSS to XPath with `A B` as "a B that has an A ancestor" where A is simple.

    cssselect writes `A B` as `A/descendant::B`: libxml2 then merges one node set per
    A, which costs the square of the matches (a page of 100,000 items took 70 s for
    `div.news a`). Asking each B for an A ancestor is linear, as browsers match.
    """

    def xpath_descendant_combinator(self, left: XPathExpr, right: XPathExpr) -> XPathExpr:
        if left.path or right.path or (right.element == "*" and not right.condition):
            return super().xpath_descendant_combinator(left, right)
        ancestor = f"ancestor::{left.element}"
        if left.condition:
            ancestor += f"[{left.condition}]"
        return XPathExpr(element=right.element, condition=right.condition).add_condition(ancestor)


_TRANSLATOR = _Translator()


@functools.lru_cache(maxsize=256)
def selector(css: str) -> etree.XPath:
    """A compiled CSS selector for HTML; raises cssselect's SelectorError if invalid."""
    return etree.XPath(_TRANSLATOR.css_to_xpath(css))


def matches(selector: etree.XPath, element: etree._Element) -> list[etree._Element]:
    """The elements `selector` finds in and under `element`, in document order."""
    found = selector(element)
    return [e for e in found if isinstance(e, etree._Element)] if isinstance(found, list) else []


def inner_html(element: etree._Element) -> str:
    """An element and what it holds, as HTML (for `html_to_text`), without its tail."""
    return etree.tostring(element, encoding="unicode", method="html", with_tail=False)


def _charset(content_type: str | None) -> str | None:
    match = CHARSET.search(content_type or "")
    return codec(match[1]) if match else None


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
