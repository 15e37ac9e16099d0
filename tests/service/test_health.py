"""Feed health: one alert when a feed fails too long or goes silent, one when it recovers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from monitor.config.settings import HealthSettings
from monitor.core.errors import NoMatches
from monitor.service.health import (
    ARRIVALS_CHUNK,
    FAILING,
    SILENT,
    UNDECIDED,
    UNMATCHED,
    assess,
    needs_rhythm,
    rhythm,
)
from monitor.store.views import FeedView
from tests.support.desk import Desk
from tests.support.servers import AlertReceiver

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SETTINGS = HealthSettings(failing_after=timedelta(hours=6), silent_min=timedelta(days=1))
HOURLY = [NOW - timedelta(hours=h) for h in range(30, 24, -1)]  # six arrivals, an hour apart


def feed(**fields: Any) -> FeedView:
    return FeedView(name="wire", url="https://wire.example/rss", **fields)


@pytest.mark.parametrize(
    ("row", "arrivals", "state"),
    [
        (feed(last_item_at=NOW - timedelta(hours=1)), HOURLY, None),
        (feed(consecutive_failures=3, failing_since=NOW - timedelta(hours=5)), HOURLY, "?"),
        (feed(consecutive_failures=9, failing_since=NOW - timedelta(hours=6)), HOURLY, FAILING),
        (
            feed(gone=True, consecutive_failures=1, failing_since=NOW - timedelta(days=1)),
            [],
            FAILING,
        ),
        (feed(gone=True, consecutive_failures=1, failing_since=NOW), HOURLY, FAILING),  # at once
        (feed(last_item_at=NOW - timedelta(hours=23)), HOURLY, None),  # under silent_min
        (feed(last_item_at=NOW - timedelta(hours=25)), HOURLY, SILENT),
        (feed(last_item_at=NOW - timedelta(days=9)), HOURLY[:3], None),  # too little history
        (
            feed(consecutive_failures=1, failing_since=NOW, last_error=str(NoMatches("x"))),
            HOURLY,
            UNMATCHED,
        ),
    ],
    ids=[
        "healthy",
        "failing-briefly",
        "failing-long",
        "gone",
        "gone-just-now",
        "quiet-day",
        "silent",
        "new-feed",
        "page-unmatched-at-once",
    ],
)
def test_assess(row: FeedView, arrivals: list[datetime], state: str | None) -> None:
    """Failing long enough, or silent far beyond its rhythm, is trouble; the rest is not.
    A feed the check reads no arrivals for is judged the same without them."""
    verdict = assess(row, arrivals, NOW, SETTINGS)
    assert (verdict is UNDECIDED) if state == "?" else verdict.state == state
    if not needs_rhythm(row, NOW, SETTINGS):
        unread = assess(row, [], NOW, SETTINGS)
        assert (unread is UNDECIDED) if state == "?" else unread.state == state


def test_silence_is_judged_against_the_feed_rhythm() -> None:
    """A feed that posts weekly is not silent after two quiet days; an hourly one is."""
    weekly = [NOW - timedelta(weeks=w) for w in range(8, 0, -1)]
    row = feed(last_item_at=weekly[-1])
    assert rhythm(weekly) == timedelta(weeks=1)
    assert assess(row, weekly, NOW + timedelta(days=2), SETTINGS).state is None
    assert assess(row, weekly, NOW + timedelta(weeks=6), SETTINGS).state == SILENT


def fail(desk: Desk, name: str = "wire") -> None:
    now = desk.clock()
    desk.store.record_failure(
        name, "HTTP 503", 503, now=now, next_check=now + timedelta(minutes=15)
    )


def test_failing_feed_alerts_once_and_recovery_once(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A feed failing past `failing_after` raises one ops alert; its recovery one more."""
    desk = desk_for(
        [{"name": "ops", "url": receiver.url, "receive": ["health"]}],
        health={"failing_after": "1h"},
    )
    for _ in range(8):  # every 15 minutes for two hours
        fail(desk)
        desk.health.check()
        desk.deliver()
        desk.clock.advance(minutes=15)
    [alert] = receiver.messages()
    assert alert["title"] == "monitor: feed wire is failing"
    assert "Last error: HTTP 503" in alert["message"]
    desk.news.report("Kursk monument: nothing new", feed="wire")  # a successful fetch
    for _ in range(3):
        desk.health.check()
        desk.deliver()
        desk.clock.advance(minutes=15)
    titles = [m["title"] for m in receiver.messages()]
    assert titles == ["monitor: feed wire is failing", "monitor: feed wire recovered"]


def test_silent_feed_alerts_once_and_recovery_once(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A feed that stops bringing items, far beyond its rhythm, raises one alert."""
    desk = desk_for(
        [{"name": "ops", "url": receiver.url, "receive": ["health"]}],
        health={"silent_min": "6h", "silent_factor": 4},
    )
    for _ in range(5):  # new items every hour
        desk.clock.advance(hours=1)
        desk.news.report("Kursk monument news", feed="agency")
    for _ in range(12):  # then an answering but empty feed, checked hourly
        desk.clock.advance(hours=1)
        desk.store.record_unchanged("agency", desk.clock(), desk.clock())
        desk.health.check()
        desk.deliver()
    assert [m["title"] for m in receiver.messages()] == ["monitor: feed agency has gone silent"]
    assert "usually brings new items every 60 minutes" in receiver.messages()[0]["message"]
    desk.news.report("Kursk monument news again", feed="agency")
    desk.health.check()
    desk.deliver()
    assert receiver.messages()[-1]["title"] == "monitor: feed agency recovered"
    assert len(receiver.messages()) == 2


def test_health_goes_only_to_health_targets(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """Targets that do not `receive: [health]` never hear about feeds."""
    desk = desk_for([{"url": receiver.url}], health={"failing_after": "1m"})
    fail(desk)
    desk.clock.advance(minutes=5)
    fail(desk)
    assert desk.health.check() == [("wire", FAILING)]
    desk.deliver()
    assert receiver.messages() == []


def _steps_of_check(desk: Desk, names: list[str]) -> int:
    """The SQLite virtual machine steps one health check runs: the rows it reads, in
    a unit that does not depend on the machine's speed."""
    desk.health.check(names)  # settle the feed's state: the measured check writes nothing
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    def count_on(_conn: Any, cursor: Any, *_: Any) -> None:
        cursor.connection.set_progress_handler(count, 1)

    event.listen(desk.store.engine, "before_cursor_execute", count_on)
    try:
        desk.health.check(names)
    finally:
        event.remove(desk.store.engine, "before_cursor_execute", count_on)
    return steps


def _history(desk: Desk, names: list[str]) -> None:
    """Give each named feed a day of hourly arrivals."""
    desk.store.sync_feeds([(name, f"https://{name}.example/rss") for name in names])
    for _ in range(24):
        desk.clock.advance(hours=1)
        for name in names:
            desk.news.file(name, [("Weather: snow expected", None)] * 3)


def test_one_feeds_check_reads_that_feed_only(desk_for: Callable[..., Desk]) -> None:
    """The check after one feed's fetch costs the same with 1 or 50 other feeds with
    history: it reads that feed's row and arrivals, not everyone's."""
    desk = desk_for([], health={"silent_min": "6h"})
    _history(desk, ["wire", "other-0"])
    alone = _steps_of_check(desk, ["wire"])
    _history(desk, [f"other-{n}" for n in range(1, 50)])
    desk.clock.advance(hours=-24)  # the same moment: the same window of wire's arrivals
    crowded = _steps_of_check(desk, ["wire"])
    assert alone > 0
    assert crowded == alone


def test_a_check_of_many_feeds_reads_each_ones_arrivals(desk_for: Callable[..., Desk]) -> None:
    """Checking more feeds than are read together (`ARRIVALS_CHUNK`) judges every one
    of them by its own rhythm: each has one, so each falls silent."""
    desk = desk_for([], health={"silent_min": "6h"})
    names = [f"feed-{n:03d}" for n in range(ARRIVALS_CHUNK * 2 + 3)]
    _history(desk, names)
    desk.clock.advance(hours=12)
    assert desk.health.check(names) == [(name, SILENT) for name in names]


def test_a_check_reads_no_arrivals_for_feeds_that_just_brought_items(
    desk_for: Callable[..., Desk],
) -> None:
    """After a cycle every feed brought items within `silent_min`: none can be silent,
    so the check reads their rows and no arrivals, however long their history."""
    desk = desk_for([], health={"silent_min": "6h"})
    _history(desk, ["wire"])
    fresh = _steps_of_check(desk, ["wire"])
    _history(desk, ["wire"])  # a second day of arrivals
    assert _steps_of_check(desk, ["wire"]) == fresh
    desk.clock.advance(hours=12)  # quiet for longer than silent_min: its rhythm is read
    assert _steps_of_check(desk, ["wire"]) > fresh


def test_unmatched_page_is_told_once_and_its_recovery_once(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A page whose selector stops matching is told at the first check, not again while
    it stays so, and its recovery once when the selector matches again."""
    desk = desk_for([{"name": "ops", "url": receiver.url, "receive": ["health"]}])
    error = str(NoMatches("the items selector 'div.news a'"))
    for _ in range(4):
        now = desk.clock()
        desk.store.record_failure("wire", error, 200, now=now, next_check=now)
        desk.health.check()
        desk.deliver()
        desk.clock.advance(minutes=15)
    [notice] = receiver.messages()
    assert notice["title"] == "monitor: feed wire finds no items (has the page changed?)"
    assert "items selector matched nothing" in notice["message"]
    assert "div.news a" in notice["message"]
    desk.news.report("Kursk monument: nothing new", feed="wire")  # the selector matches again
    desk.health.check()
    desk.deliver()
    titles = [m["title"] for m in receiver.messages()]
    assert titles == [notice["title"], "monitor: feed wire recovered"]
    assert "It was unmatched from" in receiver.messages()[-1]["message"]
