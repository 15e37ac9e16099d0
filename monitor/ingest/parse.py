"""The parse stage: feed bytes in, normalized entries out (no IO, no clock).

`parse` looks at the first bytes and hands the document to one of three readers,
one module each, which all build entries through one normalization
(`normalize.entry`: identity key, canonical URL, plain text, caps, dates):

- `read_json`: JSON Feed 1.0/1.1, with `json` (feedparser 6 does not know it).
- `read_xml`: the fast path. Well-formed RSS 2.0/0.9x, RSS 1.0 (RDF) and Atom 1.0,
  with lxml, exactly as feedparser would read them; it declines everything else.
- `read_feedparser`: whatever the fast path declined: ill-formed XML, RSS 0.90,
  Atom 0.3, HTML entities without a DTD, odd dates.

Two sources are HTML pages, not feeds, and are read as what their config says they
are (`sources`), never sniffed: `read_telegram` (a public Telegram channel's web
preview) and `read_page` (a listing page, with the config's CSS selectors).

Neither XML reader ever expands a DTD entity or fetches anything: documents with
a DOCTYPE or ENTITY declaration never reach lxml (which is configured not to
resolve entities, load DTDs or touch the network in any case), and feedparser
gets them with the DTD removed (`without_dtd`), its expat running with external
entities off. feedparser never fetches either: it is handed bytes, never a str.
"""

from __future__ import annotations

import codecs
import re

from monitor.core.errors import NotAFeed
from monitor.ingest.entry import ParsedFeed
from monitor.ingest.read_json import parse_json_feed
from monitor.ingest.read_xml import parse_fast
from monitor.ingest.sources import PageSource, Source, TelegramSource

# The HTML source readers (and cssselect) are imported when a source needs them: a
# child that reads only feeds never loads them. So is feedparser, when the fast path
# first declines a document.

__all__ = ["parse"]


def parse(
    body: bytes, base_url: str, content_type: str | None = None, source: Source | None = None
) -> ParsedFeed:
    """Read a feed document (or the page of a `source` that is no feed) into entries.

    `base_url` resolves relative links (pass the URL the body came from, after
    redirects). `content_type` is the response's Content-Type header; its charset
    matters for documents that do not declare their encoding.

    Raises NotAFeed for an empty body, an HTML page, random bytes, or JSON that
    is not a JSON Feed. A feed with no entries is a feed. A page `source` whose
    `items` selector matches nothing raises NoMatches.
    """
    if isinstance(source, TelegramSource):
        from monitor.ingest.read_telegram import parse_telegram  # noqa: PLC0415

        return parse_telegram(body, base_url, content_type)
    if isinstance(source, PageSource):
        from monitor.ingest.read_page import parse_page  # noqa: PLC0415

        return parse_page(body, base_url, content_type, source)
    start = _first_significant_bytes(body)
    if not start:
        raise NotAFeed("empty body")
    if start.startswith((b"{", b"[")):
        return parse_json_feed(body, base_url)
    if _HTML_START.match(start):
        raise NotAFeed("an HTML page, not a feed")
    fast = parse_fast(body, base_url, content_type)
    if fast is not None:
        return fast
    from monitor.ingest.read_feedparser import parse_with_feedparser  # noqa: PLC0415

    return parse_with_feedparser(body, base_url, content_type)


# --- what every document is checked for first ------------------------------------------------

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
