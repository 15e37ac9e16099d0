"""Feed health: tell the health targets once when a feed goes wrong, once when it recovers.

Three troubles are watched:

- **failing**: every check has failed for `health.failing_after`; a feed that answered
  410 Gone is failing at once, since it is no longer polled and will not recover alone;
- **silent**: the feed answers but has brought no new items for far longer than its
  usual rhythm: `health.silent_factor` times the median gap between fetches that
  brought new items (at least `health.silent_min`). Without a few such gaps in the
  last 60 days there is no rhythm to judge by, and a feed is never called silent;
- **unmatched**: a page source answers but its `items` selector matched nothing
  (`NoMatches`): the site changed its markup. Told at the first such check, since
  waiting will not fix it; recovered when the selector matches again.

The judgement (`assess`) is pure; `FeedHealth.check` records each change of state with
its notices in one transaction, so a state change is told exactly once. What a notice
says is the `health` template's (`monitor/templates/health.*.j2`), rendered when sent.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from monitor.config.settings import Config, HealthSettings
from monitor.core.clock import Clock, span
from monitor.core.errors import NoMatches
from monitor.delivery.messages import HealthChange, health_context, queued_notice
from monitor.delivery.routing import health_targets
from monitor.store.store import Store
from monitor.store.views import FeedView, Notice
from monitor.templates.render import Renderer

FAILING, SILENT, UNMATCHED = "failing", "silent", "unmatched"
HISTORY = timedelta(days=60)
MIN_GAPS = 3
ARRIVALS_CHUNK = 50
"""Feeds whose arrivals are read together in a health check of many feeds."""


@dataclass(frozen=True, slots=True)
class Health:
    """A feed's health now: `state` None is healthy; `usual` is its rhythm, when known."""

    state: str | None
    usual: timedelta | None = None


UNDECIDED = Health(state="?")
"""Failing, but not for long enough: keep whatever was said before."""


def rhythm(arrivals: Sequence[datetime]) -> timedelta | None:
    """The median gap between fetches that brought new items, with enough history."""
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(arrivals) if b > a]
    if len(gaps) < MIN_GAPS:
        return None
    return timedelta(seconds=statistics.median(gaps))


def needs_rhythm(feed: FeedView, now: datetime, settings: HealthSettings) -> bool:
    """Whether `assess` needs the feed's arrivals: only to tell whether a feed quiet for
    longer than `silent_min` is silent. A feed gone or failing is judged without them,
    and one that brought items within `silent_min` is not silent whatever its rhythm:
    after a cycle, most feeds (bench/history.py: a month of arrivals for 400 feeds
    read in 1.6 s)."""
    if feed.gone or feed.consecutive_failures or feed.last_item_at is None:
        return False
    return now - feed.last_item_at > settings.silent_min


def assess(
    feed: FeedView, arrivals: Sequence[datetime], now: datetime, settings: HealthSettings
) -> Health:
    """What is wrong with `feed` now, judged from its row and its arrival times."""
    if feed.gone:
        return Health(FAILING)
    if feed.consecutive_failures:
        return _failing(feed, now, settings)
    usual = rhythm(arrivals)
    if usual is None or feed.last_item_at is None:
        return Health(None)
    limit = max(settings.silent_min, usual * settings.silent_factor)
    if now - feed.last_item_at > limit:
        return Health(SILENT, usual)
    return Health(None, usual)


def _failing(feed: FeedView, now: datetime, settings: HealthSettings) -> Health:
    """The health of a feed whose last check failed."""
    if (feed.last_error or "").startswith(NoMatches.PREFIX):
        return Health(UNMATCHED)  # a changed page: waiting will not fix it
    since = feed.failing_since
    if since is not None and now - since >= settings.failing_after:
        return Health(FAILING)
    return UNDECIDED


class FeedHealth:
    """Checks feeds and queues one notice per change of their health."""

    def __init__(
        self, config: Config, store: Store, clock: Clock, *, renderer: Renderer | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.renderer = renderer or Renderer(config.templates.overrides())
        self.log = structlog.get_logger("monitor.health")

    def check(self, names: Sequence[str] | None = None) -> list[tuple[str, str | None]]:
        """Assess the named feeds (all by default); the (feed, new state) changes made."""
        now = self.clock()
        wanted = set(names) if names is not None else {f.name for f in self.config.feeds}
        changes: list[tuple[str, str | None]] = []
        # The wanted feeds' rows and arrivals only: one feed's check reads that feed.
        feeds = [f for f in self.store.feeds(wanted) if f.name in wanted]
        arrivals = self._arrivals(
            [f.name for f in feeds if needs_rhythm(f, now, self.config.health)], now
        )
        for feed in feeds:
            verdict = assess(feed, arrivals.get(feed.name, ()), now, self.config.health)
            if verdict is UNDECIDED or verdict.state == feed.health:
                continue
            notices = self._notices(feed, verdict, now)
            if not self.store.set_health(
                feed.name, verdict.state, was=feed.health, now=now, notices=notices
            ):
                continue  # another instance judged it first and told it
            event = "feed.unhealthy" if verdict.state else "feed.recovered"
            self.log.warning(event, feed=feed.name, state=verdict.state or feed.health)
            changes.append((feed.name, verdict.state))
        return changes

    def _arrivals(self, names: Sequence[str], now: datetime) -> dict[str, list[datetime]]:
        """The feeds' arrivals, a few feeds at a time: a month-old database holds
        hundreds per feed, and all of a cycle's 400 feeds at once took 70 MB
        (bench/history.py)."""
        found: dict[str, list[datetime]] = {}
        ordered = sorted(names)
        for start in range(0, len(ordered), ARRIVALS_CHUNK):
            chunk = ordered[start : start + ARRIVALS_CHUNK]
            found.update(self.store.arrivals_by_feed(chunk, now - HISTORY))
        return found

    def _notices(self, feed: FeedView, verdict: Health, now: datetime) -> list[Notice]:
        notices: list[Notice] = []
        if feed.health:
            began = feed.health_since or now
            key = f"health:{feed.name}:{feed.health}:{began.isoformat()}:recovered"
            notices.append(self._notice("recovered", feed, now, key, since=began, was=feed.health))
        if verdict.state == FAILING and feed.gone:
            # A 410: polling has stopped, so only a person can bring the feed back.
            key = f"health:{feed.name}:gone:{now.isoformat()}"
            notices.append(self._notice("gone", feed, now, key, url=feed.moved_to or feed.url))
        elif verdict.state == FAILING:
            key = f"health:{feed.name}:{FAILING}:{now.isoformat()}"
            since = feed.failing_since or now
            notices.append(self._notice("failing", feed, now, key, since=since))
        elif verdict.state == UNMATCHED:
            key = f"health:{feed.name}:{UNMATCHED}:{now.isoformat()}"
            notices.append(self._notice("unmatched", feed, now, key))
        elif verdict.state == SILENT and feed.last_item_at is not None:
            key = f"health:{feed.name}:{SILENT}:{now.isoformat()}"
            usual = span(verdict.usual or timedelta(0))
            notices.append(
                self._notice("silent", feed, now, key, since=feed.last_item_at, usual=usual)
            )
        return notices

    def _notice(
        self,
        change: HealthChange,
        feed: FeedView,
        now: datetime,
        key: str,
        *,
        url: str | None = None,
        since: datetime | None = None,
        usual: str | None = None,
        was: str | None = None,
    ) -> Notice:
        context = health_context(
            change,
            feed.name,
            url or feed.url,
            at=now,
            tz=self.config.digest.tz,
            since=since,
            failures=feed.consecutive_failures,
            error=feed.last_error,
            usual=usual,
            was=was,
        )
        targets = health_targets(self.config)
        return queued_notice(self.renderer, "health", context, dedup_key=key, targets=targets)
