"""Plain text out of the HTML that feeds put in titles and summaries.

Feeds may carry anything in these fields, including markup a sanitizer would
remove (`<script>`, `onerror=`): reducing to text is what makes them harmless,
so the text of script-like elements is dropped, not just their tags.
"""

from __future__ import annotations

import html
import re
import threading

from lxml import etree

from monitor.core.safetext import clean

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
