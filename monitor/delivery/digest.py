"""The daily digest: per story, what happened that did not alert, and where things stand.

A digest covers a period: from the end of the previous digest of that story to that
target (or one day back, the first time) to the digest time. It lists the story's
updates that are no milestone, the later reports of each milestone, and the milestone
timeline so far. Digests are queued as outbox rows (one per target, deduplicated by
story and local date), so they are retried, deferred by quiet hours and recorded like
alerts; their text is rendered when they are sent, from the period they cover.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config.settings import Config
from monitor.core import hours
from monitor.core.clock import Clock
from monitor.delivery.routing import digest_targets
from monitor.store.store import Store
from monitor.store.views import Notice

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Period:
    story: str
    target: str
    since: datetime
    until: datetime


class Digests:
    """Decides which digests are due and queues them."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    def queue_due(self) -> int:
        """Queue the scheduled digests that are due and have something new; how many."""
        now = self.clock()
        settings = self.config.digest
        day, at = hours.last_daily(now, settings.time, settings.tz)
        queued = 0
        for story in self.config.stories:
            key = f"digest:{story.id}:{day.isoformat()}"
            for target in digest_targets(self.config, story.id):
                if self.store.has_delivery(key, target):
                    continue
                period = self.period(story.id, target, at)
                if period.since >= period.until:
                    continue
                if not self.store.has_digest_news(story.id, period.since, period.until):
                    continue
                queued += self._queue(key, period, now)
        return queued

    def queue_now(self, stories: list[str] | None = None) -> int:
        """Queue a digest of each story up to now for its targets, whatever it holds."""
        now = self.clock()
        queued = 0
        for story in self.config.stories:
            if stories is not None and story.id not in stories:
                continue
            for target in digest_targets(self.config, story.id):
                period = self.period(story.id, target, now)
                key = f"digest:{story.id}:manual:{now.isoformat()}"
                queued += self._queue(key, period, now)
        return queued

    def period(self, story: str, target: str, until: datetime) -> Period:
        """The period a digest to `target` ending at `until` covers."""
        since = self.store.last_digest_until(story, target) or until - DAY
        return Period(story, target, since, until)

    def _queue(self, key: str, period: Period, now: datetime) -> int:
        name = next((s.name for s in self.config.stories if s.id == period.story), period.story)
        notice = Notice(
            dedup_key=key,
            targets=[period.target],
            title=f"Digest: {name}",
            body="",
            kind="digest",
        )
        return self.store.enqueue(
            [notice], now=now, story=period.story, since=period.since, until=period.until
        )
