"""Quiet hours and the daily digest time, in named time zones, across midnight and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from monitor.core.hours import QuietHours, last_daily, parse_clock, zone

MOSCOW = zone("Europe/Moscow")  # UTC+3, no DST
BERLIN = zone("Europe/Berlin")  # DST: 2026-03-29 02:00 → 03:00, 2026-10-25 03:00 → 02:00


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "now", "until"),
    [
        ("22:00-07:00", "2026-11-27T18:59", None),  # 21:59 Moscow
        ("22:00-07:00", "2026-11-27T19:00", "2026-11-28T04:00"),  # 22:00 Moscow
        ("22:00-07:00", "2026-11-27T23:30", "2026-11-28T04:00"),  # 02:30 Moscow
        ("22:00-07:00", "2026-11-28T03:59", "2026-11-28T04:00"),  # 06:59 Moscow
        ("22:00-07:00", "2026-11-28T04:00", None),  # 07:00 Moscow
        ("12:00-14:00", "2026-11-27T09:30", "2026-11-27T11:00"),  # 12:30 Moscow
        ("12:00-14:00", "2026-11-27T08:59", None),
    ],
    ids=["before", "starts", "past-midnight", "last-minute", "ends", "midday", "before-midday"],
)
def test_quiet_window(window: str, now: str, until: str | None) -> None:
    """A quiet window holds from its start (inclusive) to its end, spanning midnight."""
    quiet = QuietHours.parse(window, MOSCOW)
    assert quiet.until(utc(now)) == (utc(until) if until else None)


def test_quiet_window_across_dst_change() -> None:
    """On the night clocks go back, the window still ends at 07:00 local time."""
    quiet = QuietHours.parse("22:00-07:00", BERLIN)
    # 2026-10-24 22:30 CEST (UTC+2); the window ends 2026-10-25 07:00 CET (UTC+1).
    assert quiet.until(utc("2026-10-24T20:30")) == utc("2026-10-25T06:00")


@pytest.mark.parametrize(
    "text", ["22-07", "22:00", "25:00-07:00", "07:00-07:00", "7pm-7am"], ids=str
)
def test_bad_quiet_hours(text: str) -> None:
    """Malformed or empty windows are refused with a message saying the format."""
    with pytest.raises(ValueError, match=r"HH:MM|same time"):
        QuietHours.parse(text, MOSCOW)


@pytest.mark.parametrize(
    ("now", "day", "at"),
    [
        ("2026-11-27T05:00", date(2026, 11, 27), "2026-11-27T05:00"),  # 08:00 Moscow
        ("2026-11-27T04:59", date(2026, 11, 26), "2026-11-26T05:00"),
        ("2026-11-27T23:00", date(2026, 11, 27), "2026-11-27T05:00"),
    ],
    ids=["exactly", "just-before", "evening"],
)
def test_last_daily(now: str, day: date, at: str) -> None:
    """The digest due now is the latest 08:00 local at or before now."""
    assert last_daily(utc(now), time(8, 0), MOSCOW) == (day, utc(at))


def test_last_daily_on_a_skipped_hour() -> None:
    """A digest time inside the hour skipped by DST still happens that day."""
    day, at = last_daily(utc("2026-03-29T12:00"), time(2, 30), BERLIN)
    assert day == date(2026, 3, 29)
    assert at.date() == date(2026, 3, 29)


def test_clock_and_zone_errors() -> None:
    """Times of day and zone names are checked, with the expected form in the message."""
    assert parse_clock("7:05") == time(7, 5)
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock("7.05")
    with pytest.raises(ValueError, match="unknown time zone"):
        zone("Europe/Atlantis")
