"""Reading a Telegram channel's preview back past its first page, so a burst is not lost.

`https://t.me/s/CHANNEL` shows the latest twenty or so posts; older ones are on
`?before=ID` pages (the preview's own "load more" goes to `/s/CHANNEL?before=ID`, where
ID is the oldest post shown). A channel that posted more than a page between two checks
would lose what scrolled off, so when none of the first page's posts is one the feed
has stored, the older pages are read too, one after another, until a page reaches a
post already stored, the channel's first post, or `MAX_PAGES` pages in all.

Which pages to read and when to stop is decided here; the fetching and reading are
handed in (the service's fetcher, with its per-host limit and timeouts, and its
reader), and so is the question of which posts are stored.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.core.errors import PermanentFeedError
from monitor.ingest.entry import Entry

MAX_PAGES = 5
"""Pages read in one check, the first included: about a hundred posts. A channel that
posts more than that between two checks needs a shorter `interval`."""

_PERMALINK = re.compile(r"https://t\.me/[A-Za-z0-9_]+/([0-9]{1,20})")

P = TypeVar("P", bound=tuple[Entry, Any])
"""A post as read: its entry first (and, in the service, its verdict)."""


@dataclass(frozen=True, slots=True)
class Paged(Generic[P]):
    """The posts of every page read, newest first, each once."""

    posts: list[P]
    pages: int
    """Pages read, the first included."""
    complete: bool
    """False when the reading stopped before a stored post or the channel's beginning
    (`MAX_PAGES` read, an older page refused or not paged): some of the channel's
    posts since the last check may have been left unread."""
    error: str | None = None
    """Why an older page could not be read, when one could not."""


def post_number(entry: Entry) -> int | None:
    """The post's number in its channel, from its permalink `https://t.me/CHANNEL/ID`."""
    found = _PERMALINK.fullmatch(entry.url or "")
    return int(found[1]) if found else None


def older_page(page_url: str, before: int) -> str:
    """The address of the posts older than post `before`, on the same server as the
    first page (t.me, or the mirror `url:` names)."""
    parts = urlsplit(page_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "before"]
    query.append(("before", str(before)))
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))


async def read_back(
    first: Sequence[P],
    page_url: str,
    *,
    read_page: Callable[[str], Awaitable[Sequence[P]]],
    stored: Callable[[list[str]], Awaitable[set[str]]],
    max_pages: int = MAX_PAGES,
) -> Paged[P]:
    """The first page's posts, and the older pages' until one reaches a stored post.

    `read_page(url)` fetches and reads one page; `stored(keys)` says which entry keys
    the feed has. Call it only for a feed past its baseline: on a first fetch the
    first page is all there is to record. An older page refused for good (a 404, a
    page that is no preview: `PermanentFeedError`) ends the reading with what was read;
    any other error is raised, so the whole check is tried again later and the posts
    of a burst are not given up for a passing fault.
    """
    posts = list(first)
    keys = {post[0].key for post in posts}
    oldest = _oldest(posts)
    if oldest is None or await stored(list(keys)):
        return Paged(posts, 1, complete=True)
    pages = 1
    while pages < max_pages:
        try:
            page = await read_page(older_page(page_url, oldest))
        except PermanentFeedError as exc:
            return Paged(posts, pages, complete=False, error=str(exc))
        pages += 1
        # Only what is older than the page asked for: a server that ignores `before`
        # sends the first page again, which must end the reading, not loop on it.
        older = [p for p in page if p[0].key not in keys and _before(p[0], oldest)]
        posts += older
        keys.update(post[0].key for post in older)
        next_oldest = _oldest(older)
        if next_oldest is None:
            # An empty page is the channel's beginning; one of newer posts only, a
            # server that does not page.
            return Paged(posts, pages, complete=not page)
        if await stored([post[0].key for post in page]):
            return Paged(posts, pages, complete=True)
        oldest = next_oldest
    return Paged(posts, pages, complete=False)


def _before(entry: Entry, oldest: int) -> bool:
    number = post_number(entry)
    return number is not None and number < oldest


def _oldest(posts: Sequence[tuple[Entry, Any]]) -> int | None:
    numbers = [n for n in (post_number(post[0]) for post in posts) if n is not None]
    return min(numbers) if numbers else None
