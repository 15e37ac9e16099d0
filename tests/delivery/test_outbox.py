"""The outbox: per-target retries, dead letters, quiet hours and hourly caps, on a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.store.views import SENT, Notice
from tests.support.desk import Desk
from tests.support.events import alert_title, label
from tests.support.postgres import schema_url
from tests.support.servers import AlertReceiver

MILESTONES = [
    ("Site chosen for the Kursk monument to North Korean soldiers", "site_selection"),
    ("Design of the Kursk monument to North Korean soldiers revealed", "design_reveal"),
    ("Monument to North Korean soldiers unveiled in Kursk", "unveiling"),
]


def test_each_target_is_retried_on_its_own(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """One target down does not hold back another; it gets its alert after its backoff."""
    desk = desk_for(
        [{"name": "up", "url": receiver.url}, {"name": "down", "url": second.url}],
        delivery={"backoff_base": "1m"},
    )
    second.down = True
    desk.news.report(*MILESTONES[2])
    report = desk.deliver()
    assert (report.sent, report.failed) == (1, 1)
    assert len(receiver.messages()) == 1
    [failed] = desk.rows("failed")
    assert timedelta(seconds=48) <= failed.next_attempt_at - desk.clock() <= timedelta(minutes=1)
    assert desk.deliver().sent == 0  # not due yet
    second.down = False
    desk.clock.advance(minutes=1)
    assert desk.deliver().sent == 1
    assert len(second.messages()) == 1
    [event] = desk.store.events()
    assert [(d.target, d.status, d.attempts) for d in event.deliveries] == [
        ("up", "sent", 1),
        ("down", "sent", 2),
    ]


def test_backoff_doubles_with_jitter(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """Each failure waits about twice as long as the last, jittered, up to the cap."""
    desk = desk_for(
        [{"url": receiver.url}],
        delivery={"backoff_base": "1m", "backoff_max": "5m", "max_attempts": 10},
    )
    receiver.down = True
    desk.news.report(*MILESTONES[2])
    waits = []
    for _ in range(5):
        desk.deliver(ignore_backoff=True)
        [row] = desk.rows("failed")
        waits.append((row.next_attempt_at - desk.clock()).total_seconds())
    bounds = [(48, 60), (96, 120), (192, 240), (270, 300), (270, 300)]
    assert all(low <= wait <= high for wait, (low, high) in zip(waits, bounds, strict=True)), waits


def test_rate_limited_target_waits_longer(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """After a 429 the retry waits at least `rate_limited_wait`, whatever the backoff says."""
    desk = desk_for(
        [{"url": receiver.url}],
        delivery={"backoff_base": "5s", "rate_limited_wait": "2m"},
    )
    receiver.down, receiver.fail_status = True, 429
    desk.news.report(*MILESTONES[2])
    desk.deliver()
    [row] = desk.rows("failed")
    assert row.next_attempt_at - desk.clock() == timedelta(minutes=2)
    assert row.last_error
    assert "error=429" in row.last_error


def test_a_failed_target_is_left_alone_for_the_rest_of_the_run(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """Three alerts to a down target cost one request per run, not three."""
    desk = desk_for([{"url": receiver.url}])
    receiver.down = True
    for title, milestone in MILESTONES:
        desk.news.report(title, milestone)
    report = desk.deliver(ignore_backoff=True)
    assert (report.failed, receiver.attempts) == (1, 1)


def test_down_target_gets_three_alerts_after_deliver(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """Three milestones while the target is down: exactly three alerts once it is back."""
    desk = desk_for([{"url": receiver.url}])
    receiver.down = True
    for title, milestone in MILESTONES:
        desk.news.report(title, milestone)
        desk.deliver()
        desk.clock.advance(minutes=10)
    assert receiver.messages() == []
    receiver.down = False
    report = desk.deliver(ignore_backoff=True)
    assert report.sent == 3
    titles = [m["title"] for m in receiver.messages()]
    assert titles == [alert_title(m) for _, m in MILESTONES]
    for _ in range(3):
        desk.clock.advance(hours=2)
        assert desk.deliver().sent == 0
    assert len(receiver.messages()) == 3
    assert {d.status for e in desk.store.events() for d in e.deliveries} == {SENT}


def test_dead_after_max_attempts_warns_once_through_another_target(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """A delivery that keeps failing dies, and one warning goes out through another target."""
    desk = desk_for(
        [{"name": "desk", "url": receiver.url}, {"name": "ops", "url": second.url}],
        delivery={"max_attempts": 2},
    )
    receiver.down = True
    desk.news.report(*MILESTONES[2])
    desk.deliver(ignore_backoff=True)
    assert desk.deliver(ignore_backoff=True).dead == 1
    warnings = [m for m in second.messages() if "could not be delivered" in m["title"]]
    assert len(warnings) == 1
    assert "1 message to desk" in warnings[0]["title"]
    assert "HTTP" in warnings[0]["message"] or "error=500" in warnings[0]["message"]
    for _ in range(3):
        desk.clock.advance(hours=1)
        desk.deliver(ignore_backoff=True)
    assert len([m for m in second.messages() if "could not be delivered" in m["title"]]) == 1
    [event] = desk.store.events()
    assert [(d.target, d.status) for d in event.deliveries] == [("desk", "dead"), ("ops", "sent")]


def test_dead_after_max_age(desk_for: Callable[..., Desk], receiver: AlertReceiver) -> None:
    """A delivery older than `max_age` dies at its next failure, whatever its attempts."""
    desk = desk_for([{"url": receiver.url}], delivery={"max_age": "1h", "max_attempts": 50})
    receiver.down = True
    desk.news.report(*MILESTONES[2])
    assert desk.deliver().failed == 1
    desk.clock.advance(hours=1)
    assert desk.deliver(ignore_backoff=True).dead == 1
    assert desk.statuses() == [("alert", "dead")]


def test_dead_deliveries_can_be_retried(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """`retry_dead` gives dead deliveries one more try once the target works."""
    desk = desk_for([{"url": receiver.url}], delivery={"max_attempts": 1})
    receiver.down = True
    desk.news.report(*MILESTONES[2])
    assert desk.deliver().dead == 1
    receiver.down = False
    assert desk.deliver(ignore_backoff=True).sent == 0  # dead stays dead ...
    labels = [t.label for t in desk.config.notify]
    assert desk.store.retry_dead(labels, now=desk.clock()) == 1  # ... until retried
    assert desk.deliver().sent == 1
    assert desk.statuses() == [("alert", "sent")]


def test_quiet_hours_defer_and_never_drop(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """An alert in quiet hours waits untried until they end, even through `deliver`."""
    desk = desk_for([{"url": receiver.url, "quiet_hours": "22:00-07:00", "timezone": "UTC"}])
    desk.clock.now = desk.clock.now.replace(hour=23)
    desk.news.report(*MILESTONES[2])
    assert desk.deliver().held == 1
    assert desk.deliver(ignore_backoff=True).held == 0  # still held, not re-tried
    [row] = desk.rows("pending")
    assert (row.hold, row.attempts) == ("quiet", 0)
    assert row.next_attempt_at == (desk.clock() + timedelta(hours=8))
    desk.clock.advance(hours=7, minutes=59)
    assert desk.deliver().sent == 0
    desk.clock.advance(minutes=1)
    assert desk.deliver().sent == 1
    assert receiver.attempts == 1


def test_milestones_can_break_through_quiet_hours(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A milestone listed in `break_through` is sent in quiet hours; the others wait."""
    desk = desk_for(
        [
            {
                "url": receiver.url,
                "quiet_hours": "00:00-23:59",
                "timezone": "Asia/Seoul",
                "break_through": ["unveiling"],
            }
        ]
    )
    desk.news.report(*MILESTONES[0])
    desk.news.report(*MILESTONES[2])
    report = desk.deliver()
    assert (report.sent, report.held) == (1, 1)
    assert receiver.messages()[0]["title"] == alert_title("unveiling")


def test_hourly_cap_folds_the_excess_into_one_summary(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """Over `max_per_hour`, alerts are folded into one summary sent when the hour frees up."""
    desk = desk_for([{"name": "hook", "url": receiver.url, "max_per_hour": 1}])
    for title, milestone in MILESTONES:
        desk.news.report(title, milestone)
    report = desk.deliver()
    assert (report.sent, report.folded) == (1, 2)
    assert desk.statuses() == [
        ("alert", "sent"),
        ("alert", "folded"),
        ("alert", "folded"),
        ("summary", "pending"),
    ]
    desk.clock.advance(minutes=59)
    assert desk.deliver(ignore_backoff=True).sent == 0  # the cap is a rule, not a backoff
    desk.clock.advance(minutes=1)
    assert desk.deliver().sent == 1
    [_first, summary] = receiver.messages()
    assert summary["title"] == "2 more alerts (over the limit of 1 an hour)"
    assert label("design_reveal") in summary["message"]
    assert label("unveiling") in summary["message"]
    assert [d.status for e in desk.store.events() for d in e.deliveries] == [SENT] * 3
    assert desk.deliver().sent == 0


def test_digest_and_notices_are_never_folded(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """The cap folds alerts only; a health notice over the cap is still sent."""
    desk = desk_for(
        [{"url": receiver.url, "max_per_hour": 1, "receive": ["alerts", "health"]}],
    )
    desk.news.report(*MILESTONES[2])
    desk.deliver()
    label = desk.config.notify[0].label
    desk.store.enqueue([Notice("health:x", [label], "feed x is failing", "x")], now=desk.clock())
    assert desk.deliver().sent == 1
    assert len(receiver.messages()) == 2


@pytest.mark.postgres
def test_outbox_on_postgresql(tmp_path: Path, receiver: AlertReceiver) -> None:
    """Retries, folding into a summary, digests and feed health work on PostgreSQL too."""
    with schema_url() as url:
        desk = Desk(
            tmp_path,
            [
                {
                    "name": "hook",
                    "url": receiver.url,
                    "max_per_hour": 1,
                    "receive": ["alerts", "digest"],
                }
            ],
            database=url,
            delivery={"max_attempts": 2},
        )
        try:
            receiver.down = True
            for title, milestone in MILESTONES:
                desk.news.report(title, milestone)
            desk.news.report("Kursk governor discusses the monument to North Korean soldiers")
            assert desk.deliver().failed == 1
            receiver.down = False
            assert (desk.deliver(ignore_backoff=True).sent, desk.statuses()[-1]) == (
                1,
                ("summary", "pending"),
            )
            desk.clock.advance(hours=1, minutes=1)
            assert desk.deliver().sent == 1
            assert [d.status for e in desk.store.events() for d in e.deliveries] == [SENT] * 3
            desk.clock.advance(days=1)
            assert desk.digests.queue_due() == 1
            desk.clock.advance(hours=1)
            assert desk.deliver().sent == 1
            assert len(receiver.messages()) == 3
            assert desk.health.check() == []
        finally:
            desk.close()
