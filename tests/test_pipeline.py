"""The pipeline's per-feed health: backoff, recovery, Retry-After, 410 and its notice."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import Config, load_config
from monitor.fetch import Fetcher
from monitor.notify import AppriseSender
from monitor.pipeline import FeedReport, Pipeline, retry_delay
from monitor.store import Store
from monitor.tables import Feed
from tests.conftest import write_config
from tests.support.feeds import FILLER, rss
from tests.support.servers import AlertReceiver, FeedServer

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=15)
CAP = timedelta(hours=4)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Harness:
    """One pipeline over a real store, a real fetcher and a loopback receiver."""

    def __init__(self, config: Config, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.store = Store.open(config.database_url())

    def cycle(self, *, force: bool = False) -> list[FeedReport]:
        async def go() -> list[FeedReport]:
            async with Fetcher(self.config.fetch, clock=self.clock) as fetcher:
                pipeline = self._pipeline(fetcher)
                return (await pipeline.run_cycle(force=force)).feeds

        return asyncio.run(go())

    def deliver(self) -> None:
        async def go() -> None:
            async with Fetcher(self.config.fetch, clock=self.clock) as fetcher:
                await self._pipeline(fetcher).deliver()

        asyncio.run(go())

    def feed(self, name: str = "feed") -> Feed:
        return self.store.feed(name)

    def _pipeline(self, fetcher: Fetcher) -> Pipeline:
        sender = AppriseSender(self.config.notify)
        return Pipeline(
            self.config, self.store, fetcher, sender, clock=self.clock, rng=random.Random(1)
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


def harness(
    folder: Path, feeds: dict[str, str], clock: Clock, receiver: AlertReceiver | None = None
) -> Iterator[Harness]:
    targets = [{"name": "desk", "url": receiver.url}] if receiver else []
    path = write_config(
        folder, feeds, targets, fetch={"interval": "15m", "timeout": "5s", "backoff_max": "4h"}
    )
    h = Harness(load_config(path), clock)
    yield h
    h.store.close()


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [
        pytest.param(1, INTERVAL * 0.8, INTERVAL, id="first-failure-one-interval"),
        pytest.param(2, INTERVAL * 1.6, INTERVAL * 2, id="second-doubles"),
        pytest.param(4, INTERVAL * 6.4, INTERVAL * 8, id="fourth-eight-intervals"),
        pytest.param(6, CAP * 0.9, CAP, id="sixth-capped"),
        pytest.param(500, CAP * 0.9, CAP, id="ever-after-capped"),
    ],
)
def test_retry_delay_grows_with_jitter_up_to_the_cap(
    failures: int, low: timedelta, high: timedelta
) -> None:
    """Backoff doubles per failure, jittered below the nominal value, never above the cap."""
    delays = {retry_delay(failures, INTERVAL, CAP, random.Random(seed)) for seed in range(50)}
    assert all(low <= d <= high for d in delays)
    assert len(delays) > 1  # jittered


def test_retry_after_is_a_floor() -> None:
    """A server's Retry-After wins over a shorter backoff."""
    delay = retry_delay(1, INTERVAL, CAP, random.Random(1), timedelta(hours=2))
    assert delay == timedelta(hours=2)


def test_backoff_then_recovery(tmp_path: Path, feed_server: FeedServer, clock: Clock) -> None:
    """A failing feed waits longer after each failure and recovers fully on success."""
    url = feed_server.serve("/f", b"down", status=500)
    for h in harness(tmp_path, {"feed": url}, clock):
        waits = []
        for failures in (1, 2, 3):
            [report] = h.cycle()
            assert report.outcome == "failed"
            row = h.feed()
            assert row.consecutive_failures == failures
            assert row.failing_since == START
            assert row.next_check is not None
            waits.append(row.next_check - clock.now)
            clock.advance(timedelta(minutes=1))
            [report] = h.cycle()  # not yet due: no request
            assert report.outcome == "backoff"
            clock.now = row.next_check
        assert feed_server.hits("/f") == 3
        assert waits[0] < waits[1] < waits[2]
        assert waits[2] > INTERVAL * 3

        feed_server.serve("/f", rss(FILLER))
        [report] = h.cycle()
        assert report.outcome == "ok"
        row = h.feed()
        assert (row.consecutive_failures, row.failing_since, row.last_error) == (0, None, None)
        assert row.next_check == clock.now + INTERVAL
        assert row.items_seen == len(FILLER)


def test_a_feed_is_never_disabled_for_good(
    tmp_path: Path, feed_server: FeedServer, clock: Clock
) -> None:
    """After many failures a feed is still polled, at most the cap apart."""
    url = feed_server.serve("/f", b"missing", status=404)
    for h in harness(tmp_path, {"feed": url}, clock):
        for _ in range(12):
            h.cycle()
            row = h.feed()
            assert row.next_check is not None
            assert row.next_check - clock.now <= CAP
            clock.now = row.next_check
        assert feed_server.hits("/f") == 12
        assert h.feed().consecutive_failures == 12


def test_retry_after_is_honoured(tmp_path: Path, feed_server: FeedServer, clock: Clock) -> None:
    """After a 429 with Retry-After the feed is not polled again before that time."""
    url = feed_server.serve("/f", b"busy", status=429, headers={"Retry-After": "7200"})
    for h in harness(tmp_path, {"feed": url}, clock):
        h.cycle()
        assert h.feed().next_check == START + timedelta(hours=2)
        clock.advance(timedelta(hours=1, minutes=59))
        assert [r.outcome for r in h.cycle()] == ["backoff"]
        assert feed_server.hits("/f") == 1
        clock.advance(timedelta(minutes=1))
        h.cycle()
        assert feed_server.hits("/f") == 2


def test_gone_feed_stops_and_alerts_once(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, clock: Clock
) -> None:
    """A 410 stops polling, alerts every target once, and a recovery resumes polling."""
    gone = feed_server.serve("/gone", b"", status=410)
    fine = feed_server.serve("/fine", rss(FILLER))
    for h in harness(tmp_path, {"feed": gone, "other": fine}, clock, receiver):
        h.cycle()
        h.deliver()
        assert h.feed().gone
        messages = receiver.messages()
        assert [m["title"] for m in messages] == ["Feed gone: feed"]
        assert gone in messages[0]["message"]

        for _ in range(3):
            clock.advance(CAP * 2)
            outcomes = {r.feed: r.outcome for r in h.cycle()}
            assert outcomes["feed"] == "gone"
        h.deliver()
        assert feed_server.hits("/gone") == 1
        assert len(receiver.messages()) == 1

        h.cycle(force=True)  # still 410 when forced: no second notice
        h.deliver()
        assert feed_server.hits("/gone") == 2
        assert len(receiver.messages()) == 1

        feed_server.serve("/gone", rss(FILLER))
        h.cycle(force=True)
        row = h.feed()
        assert not row.gone
        assert row.consecutive_failures == 0
        clock.advance(INTERVAL)
        assert {r.feed: r.outcome for r in h.cycle()}["feed"] == "unchanged"
