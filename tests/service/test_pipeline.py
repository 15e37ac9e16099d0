"""The pipeline in process: real loopback feeds, a real store, a real apprise target."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config.settings import Config, load_config
from monitor.core.backoff import retry_delay
from monitor.ingest.fetch import Fetcher
from monitor.ingest.worker import InlineReader
from monitor.service.app import App
from monitor.service.pipeline import Pipeline
from monitor.store.store import Store
from tests.conftest import write_config
from tests.support.clock import FakeClock
from tests.support.feeds import FILLER, UNVEILING_EN, UNVEILING_RU, rss
from tests.support.servers import AlertReceiver, FeedServer


class Harness:
    """A pipeline wired to loopback servers, with a clock the test moves."""

    def __init__(self, config: Config, clock: FakeClock) -> None:
        self.config = config
        self.clock = clock
        self.store = Store.open(config.database_url())

    async def cycle(self, force: bool = False) -> dict[str, str]:
        async with Fetcher(self.config.fetch, clock=self.clock) as fetcher:
            pipeline = self._pipeline(fetcher)
            report = await pipeline.run_cycle(force=force)
            await pipeline.app.check_health()
            await pipeline.app.outbox.deliver()
        return {f.feed: f.outcome for f in report.feeds}

    async def deliver(self, ignore_backoff: bool = False) -> tuple[int, int]:
        async with Fetcher(self.config.fetch, clock=self.clock) as fetcher:
            report = await self._pipeline(fetcher).app.outbox.deliver(ignore_backoff=ignore_backoff)
        return report.sent, report.failed

    def _pipeline(self, fetcher: Fetcher) -> Pipeline:
        app = App.build(self.config, self.store, clock=self.clock, rng=random.Random(7))
        return Pipeline(app, fetcher, InlineReader(self.config.stories))


@pytest.fixture
def harness_for(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    made: list[Harness] = []

    def build(feeds: dict[str, str], targets: list[dict[str, str]], **sections: object) -> Harness:
        config = load_config(write_config(tmp_path, feeds, targets, **sections))
        harness = Harness(config, FakeClock())
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.store.close()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_304_skips_parsing(harness_for, feed_server: FeedServer, receiver: AlertReceiver) -> None:  # type: ignore[no-untyped-def]
    """A second fetch sends If-None-Match and the 304 is recorded as unchanged."""
    h = harness_for({"a": feed_server.serve("/a.xml", rss(FILLER))}, [{"url": receiver.url}])
    assert run(h.cycle()) == {"a": "ok"}
    assert run(h.cycle()) == {"a": "unchanged"}
    _, headers = feed_server.requests[-1]
    assert headers.get("If-None-Match")
    row = h.store.feed("a")
    assert row.last_status == 304
    assert row.items_seen == len(FILLER)


def test_identical_body_without_validators_is_not_parsed_again(
    harness_for, feed_server: FeedServer, receiver: AlertReceiver
) -> None:  # type: ignore[no-untyped-def]
    """With no ETag, an identical body is recognised by its hash."""
    url = feed_server.serve("/a.xml", rss(FILLER), etag=False)
    h = harness_for({"a": url}, [{"url": receiver.url}])
    assert run(h.cycle()) == {"a": "ok"}
    assert run(h.cycle()) == {"a": "unchanged"}


def test_bad_feeds_do_not_affect_good_ones(
    harness_for, feed_server: FeedServer, receiver: AlertReceiver
) -> None:  # type: ignore[no-untyped-def]
    """A 500, a 404 and an HTML page are recorded per feed; the good feed still alerts."""
    feeds = {
        "good": feed_server.serve("/good.xml", rss(FILLER)),
        "error": feed_server.serve("/error.xml", "oops", status=500),
        "missing": feed_server.url("/missing.xml"),
        "html": feed_server.serve(
            "/login", "<html><body><form>Login</form></body></html>", content_type="text/html"
        ),
    }
    h = harness_for(feeds, [{"url": receiver.url}])
    outcomes = run(h.cycle())
    assert outcomes == {"good": "ok", "error": "failed", "missing": "failed", "html": "failed"}
    feed_server.serve("/good.xml", rss([UNVEILING_EN, *FILLER]))
    h.clock.advance(minutes=1)
    outcomes = run(h.cycle())
    assert outcomes["good"] == "ok"
    assert outcomes["error"] == "failed"  # the first failure waited one interval
    assert len(receiver.messages()) == 1
    h.clock.advance(seconds=70)
    assert run(h.cycle())["error"] == "backoff"  # the second waits about two
    errors = {row.name: (row.last_error, row.consecutive_failures) for row in h.store.feeds()}
    assert errors["error"] == ("HTTP 500", 2)
    assert errors["missing"][0] == "HTTP 404"
    assert errors["html"][1] == 2
    assert errors["good"] == (None, 0)


def test_failed_delivery_is_retried_with_backoff(
    harness_for, feed_server: FeedServer, receiver: AlertReceiver
) -> None:  # type: ignore[no-untyped-def]
    """A target that is down keeps its alert pending; it is sent after the backoff."""
    h = harness_for(
        {"a": feed_server.serve("/a.xml", rss(FILLER))},
        [{"url": receiver.url}],
        delivery={"backoff_base": "1m"},
    )
    run(h.cycle())
    receiver.down = True
    feed_server.serve("/a.xml", rss([UNVEILING_RU, *FILLER]))
    run(h.cycle())
    assert receiver.attempts == 1
    assert run(h.deliver()) == (0, 0)  # not due yet
    receiver.down = False
    h.clock.advance(minutes=2)
    assert run(h.deliver()) == (1, 0)
    assert len(receiver.messages()) == 1
    [event] = h.store.events()
    assert [(d.status, d.attempts) for d in event.deliveries] == [("sent", 2)]


def test_gone_feed_stops_polling(
    harness_for, feed_server: FeedServer, receiver: AlertReceiver
) -> None:  # type: ignore[no-untyped-def]
    """After a 410 the feed is not fetched again."""
    h = harness_for({"a": feed_server.serve("/a.xml", "gone", status=410)}, [{"url": receiver.url}])
    assert run(h.cycle()) == {"a": "failed"}
    h.clock.advance(days=1)
    assert run(h.cycle()) == {"a": "gone"}
    assert feed_server.hits("/a.xml") == 1
    assert h.store.feed("a").gone


def test_permanent_redirect_is_followed_and_remembered(
    harness_for, feed_server: FeedServer, receiver: AlertReceiver
) -> None:  # type: ignore[no-untyped-def]
    """A 301 is recorded as the feed's new address and used from then on."""
    new = feed_server.serve("/new.xml", rss(FILLER))
    old = feed_server.serve(
        "/old.xml", "", status=301, headers={"Location": "/new.xml"}, etag=False
    )
    h = harness_for({"a": old}, [{"url": receiver.url}])
    assert run(h.cycle()) == {"a": "ok"}
    assert h.store.feed("a").moved_to == new
    run(h.cycle())
    assert feed_server.hits("/old.xml") == 1
    assert feed_server.hits("/new.xml") == 2


@pytest.mark.parametrize(
    ("failures", "retry_after", "low", "high"),
    [
        pytest.param(1, None, 48, 60, id="first-failure-one-interval"),
        pytest.param(3, None, 192, 240, id="doubles"),
        pytest.param(30, None, 3240, 3600, id="capped"),
        pytest.param(1, 600, 600, 600, id="retry-after-wins"),
    ],
)
def test_retry_delay(failures: int, retry_after: int | None, low: float, high: float) -> None:
    """Backoff doubles per failure with jitter, stays under the cap, honours Retry-After."""
    delay = retry_delay(
        failures,
        timedelta(minutes=1),
        timedelta(hours=1),
        random.Random(1),
        timedelta(seconds=retry_after) if retry_after else None,
    )
    assert low <= delay.total_seconds() <= high


def test_stopping_delivery_releases_unsent_claims(  # type: ignore[no-untyped-def]
    harness_for, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """Told to stop, delivery records the send in flight and leaves the rest untried."""
    url = feed_server.serve("/a.xml", rss(FILLER))
    targets = [{"url": f"{receiver.url}/one"}, {"url": f"{receiver.url}/two"}]
    h = harness_for({"a": url}, targets)
    run(h.cycle())
    feed_server.serve("/a.xml", rss([UNVEILING_EN, *FILLER]))

    async def stop_after_first_send() -> tuple[int, int]:
        async with Fetcher(h.config.fetch, clock=h.clock) as fetcher:
            pipeline = h._pipeline(fetcher)
            await pipeline.run_cycle()
            stopped = await pipeline.app.outbox.deliver(
                stopping=lambda: len(receiver.messages()) >= 1
            )
            return stopped.sent, stopped.failed

    assert run(stop_after_first_send()) == (1, 0)
    waiting = h.store.outbox(["pending", "failed"])
    assert [(row.status, row.attempts) for row in waiting] == [("pending", 0)]
    assert run(h.deliver()) == (1, 0)
    assert h.store.delivery_counts() == {"sent": 2}
    assert len(receiver.messages()) == 2


# -- feed health over many cycles -------------------------------------------------

INTERVAL = timedelta(minutes=15)
CAP = timedelta(hours=4)
HEALTH = {"fetch": {"interval": "15m", "backoff_max": "4h", "timeout": "5s"}}


def test_backoff_then_recovery(harness_for, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    """A failing feed waits longer after each failure and recovers fully on success."""
    h = harness_for({"a": feed_server.serve("/a", "down", status=500)}, [], **HEALTH)
    started = h.clock.now
    waits = []
    for failures in (1, 2, 3):
        assert run(h.cycle()) == {"a": "failed"}
        row = h.store.feed("a")
        assert (row.consecutive_failures, row.failing_since) == (failures, started)
        assert row.next_check is not None
        waits.append(row.next_check - h.clock.now)
        h.clock.advance(minutes=1)
        assert run(h.cycle()) == {"a": "backoff"}  # not due yet: no request
        h.clock.now = row.next_check
    assert feed_server.hits("/a") == 3
    assert waits[0] < waits[1] < waits[2]
    assert waits[2] > INTERVAL * 3

    feed_server.serve("/a", rss(FILLER))
    assert run(h.cycle()) == {"a": "ok"}
    row = h.store.feed("a")
    assert (row.consecutive_failures, row.failing_since, row.last_error) == (0, None, None)
    assert row.next_check == h.clock.now + INTERVAL
    assert row.items_seen == len(FILLER)


def test_a_feed_is_never_disabled_for_good(harness_for, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    """After many failures a feed is still polled, never more than the cap apart."""
    h = harness_for({"a": feed_server.serve("/a", "missing", status=404)}, [], **HEALTH)
    for _ in range(12):
        run(h.cycle())
        row = h.store.feed("a")
        assert row.next_check is not None
        assert row.next_check - h.clock.now <= CAP
        h.clock.now = row.next_check
    assert feed_server.hits("/a") == 12
    assert h.store.feed("a").consecutive_failures == 12


def test_retry_after_is_honoured(harness_for, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    """After a 429 with Retry-After the feed is not polled again before that time."""
    url = feed_server.serve("/a", "busy", status=429, headers={"Retry-After": "7200"})
    h = harness_for({"a": url}, [], **HEALTH)
    started = h.clock.now
    run(h.cycle())
    assert h.store.feed("a").next_check == started + timedelta(hours=2)
    h.clock.advance(hours=1, minutes=59)
    assert run(h.cycle()) == {"a": "backoff"}
    assert feed_server.hits("/a") == 1
    h.clock.advance(minutes=1)
    run(h.cycle())
    assert feed_server.hits("/a") == 2


def test_gone_feed_alerts_once_and_can_come_back(
    harness_for, feed_server: FeedServer, receiver: AlertReceiver
) -> None:  # type: ignore[no-untyped-def]
    """A 410 alerts every target once; a forced check that succeeds resumes polling."""
    gone = feed_server.serve("/gone", "", status=410)
    fine = feed_server.serve("/fine", rss(FILLER))
    targets = [{"url": receiver.url, "receive": ["alerts", "health"]}]
    h = harness_for({"a": gone, "b": fine}, targets, **HEALTH)
    run(h.cycle())
    messages = receiver.messages()
    assert [m["title"] for m in messages] == ["monitor: feed a is gone (HTTP 410)"]
    assert gone in messages[0]["message"]

    for _ in range(3):
        h.clock.advance(hours=8)
        assert run(h.cycle())["a"] == "gone"
    run(h.cycle(force=True))  # still 410 when forced: no second notice
    assert feed_server.hits("/gone") == 2
    assert len(receiver.messages()) == 1

    feed_server.serve("/gone", rss(FILLER))
    run(h.cycle(force=True))
    row = h.store.feed("a")
    assert (row.gone, row.consecutive_failures) == (False, 0)
    h.clock.advance(minutes=15)
    assert run(h.cycle())["a"] == "unchanged"
