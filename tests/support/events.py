"""Put story events and reports straight into a store, as the ingest stage would."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from monitor.config.settings import Config, load_config
from monitor.delivery.routing import confirming, route
from monitor.ingest.decide import Classified, IngestResult
from monitor.ingest.entry import Entry
from monitor.ingest.record import ingest
from monitor.match.classify import Verdict
from monitor.store.store import Store

STORY = "kursk-kpa-monument"
FEED = "wire"
_SHIPPED = load_config(Path(__file__).resolve().parents[2] / "config.yaml", env={}).stories[0]
STORY_NAME = _SHIPPED.name
"""The shipped story's name, as messages show it."""


def label(milestone: str) -> str:
    """The shipped label of `milestone`, as messages show it."""
    found = _SHIPPED.milestone(milestone)
    assert found is not None, milestone
    return found.label


def alert_title(milestone: str) -> str:
    """The title of the alert for `milestone` of the shipped story."""
    return f"{label(milestone)}: {STORY_NAME}"


class Newsroom:
    """Files reports of the shipped story into a store at the clock's time."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self._count = 0
        store.sync_feeds([(f.name, f.url) for f in config.feeds], tiers=config.tiers)
        for feed in config.feeds:  # the first fetch of a feed never alerts
            self.file(feed.name, [("Weather: snow expected", None)])

    def report(
        self,
        title: str,
        milestone: str | None = None,
        *,
        feed: str | None = None,
        url: str | None = None,
        outlet: str | None = None,
        lang: str = "en",
        summary: str = "",
    ) -> IngestResult:
        """One relevant report of the story (a milestone when `milestone` is given)."""
        verdict = Verdict(STORY, milestone, {"watch": ("monument",)}, "test")
        return self.file(
            feed or self.config.feeds[0].name,
            [(title, verdict)],
            url,
            outlet,
            lang,
            summary=summary,
        )

    def file(
        self,
        feed: str,
        items: Sequence[tuple[str, Verdict | None]],
        url: str | None = None,
        outlet: str | None = None,
        lang: str = "en",
        *,
        summary: str = "",
    ) -> IngestResult:
        now = self.clock()
        classified = []
        for title, verdict in items:
            self._count += 1
            key = f"item-{self._count}"
            entry = Entry(
                key=key,
                url=url or f"https://news.example/{key}",
                title=title,
                summary=summary,
                published=now - timedelta(minutes=5),
                outlet=outlet,
                lang=lang,
            )
            classified.append(Classified(entry, verdict or Verdict(None, None)))
        return ingest(
            self.store,
            feed,
            classified,
            now=now,
            next_check=now + timedelta(minutes=15),
            alert_after=now - timedelta(days=3),
            route=lambda story, milestone: route(self.config, story, milestone),
            confirming=lambda story, milestone: confirming(self.config, story, milestone),
        )
