"""The outbox's rules on plain values: quiet hours, the hourly cap, retries and deaths."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.config.settings import DeliverySettings, TargetConfig
from monitor.delivery import policy
from monitor.store.views import OutboxRow

UTC_ZONE = ZoneInfo("UTC")
NIGHT = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
DAY = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MORNING = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
SETTINGS = DeliverySettings(
    max_attempts=4,
    max_age=timedelta(days=2),
    backoff_base=timedelta(seconds=30),
    backoff_max=timedelta(hours=1),
    rate_limited_wait=timedelta(minutes=10),
)


def target(**fields: Any) -> TargetConfig:
    return TargetConfig(url="json://localhost:1/", name="desk", **fields)


QUIET = target(quiet_hours="22:00-07:00", timezone="UTC", break_through=["unveiling"])


@pytest.mark.parametrize(
    ("kind", "milestone", "now", "held"),
    [
        pytest.param("alert", "site_selection", NIGHT, True, id="alert-in-quiet-hours"),
        pytest.param("alert", "unveiling", NIGHT, False, id="listed-milestone-breaks-through"),
        pytest.param("update", None, NIGHT, True, id="update-never-breaks-through"),
        pytest.param("digest", None, NIGHT, True, id="digest-waits-too"),
        pytest.param("alert", "site_selection", DAY, False, id="daytime"),
    ],
)
def test_quiet_hours_hold_until_they_end(
    kind: str, milestone: str | None, now: datetime, held: bool
) -> None:
    """In quiet hours a delivery waits for their end, but a milestone may break through."""
    hold = policy.quiet_hold(QUIET, UTC_ZONE, kind, milestone, now)
    assert hold == (policy.Hold(MORNING, "quiet") if held else None)


def test_no_quiet_hours_never_hold() -> None:
    """A target without quiet hours is never held by them."""
    assert policy.quiet_hold(target(), UTC_ZONE, "alert", "unveiling", NIGHT) is None


CAPPED = target(max_per_hour=2)
RECENT = [DAY - timedelta(minutes=50), DAY - timedelta(minutes=20)]


@pytest.mark.parametrize(
    ("kind", "recent", "expected"),
    [
        pytest.param("alert", RECENT[:1], None, id="under-the-cap"),
        pytest.param("alert", RECENT, policy.Fold(DAY + timedelta(minutes=10)), id="alert-folded"),
        pytest.param(
            "update", RECENT, policy.Fold(DAY + timedelta(minutes=10)), id="update-folded"
        ),
        pytest.param(
            "summary", RECENT, policy.Hold(DAY + timedelta(minutes=10), "cap"), id="summary-waits"
        ),
        pytest.param("digest", RECENT, None, id="digest-never-capped"),
        pytest.param("notice", RECENT, None, id="notice-never-capped"),
    ],
)
def test_hourly_cap(kind: str, recent: list[datetime], expected: object) -> None:
    """Over the cap alerts and updates fold into a summary; the summary waits until the
    oldest counted send leaves the hour; digests and notices are never capped."""
    assert policy.capped(CAPPED, kind) == (kind in ("alert", "update", "summary"))
    assert policy.over_cap(CAPPED, kind, recent) == expected


def test_cap_counts_only_the_latest_sends() -> None:
    """With more sends than the cap in the hour, the window frees when the cap-th latest
    send leaves it."""
    recent = [DAY - timedelta(minutes=m) for m in (55, 40, 30)]
    assert policy.over_cap(CAPPED, "alert", recent) == policy.Fold(DAY + timedelta(minutes=20))
    assert not policy.capped(target(), "alert")
    assert policy.over_cap(target(), "alert", recent) is None


def failure(
    attempts: int, *, age: timedelta = timedelta(minutes=5), status: int | None = None
) -> object:
    return policy.after_failure(
        SETTINGS,
        attempts=attempts,
        created_at=DAY - age,
        http_status=status,
        now=DAY,
        rng=random.Random(1),
    )


def test_failures_back_off_exponentially() -> None:
    """Each failed attempt waits about twice as long as the one before, up to the cap."""
    delays = []
    for attempts in (1, 2, 3):
        verdict = failure(attempts)
        assert isinstance(verdict, policy.Retry)
        assert verdict.at == DAY + verdict.delay
        delays.append(verdict.delay)
    assert timedelta(seconds=24) <= delays[0] <= timedelta(seconds=30)
    assert delays[0] < delays[1] < delays[2] <= timedelta(seconds=120)


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limits_wait_longer(status: int) -> None:
    """After a 429 or 503 the retry waits at least `rate_limited_wait`."""
    verdict = failure(1, status=status)
    assert isinstance(verdict, policy.Retry)
    assert verdict.delay >= timedelta(minutes=10)
    plain = failure(1, status=500)
    assert isinstance(plain, policy.Retry)
    assert plain.delay < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("attempts", "age"),
    [
        pytest.param(4, timedelta(minutes=5), id="max-attempts"),
        pytest.param(1, timedelta(days=2), id="max-age"),
    ],
)
def test_dies_after_max_attempts_or_max_age(attempts: int, age: timedelta) -> None:
    """A delivery is given up after `max_attempts` attempts or once `max_age` old."""
    assert failure(attempts, age=age) == policy.Dead()
    assert isinstance(failure(attempts - 1 or 1, age=age - timedelta(seconds=1)), policy.Retry)


def row(id: int, attempts: int = 3, dedup_key: str = "event:1") -> OutboxRow:
    return OutboxRow(
        id=id,
        kind="alert",
        dedup_key=dedup_key,
        target="desk",
        status="dead",
        attempts=attempts,
        created_at=DAY,
        next_attempt_at=DAY,
        hold=None,
        last_error="HTTP 500",
        title="Monument unveiled",
        event_id=1,
    )


def test_dead_letter_warnings_are_not_warned_about() -> None:
    """A dead warning is not itself told (that would never end); other deaths are."""
    dead = [row(1), row(2)]
    key = policy.warning_key("desk", dead)
    assert key.startswith(policy.DEAD_WARNING + "desk:")
    assert policy.worth_warning(dead[0])
    assert not policy.worth_warning(row(3, dedup_key=key))


def test_warning_key_names_one_set_of_deaths() -> None:
    """The same rows dead again after another attempt are a new warning; the same
    deaths seen twice are one."""
    first = policy.warning_key("desk", [row(1), row(2)])
    assert policy.warning_key("desk", [row(1), row(2)]) == first
    assert policy.warning_key("desk", [row(1), row(2, attempts=4)]) != first
    assert policy.warning_key("ops", [row(1), row(2)]) != first
