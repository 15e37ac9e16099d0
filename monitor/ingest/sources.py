"""What kind of source a feed is, as plain values the parse child can be handed.

A feed in the config is an RSS/Atom/JSON feed (`url:`), a public Telegram channel
(`telegram:`) or a news page without a feed (`page:` with CSS selectors). The reader
needs to know which, and a page's selectors; these values carry that across the
parse child's pipe (the config itself stays in the service process).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TelegramSource:
    """A public channel's web preview (`https://t.me/s/CHANNEL`)."""

    channel: str


@dataclass(frozen=True, slots=True)
class PageSource:
    """A listing page: `items` selects each item (its link, or an element holding it);
    `title`, `date` and `summary`, when given, are looked for inside each item."""

    items: str
    title: str | None = None
    date: str | None = None
    summary: str | None = None


Source = TelegramSource | PageSource
"""A source that is not a feed; None stands for a feed."""


class SourceSettings(Protocol):
    """What a configured feed says of its kind (`monitor.config.settings.FeedConfig`,
    which the parse child must not import)."""

    @property
    def telegram(self) -> str | None: ...
    @property
    def page(self) -> str | None: ...
    @property
    def items(self) -> str | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def date(self) -> str | None: ...
    @property
    def summary(self) -> str | None: ...


def source_of(feed: SourceSettings) -> Source | None:
    """What the reader must know of a source that is no feed; None for a feed."""
    if feed.telegram is not None:
        return TelegramSource(feed.telegram)
    if feed.page is not None and feed.items is not None:
        return PageSource(feed.items, feed.title, feed.date, feed.summary)
    return None
