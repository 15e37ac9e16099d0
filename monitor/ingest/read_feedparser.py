"""feedparser: the universal reader, for whatever the fast path declines.

Ill-formed XML, RSS 0.90, Atom 0.3, HTML entities without a DTD, odd dates. It never
expands a DTD entity or fetches anything: it gets the body as bytes, never a str, and
with the DTD removed (`without_dtd`), its expat running with external entities off.
"""

from __future__ import annotations

import calendar
import codecs
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from monitor.core.errors import NotAFeed
from monitor.ingest import normalize, sniff
from monitor.ingest.entry import Entry, ParsedFeed


def parse_with_feedparser(body: bytes, base_url: str, content_type: str | None) -> ParsedFeed:
    """Read any RSS or Atom dialect with feedparser, which never fetches: it gets bytes."""
    # No content-location: with one, feedparser resolves permalink GUIDs against it,
    # and a feed that moved would present every entry as new. Links are resolved
    # against base_url in `normalize.entry`, as on the other paths. No sanitizing or rewriting
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
        title=normalize.feed_title(feed.get("title")),
        lang=normalize.language(feed_lang),
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
    if sniff.DTD.search(body):
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
    declared = sniff.XML_DECLARATION.match(body.lstrip()[:256])
    charset = sniff.CHARSET.search(content_type or "")
    names = [declared.group(1).decode("ascii") if declared else None]
    names.append(charset.group(1) if charset else None)
    for name in names:
        codec = sniff.codec(name) if name else None
        if codec and codec not in sniff.ASCII_SAFE_CODECS and codec not in candidates:
            candidates.append(codec)
    return candidates


def _feedparser_entry(e: dict[str, Any], base_url: str, feed_lang: str | None) -> Entry:
    content = e.get("content") or [{}]
    source = e.get("source") or {}
    return normalize.entry(
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
