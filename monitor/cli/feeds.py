"""What the `monitor feeds` commands find out about an address: is it a feed, which
feeds does a page point to, and what should a new feed be called.

Fetching is the service's own `Fetcher` (its limits, timeouts and user agent) and
reading is its own `parse`: a feed these tools accept is one the service can read.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.core.errors import FeedError, NotAFeed
from monitor.ingest.discover import feed_links, usual_feed_urls
from monitor.ingest.entry import ParsedFeed
from monitor.ingest.parse import parse
from monitor.ingest.sources import Source

if TYPE_CHECKING:
    from monitor.ingest.fetch import Fetcher, FetchResult


@dataclass(frozen=True, slots=True)
class Feed:
    """An address that answered with a feed that has entries."""

    url: str
    """The address as asked for (what goes into the config)."""
    final_url: str
    """Where it was read from, after redirects."""
    parsed: ParsedFeed


@dataclass(frozen=True, slots=True)
class Page:
    """An address that answered with something other than a feed."""

    url: str
    result: FetchResult
    problem: str


async def probe(fetcher: Fetcher, url: str, source: Source | None = None) -> Feed | Page:
    """Fetch `url` once and read it (as `source` says, for a Telegram channel or a page
    that is no feed); a fetch failure raises `FeedError`."""
    result = await fetcher.fetch(url)
    try:
        parsed = await asyncio.to_thread(
            parse, result.body, result.url, result.content_type, source
        )
    except NotAFeed as exc:
        return Page(url, result, str(exc))
    if not parsed.entries:
        return Page(url, result, "a feed with no entries")
    return Feed(url, result.url, parsed)


async def discover(fetcher: Fetcher, url: str) -> list[Feed]:
    """The feeds at `url`: itself if it is one, else those its page links to or that sit
    at the usual paths of its site, each fetched and read. Raises `FeedError` when `url`
    itself cannot be fetched."""
    found = await probe(fetcher, url)
    if isinstance(found, Feed):
        return [found]
    linked = feed_links(found.result.body, found.result.url)
    candidates = list(dict.fromkeys([*linked, *usual_feed_urls(found.result.url)]))
    candidates = [c for c in candidates if c not in (url, found.result.url)]
    answers = await asyncio.gather(
        *(probe(fetcher, candidate) for candidate in candidates), return_exceptions=True
    )
    feeds: list[Feed] = []
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, FeedError):
            raise answer
        # Two addresses of one feed (a redirect, a trailing slash) are listed once.
        if isinstance(answer, Feed) and all(f.final_url != answer.final_url for f in feeds):
            feeds.append(answer)
    return feeds


_NOT_SLUG = re.compile(r"[^\w]+")


def slug(text: str) -> str:
    """`"RIA Novosti: Top"` → `"ria-novosti-top"`; letters of any script are kept."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NOT_SLUG.sub("-", folded).strip("-_")[:60].strip("-_")


def unique_name(wanted: str, taken: Collection[str], joiner: str = "-") -> str:
    """`wanted`, or `wanted-2`, `wanted-3`, ... : the first not in `taken`."""
    if wanted not in taken:
        return wanted
    number = 2
    while f"{wanted}{joiner}{number}" in taken:
        number += 1
    return f"{wanted}{joiner}{number}"


def name_for(feed_title: str | None, url: str) -> str:
    """A slug-like feed name: of the feed's title, else of its site's host."""
    return slug(feed_title or "") or slug(urlsplit(url).hostname or "") or "feed"
