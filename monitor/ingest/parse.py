"""The parse stage: feed bytes in, normalized entries out (no IO, no clock).

Three readers share one normalization (`_entry`):

- JSON Feed 1.0/1.1 is read with `json` (feedparser 6 does not know it).
- The fast path reads well-formed RSS 2.0/0.9x, RSS 1.0 (RDF) and Atom 1.0 with
  lxml. It handles only what it can read exactly as feedparser would and declines
  everything else: a DTD, an encoding it cannot vouch for, an element that
  feedparser would map onto a field the fast path does not read, a date outside
  RFC 822 or RFC 3339.
- feedparser reads whatever the fast path declined: ill-formed XML, RSS 0.90,
  Atom 0.3, HTML entities without a DTD, odd dates.

Neither XML reader ever expands a DTD entity or fetches anything: documents with
a DOCTYPE or ENTITY declaration never reach lxml (which is configured not to
resolve entities, load DTDs or touch the network in any case), and feedparser
gets them with the DTD removed (`without_dtd`), its expat running with external
entities off. feedparser never fetches either: it is handed bytes, never a str.
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import html
import json
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any
from urllib.parse import urljoin

import feedparser
from lxml import etree

from monitor.core.errors import NotAFeed
from monitor.core.safetext import cap, clean
from monitor.ingest.entry import Entry, ParsedFeed
from monitor.ingest.html import html_to_text
from monitor.ingest.urls import canonical_url

__all__ = [
    "OUTLET_MAX_CHARS",
    "SUMMARY_MAX_CHARS",
    "TITLE_MAX_CHARS",
    "URL_MAX_CHARS",
    "entry_key",
    "parse",
    "parse_fast",
    "parse_with_feedparser",
    "without_dtd",
]

TITLE_MAX_CHARS = 500
SUMMARY_MAX_CHARS = 4000
OUTLET_MAX_CHARS = 200
LANG_MAX_CHARS = 35
URL_MAX_CHARS = 2048
"""A longer link is no link: PostgreSQL cannot index it (2,704 bytes at most)."""

_ATOM = "http://www.w3.org/2005/Atom"
_RSS1 = "http://purl.org/rss/1.0/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_DC = "http://purl.org/dc/elements/1.1/"
_DCTERMS = "http://purl.org/dc/terms/"
_CONTENT = "http://purl.org/rss/1.0/modules/content/"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_RDF_ABOUT = f"{{{_RDF}}}about"


def parse(body: bytes, base_url: str, content_type: str | None = None) -> ParsedFeed:
    """Read a feed document into normalized entries.

    `base_url` resolves relative links (pass the URL the body came from, after
    redirects). `content_type` is the response's Content-Type header; its charset
    matters for documents that do not declare their encoding.

    Raises NotAFeed for an empty body, an HTML page, random bytes, or JSON that
    is not a JSON Feed. A feed with no entries is a feed.
    """
    start = _first_significant_bytes(body)
    if not start:
        raise NotAFeed("empty body")
    if start.startswith((b"{", b"[")):
        return _parse_json_feed(body, base_url)
    if _HTML_START.match(start):
        raise NotAFeed("an HTML page, not a feed")
    return parse_fast(body, base_url, content_type) or parse_with_feedparser(
        body, base_url, content_type
    )


def entry_key(guid: str | None, url: str | None, title: str, link: str | None) -> str:
    """The entry's identity within its feed: digest of its GUID, else URL, else title + link."""
    if guid:
        identity = f"guid:{guid}"
    elif url:
        identity = f"url:{url}"
    else:
        identity = f"hash:{title}\n{link or ''}"
    return hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _entry(
    *,
    guid: str | None,
    link: str | None,
    title: str,
    summary: str,
    published: datetime | None,
    base_url: str,
    outlet: str | None,
    lang: str | None,
) -> Entry:
    guid = guid.strip() if guid else None
    link = link.strip() if link else None
    url = canonical_url(link, base_url)
    title = html_to_text(title)
    # Text is made safe (by html_to_text, `clean`) and capped here, once. The key is
    # taken from the raw GUID, the whole title and the full URL: capping changes no
    # item's identity.
    return Entry(
        key=entry_key(guid or None, url, title, link),
        url=url if url and len(url) <= URL_MAX_CHARS else None,
        title=cap(title, TITLE_MAX_CHARS),
        summary=cap(html_to_text(summary), SUMMARY_MAX_CHARS),
        published=published,
        guid=clean(guid) or None if guid else None,
        outlet=cap(html_to_text(outlet), OUTLET_MAX_CHARS) or None if outlet else None,
        lang=_language(lang),
    )


def _feed_title(value: str | None) -> str | None:
    return cap(html_to_text(value), TITLE_MAX_CHARS) if value else None


def _language(value: str | None) -> str | None:
    if not value:
        return None
    tag = clean(value).strip().lower().replace("_", "-")[:LANG_MAX_CHARS]
    return tag or None


# --- what every document is checked for first ------------------------------------------------

_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
_HTML_START = re.compile(rb"<html[\s>]", re.IGNORECASE)
_PROLOG_NOISE = re.compile(
    rb"\s*(?:<\?xml[^>]*>\s*)?(?:(?:<!--.*?-->|<!doctype[^>\[]*>)\s*)*", re.DOTALL | re.IGNORECASE
)


def _first_significant_bytes(body: bytes) -> bytes:
    """The body's start past a UTF-8 BOM, whitespace, the XML declaration, comments, a DOCTYPE."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[3:]
    head = body[:4096]
    match = _PROLOG_NOISE.match(head)
    return head[match.end() if match else 0 :].lstrip()


# --- JSON Feed ----------------------------------------------------------------------------------


def _parse_json_feed(body: bytes, base_url: str) -> ParsedFeed:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise NotAFeed(f"invalid JSON: {error}") from None
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(version, str) or not version.startswith(
        ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
    ):
        raise NotAFeed("JSON, but not a JSON Feed")
    items = document.get("items")
    feed_lang = _json_str(document, "language")
    entries = [
        _json_feed_entry(item, base_url, feed_lang)
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict)
    ]
    title = _json_str(document, "title")
    return ParsedFeed(
        entries=entries,
        title=_feed_title(title),
        lang=_language(feed_lang),
        parser="jsonfeed",
    )


def _json_feed_entry(item: Mapping[str, Any], base_url: str, feed_lang: str | None) -> Entry:
    raw_id = item.get("id")
    guid = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    summary = (
        _json_str(item, "summary")
        or _json_str(item, "content_html")
        or _json_str(item, "content_text")
        or ""
    )
    published = _rfc3339(_json_str(item, "date_published") or "") or _rfc3339(
        _json_str(item, "date_modified") or ""
    )
    return _entry(
        guid=guid,
        link=_json_str(item, "url") or _json_str(item, "external_url"),
        title=_json_str(item, "title") or "",
        summary=summary,
        published=published,
        base_url=base_url,
        outlet=None,
        lang=_json_str(item, "language") or feed_lang,
    )


def _json_str(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) else None


# --- feedparser: the universal path -------------------------------------------------------------


def parse_with_feedparser(body: bytes, base_url: str, content_type: str | None) -> ParsedFeed:
    """Read any RSS or Atom dialect with feedparser, which never fetches: it gets bytes."""
    # No content-location: with one, feedparser resolves permalink GUIDs against it,
    # and a feed that moved would present every entry as new. Links are resolved
    # against base_url in `_entry`, as on the other paths. No sanitizing or rewriting
    # of markup either: `html_to_text` is the one sanitizer, whichever parser ran.
    body, content_type = without_dtd(body, content_type)
    headers = {"content-type": content_type} if content_type else {}
    result = feedparser.parse(
        bytes(body), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    if not result.get("version"):
        # Also for XML that merely contains <item> elements, and for Microsoft CDF.
        raise NotAFeed("neither RSS nor Atom")
    feed = result.feed
    feed_lang = feed.get("language") or _detail_language(feed, "title")
    return ParsedFeed(
        entries=[_feedparser_entry(e, base_url, feed_lang) for e in result.entries],
        title=_feed_title(feed.get("title")),
        lang=_language(feed_lang),
        parser="feedparser",
    )


def without_dtd(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """The document with its DOCTYPE and entity declarations removed, for feedparser.

    feedparser strips DOCTYPEs itself, but only those that start a line: after
    `<?xml ...?>` on the same line, a billion-laughs DTD reaches expat, which
    expands up to its own limit (about 8 MB, 0.6 s) before giving up. So no DTD
    reaches feedparser. Undeclared entities then read as text; HTML's named
    entities (`&eacute;`) still work, through feedparser's lenient parser.

    The scan is exact on bytes in any ASCII-compatible encoding. A document that
    feedparser might decode otherwise (UTF-16/32, or a declared or HTTP charset
    such as UTF-7) is decoded here and, if it declares a DTD, handed on as UTF-8.
    """
    for codec in _wide_codecs(body, content_type):
        text = body.decode(codec, errors="replace").lstrip("\ufeff")
        if _DTD_TEXT.search(text):
            text = _XML_DECLARATION_TEXT.sub("<?xml version='1.0' encoding='utf-8'?>", text, 1)
            return _strip_dtd(text).encode("utf-8"), "application/xml; charset=utf-8"
    if _DTD.search(body):
        return _strip_dtd(body.decode("latin-1")).encode("latin-1"), content_type
    return body, content_type


_DTD_TEXT = re.compile(r"<!(?i:doctype|entity)")
_XML_DECLARATION_TEXT = re.compile(r"\s*<\?xml[^>]*\?>")
# Prolog tokens: comments, processing instructions, the start of a DTD declaration,
# and the start of the root element, where the prolog ends.
_PROLOG_TOKEN = re.compile(r"<!--.*?-->|<\?.*?\?>|<!(?i:doctype|entity)|<[^!?]", re.DOTALL)
# Tokens inside a declaration: quoted literals and comments may hold brackets and ">".
_DECLARATION_TOKEN = re.compile(r"\"[^\"]*\"|'[^']*'|<!--.*?-->|[\[\]>]", re.DOTALL)


def _strip_dtd(text: str) -> str:
    """`text` without the DOCTYPE and ENTITY declarations of its prolog."""
    kept: list[str] = []
    position = scan = 0
    while (token := _PROLOG_TOKEN.search(text, scan)) is not None:
        mark = token.group()
        if mark.startswith(("<!--", "<?")):
            scan = token.end()
        elif mark.startswith("<!"):
            kept.append(text[position : token.start()])
            position = scan = _declaration_end(text, token.end())
        else:
            break  # the root element: the prolog is over
    kept.append(text[position:])
    return "".join(kept)


def _declaration_end(text: str, start: int) -> int:
    """Where the declaration opened just before `start` ends (the whole text if never)."""
    depth = 0
    for token in _DECLARATION_TOKEN.finditer(text, start):
        mark = token.group()
        if mark == "[":
            depth += 1
        elif mark == "]":
            depth = max(depth - 1, 0)
        elif mark == ">" and depth == 0:
            return token.end()
    return len(text)


def _wide_codecs(body: bytes, content_type: str | None) -> list[str]:
    """Codecs feedparser might decode this body with in which ASCII is not itself."""
    head = body[:64]
    candidates = []
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        candidates.append("utf-32")
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates.append("utf-16")
    elif head.startswith((b"<\x00\x00\x00", b"\x00\x00\x00<")):
        candidates.append("utf-32-le" if head[0] else "utf-32-be")
    elif b"\x00" in head:
        candidates.append("utf-16-le" if head[0] else "utf-16-be")
    declared = _XML_DECLARATION.match(body.lstrip()[:256])
    charset = _CHARSET.search(content_type or "")
    names = [declared.group(1).decode("ascii") if declared else None]
    names.append(charset.group(1) if charset else None)
    for name in names:
        codec = _codec(name) if name else None
        if codec and codec not in _ASCII_SAFE_CODECS and codec not in candidates:
            candidates.append(codec)
    return candidates


def _feedparser_entry(e: dict[str, Any], base_url: str, feed_lang: str | None) -> Entry:
    content = e.get("content") or [{}]
    source = e.get("source") or {}
    return _entry(
        guid=e.get("id"),
        link=e.get("link"),
        title=e.get("title", ""),
        summary=e.get("summary") or content[0].get("value") or "",
        # dict.get: FeedParserDict.get maps a missing updated_parsed onto
        # published_parsed, with a DeprecationWarning.
        published=_struct_time_utc(dict.get(e, "published_parsed"))
        or _struct_time_utc(dict.get(e, "updated_parsed")),
        base_url=base_url,
        outlet=source.get("title"),
        lang=e.get("language") or _detail_language(e, "title") or feed_lang,
    )


def _detail_language(mapping: Mapping[str, Any], field: str) -> str | None:
    detail = mapping.get(f"{field}_detail") or {}
    language = detail.get("language")
    return language if isinstance(language, str) else None


def _struct_time_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


# --- the fast path: lxml, on documents it can read exactly ---------------------------------------


class _Decline(Exception):
    """The fast path cannot vouch for this document; feedparser reads it."""


class _XMLParsers(threading.local):
    """One parser per thread: lxml serializes parses that share a parser."""

    def __init__(self) -> None:
        self.strict = etree.XMLParser(
            recover=False,
            resolve_entities=False,
            load_dtd=False,
            no_network=True,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
        )


_xml_parsers = _XMLParsers()

# Any DTD at all: the fast path reads documents without one only.
_DTD = re.compile(rb"<!(?i:doctype|entity)")
_XML_DECLARATION = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
# Encodings in which every ASCII character is the same single byte and no byte
# sequence decodes to ASCII otherwise: a byte scan for "<!DOCTYPE" is exact in them.
_ASCII_SAFE_CODECS = frozenset(
    {
        "utf-8", "ascii", "latin-1", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254",
        "cp1255", "cp1256", "cp1257", "cp1258", "koi8-r", "koi8-u", "euc_jp", "euc_kr",
        "gb2312", "gbk", "gb18030", "big5", "shift_jis", "cp932", "cp949", "cp950",
        "tis-620", "cp874",
    }
    | {f"iso8859-{n}" for n in range(2, 17) if n != 12}
)  # fmt: skip


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _fast_path_encoding_ok(body: bytes, content_type: str | None) -> bool:
    if body.startswith(_BOMS[1:]) or body[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return False
    if b"\x00" in body[:64]:
        return False  # UTF-16/32 without a BOM
    declared = _XML_DECLARATION.match(body.removeprefix(codecs.BOM_UTF8).lstrip()[:256])
    declared_codec = _codec(declared.group(1).decode("ascii")) if declared else "utf-8"
    if declared_codec not in _ASCII_SAFE_CODECS:
        return False
    charset = _CHARSET.search(content_type or "")
    # feedparser lets the HTTP charset win over the document's declaration; the fast
    # path reads what the document declares, so it only goes where the two agree.
    return charset is None or _codec(charset.group(1)) == declared_codec


def parse_fast(body: bytes, base_url: str, content_type: str | None) -> ParsedFeed | None:
    """Read a plain, well-formed RSS or Atom feed with lxml, or None to let feedparser read it."""
    try:
        return _parse_fast(body, base_url, content_type)
    except _Decline:
        return None


def _parse_fast(body: bytes, base_url: str, content_type: str | None) -> ParsedFeed:
    if _DTD.search(body) or not _fast_path_encoding_ok(body, content_type):
        raise _Decline("DTD or encoding")
    try:
        root = etree.fromstring(body, _xml_parsers.strict)
    except etree.XMLSyntaxError:
        raise _Decline("not well-formed") from None
    bases = _XmlBase(base_url) if b"xml:base" in body else None
    read_entry: Callable[[etree._Element], Entry]
    if root.tag == "rss":
        items, title, feed_lang = _rss_shape(root)
        read_entry = partial(_rss_entry, ns="", base_url=base_url, bases=bases, feed_lang=feed_lang)
    elif root.tag == f"{{{_RDF}}}RDF":
        items, title, feed_lang = _rdf_shape(root)
        read_entry = partial(
            _rss_entry, ns=_RSS1, base_url=base_url, bases=bases, feed_lang=feed_lang
        )
    elif root.tag == f"{{{_ATOM}}}feed":
        items, title, feed_lang = _atom_shape(root)
        read_entry = partial(_atom_entry, base_url=base_url, bases=bases, feed_lang=feed_lang)
    else:
        raise _Decline(f"root element {root.tag!r}")
    return ParsedFeed(
        entries=[read_entry(item) for item in items],
        title=_feed_title(title),
        lang=_language(feed_lang),
        parser="lxml",
    )


_Shape = tuple[list[etree._Element], str | None, str | None]


def _rss_shape(root: etree._Element) -> _Shape:
    """RSS 0.9x/2.0: the items, title and language of its one channel."""
    channel = root.find("channel")
    if channel is None or len(root) != 1:
        raise _Decline("rss without exactly one channel")
    items = channel.findall("item")
    if sum(1 for _ in root.iter("item")) != len(items):
        raise _Decline("items outside the channel")
    lang = _child_text(channel, "language") or _child_text(channel, f"{{{_DC}}}language")
    lang = lang or root.get(_XML_LANG) or channel.get(_XML_LANG)
    return items, _child_text(channel, "title"), lang


def _rdf_shape(root: etree._Element) -> _Shape:
    """RSS 1.0: items are the RDF root's children, beside the channel."""
    channel = root.find(f"{{{_RSS1}}}channel")
    items = root.findall(f"{{{_RSS1}}}item")
    if channel is None or sum(1 for _ in root.iter(f"{{{_RSS1}}}item", "item")) != len(items):
        raise _Decline("RDF items in unexpected places")
    lang = _child_text(channel, f"{{{_DC}}}language") or root.get(_XML_LANG)
    return items, _child_text(channel, f"{{{_RSS1}}}title"), lang


def _atom_shape(root: etree._Element) -> _Shape:
    """Atom 1.0: the feed's entries, title and xml:lang."""
    items = root.findall(f"{{{_ATOM}}}entry")
    if sum(1 for _ in root.iter(f"{{{_ATOM}}}entry")) != len(items):
        raise _Decline("nested Atom entries")
    title_element = root.find(f"{{{_ATOM}}}title")
    title = _atom_text(title_element) if title_element is not None else None
    return items, title, root.get(_XML_LANG)


class _XmlBase:
    """Resolves xml:base the way feedparser does: each ancestor's, joined from the outside in."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def of(self, element: etree._Element, start: str | None = None) -> str:
        chain = [element, *element.iterancestors()]
        base = self.base_url if start is None else start
        for node in reversed(chain):
            value = node.get(_XML_BASE)
            if value is not None:
                base = urljoin(base, value.strip())
        return base


# Local names that feedparser maps onto a field we read (title, link, id, summary,
# content, dates, source, language) in some namespace. Met in a namespace the fast
# path does not read, or nested where it does not look, they send the feed to feedparser.
_SENSITIVE = frozenset(
    {
        "title", "link", "guid", "id", "description", "summary", "content", "encoded", "body",
        "fullitem", "abstract", "pubdate", "pubDate", "published", "issued", "updated",
        "modified", "date", "created", "source", "language", "item", "entry", "info",
        "tagline", "subtitle", "url", "uri", "homepage", "href",
    }
)  # fmt: skip


def _rss_fields(rss: str) -> dict[str, str]:
    """Element tag -> field, for items in the `rss` namespace ("" for RSS 0.9x/2.0)."""
    return {
        f"{rss}title": "title",
        f"{rss}link": "link",
        f"{rss}description": "description",
        f"{rss}guid": "guid",
        f"{rss}pubDate": "published",
        f"{rss}source": "source",
        f"{{{_DC}}}title": "title",
        f"{{{_DC}}}date": "updated",
        f"{{{_DC}}}language": "language",
        f"{{{_DC}}}description": "description",
        f"{{{_DCTERMS}}}issued": "published",
        f"{{{_DCTERMS}}}modified": "updated",
        f"{{{_CONTENT}}}encoded": "content",
    }


_RSS_FIELDS = _rss_fields("")
_RSS1_FIELDS = _rss_fields(f"{{{_RSS1}}}")


def _rss_entry(
    item: etree._Element,
    ns: str,
    base_url: str,
    bases: _XmlBase | None,
    feed_lang: str | None,
) -> Entry:
    fields: dict[str, etree._Element] = {}
    names = _RSS1_FIELDS if ns else _RSS_FIELDS
    for child in item:
        name = names.get(child.tag)
        if name is None:
            for media_field, element in _check_ignorable(child):
                fields.setdefault(media_field, element)
                if media_field == "media-description" and "description" not in fields:
                    fields.setdefault("media-description-first", element)
            continue
        if name in fields:
            raise _Decline(f"two {name} elements in one item")
        if len(child):
            raise _Decline(f"markup inside {child.tag}")
        fields[name] = child
    _check_media_texts(fields, own_title="title", own_summary="description")
    guid_element = fields.get("guid")
    guid = guid_element.text if guid_element is not None else None
    if guid is None and ns:
        guid = item.get(_RDF_ABOUT)
    link = _double_escaped_link(_text(fields.get("link")))
    if guid_element is not None and guid_element.get("isPermaLink", "true") == "true":
        if bases is not None:
            _check_guid_unchanged_by_base(guid, bases, guid_element)
        if "link" not in fields:
            link = guid  # feedparser: a permalink GUID doubles as the link
    source = fields.get("source")
    base = bases.of(fields["link"]) if bases and "link" in fields else base_url
    return _entry_checked(
        guid=guid,
        link=link,
        title=_text(fields.get("title")) or "",
        summary=_text(fields.get("description"))
        or _text(fields.get("media-description"))
        or _text(fields.get("content"))
        or "",
        published=_field_date(fields, "published") or _field_date(fields, "updated"),
        base_url=base,
        outlet=_text(source),
        lang=item.get(_XML_LANG) or _text(fields.get("language")) or feed_lang,
    )


def _atom_entry(
    entry: etree._Element, base_url: str, bases: _XmlBase | None, feed_lang: str | None
) -> Entry:
    fields, link_element = _atom_fields(entry)
    id_element = fields.get("id")
    guid = _text(id_element)
    if bases is not None and id_element is not None:
        _check_guid_unchanged_by_base(guid, bases, id_element)
    link = link_element.get("href") if link_element is not None else None
    if link is None:
        link = guid  # feedparser: the id doubles as the link when no alternate link exists
    elif bases is not None and link_element is not None:
        base_url = bases.of(link_element)
    source_title = fields["source"].find(f"{{{_ATOM}}}title") if "source" in fields else None
    return _entry_checked(
        guid=guid,
        link=link,
        title=_atom_field(fields, "title"),
        summary=_atom_field(fields, "summary")
        or _text(fields.get("media-description"))
        or _atom_field(fields, "content"),
        published=_field_date(fields, "published") or _field_date(fields, "updated"),
        base_url=base_url,
        outlet=_atom_text(source_title) if source_title is not None else None,
        lang=entry.get(_XML_LANG) or _text(fields.get("language")) or feed_lang,
    )


_ATOM_FIELDS = {
    f"{{{_ATOM}}}{name}": name
    for name in ("id", "title", "summary", "content", "published", "updated", "source")
} | {f"{{{_DC}}}language": "language"}
# Containers whose inner title/uri/id feedparser files under the author, not the entry.
_ATOM_PEOPLE = frozenset({f"{{{_ATOM}}}author", f"{{{_ATOM}}}contributor"})


def _atom_fields(
    entry: etree._Element,
) -> tuple[dict[str, etree._Element], etree._Element | None]:
    """The entry's elements by field name, and its last alternate HTML link (feedparser's pick)."""
    fields: dict[str, etree._Element] = {}
    link_element = None
    for child in entry:
        name = _ATOM_FIELDS.get(child.tag)
        if name is not None:
            if name in fields:
                raise _Decline(f"two {name} elements in one entry")
            if name in ("id", "published", "updated") and len(child):
                raise _Decline(f"markup inside {name}")
            fields[name] = child
        elif child.tag == f"{{{_ATOM}}}link":
            if child.get("href") is None:
                raise _Decline("Atom link without href")
            rel = child.get("rel", "alternate")
            if rel == "alternate" and _content_type(child.get("type", "html")) in _HTML_TYPES:
                link_element = child
        elif child.tag not in _ATOM_PEOPLE:
            for media_field, element in _check_ignorable(child):
                fields.setdefault(media_field, element)
                if media_field == "media-description" and "summary" not in fields:
                    fields.setdefault("media-description-first", element)
    _check_media_texts(fields, own_title="title", own_summary="summary")
    return fields, link_element


def _atom_field(fields: Mapping[str, etree._Element], name: str) -> str:
    element = fields.get(name)
    return (_atom_text(element) if element is not None else None) or ""


_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def _content_type(value: str) -> str:
    value = value.lower()
    return {"text": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}.get(
        value, value
    )


def _atom_text(element: etree._Element) -> str | None:
    """An Atom text construct as HTML (type html or xhtml) or text (type text)."""
    kind = _content_type(element.get("type", "text"))
    if kind == "application/xhtml+xml":
        inner = element[0] if len(element) == 1 and element.text is None else element
        return html.escape(inner.text or "", quote=False) + "".join(
            etree.tostring(child, encoding="unicode", with_tail=True) for child in inner
        )
    if len(element):
        raise _Decline("markup inside a text construct that is not xhtml")
    if kind not in ("text/plain", "text/html"):
        raise _Decline(f"content of type {kind}")
    return element.text


def _check_guid_unchanged_by_base(
    guid: str | None, bases: _XmlBase, element: etree._Element
) -> None:
    """Decline when feedparser would resolve this GUID against an xml:base."""
    if not guid:
        return
    try:
        unchanged = urljoin(bases.of(element, ""), guid) == guid
    except ValueError:
        unchanged = False
    if not unchanged:
        raise _Decline("a GUID that xml:base would rewrite")


_MEDIA = "{http://search.yahoo.com/mrss/}"
_MEDIA_TEXTS = {f"{_MEDIA}title": "media-title", f"{_MEDIA}description": "media-description"}


def _check_ignorable(element: etree._Element) -> list[tuple[str, etree._Element]]:
    """Decline when an element we skip may carry a field feedparser would read.

    Media RSS is common and mostly harmless: feedparser reads only media:title and
    media:description into entry fields. Nested in media:group or media:content they
    are returned, for `_check_media_texts` to weigh against the item's own fields.
    """
    media_texts = []
    for node in element.iter() if len(element) else (element,):
        tag = node.tag
        if not isinstance(tag, str):
            continue
        if tag.startswith(_MEDIA):
            if tag in _MEDIA_TEXTS:
                if node is element or len(node):
                    raise _Decline(f"{tag} directly in an item, or with markup")
                media_texts.append((_MEDIA_TEXTS[tag], node))
        elif tag.rpartition("}")[2] in _SENSITIVE:
            raise _Decline(f"unread element {tag}")
    return media_texts


def _check_media_texts(
    fields: Mapping[str, etree._Element], own_title: str, own_summary: str
) -> None:
    """Decline where a nested media:title or media:description would change what feedparser reads.

    The entry's own non-empty title always wins over a deeper media:title. A
    media:description is the summary when the entry has neither summary nor content;
    met before the entry's own summary, it turns that into content in feedparser.
    """
    if "media-title" in fields and not (_text(fields.get(own_title)) or "").strip():
        raise _Decline("media:title would be the title")
    if "media-description" in fields:
        if "media-description-first" in fields and own_summary in fields:
            raise _Decline("media:description before the entry's own summary")
        if own_summary not in fields and "content" in fields:
            raise _Decline("media:description and content compete for the summary")


def _double_escaped_link(link: str | None) -> str | None:
    """Undo "&amp;" and "&name;" left in a link by double escaping, as feedparser does."""
    if link is None or "&" not in link:
        return link
    return _ENTITY_IN_LINK.sub(r"&\g<1>", link.replace("&amp;", "&"))


_ENTITY_IN_LINK = re.compile("&([A-Za-z0-9_]+);")


def _entry_checked(*, guid: str | None, link: str | None, **fields: Any) -> Entry:
    if guid is not None and not guid.strip():
        raise _Decline("empty GUID")
    if not guid and link and link.strip() and canonical_url(link, fields["base_url"]) is None:
        raise _Decline("identity would rest on a link feedparser may rewrite")
    return _entry(guid=guid, link=link, **fields)


def _text(element: etree._Element | None) -> str | None:
    return element.text if element is not None else None


def _child_text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    return child.text if child is not None else None


def _field_date(fields: Mapping[str, etree._Element], name: str) -> datetime | None:
    element = fields.get(name)
    if element is None:
        return None
    value = (element.text or "").strip()
    parsed = _rfc822(value) or _rfc3339(value)
    if parsed is None:
        raise _Decline(f"date {value!r} outside RFC 822 and RFC 3339")
    return parsed


# --- dates: the two formats feeds actually use, read strictly ------------------------------------

_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}
_ZONES = {"GMT": 0, "UT": 0, "UTC": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5}
_ZONES |= {"MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s*)?(\d{1,2})\s+([A-Z][a-z]{2})\s+(\d{4})\s+"
    r"(\d{2}):(\d{2})(?::(\d{2}))?\s+([+-]\d{4}|[A-Z]{1,3})"
)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def _rfc822(value: str) -> datetime | None:
    match = _RFC822.fullmatch(value)
    if match is None or match[2] not in _MONTHS:
        return None
    day, _, year, hour, minute, second, zone = match.groups()
    if zone[0] in "+-":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        offset = -offset if zone[0] == "-" else offset
    elif zone in _ZONES:
        offset = timedelta(hours=_ZONES[zone])
    else:
        return None
    return _aware((year, _MONTHS[match[2]], day, hour, minute, second or "0"), timezone(offset))


def _rfc3339(value: str) -> datetime | None:
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    if zone in "Zz":
        tz = UTC
    else:
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        tz = timezone(-offset if zone[0] == "-" else offset)
    return _aware((year, month, day, hour, minute, second), tz)


def _aware(parts: tuple[str | int, ...], tz: timezone) -> datetime | None:
    """Year, month, day, hour, minute, second in `tz`, as UTC; None if no such moment."""
    try:
        year, month, day, hour, minute, second = (int(part) for part in parts)
        return datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
