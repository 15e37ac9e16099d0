"""Wall-clock rules: quiet hours and the daily digest time, in a named time zone.

Everything here is pure: it takes an aware UTC `now` and returns aware UTC moments, so
the outbox and the digest can be tested with a clock the test moves. Local times that
do not exist (the hour skipped when clocks go forward) or exist twice (the hour repeated
when they go back) are resolved the way `zoneinfo` does: the earlier reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_RANGE = re.compile(r"^\s*(\S+)\s*-\s*(\S+)\s*$")


def parse_clock(text: str) -> time:
    """`"07:30"` → `time(7, 30)`; anything else raises ValueError."""
    match = _CLOCK.match(text.strip())
    if match is None:
        raise ValueError(f"not a time of day: {text!r} (use HH:MM, 24-hour, e.g. 07:30)")
    return time(int(match.group(1)), int(match.group(2)))


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. `Europe/Moscow`); ValueError when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name, e.g. Europe/Moscow)"
        ) from None


def _at(day: date, moment: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window (`start` to `end`, local time) in which a target is not disturbed.

    A window whose start is after its end spans midnight (`22:00-07:00`).
    """

    start: time
    end: time
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo) -> QuietHours:
        match = _RANGE.match(text)
        if match is None:
            raise ValueError(f"not a time range: {text!r} (use HH:MM-HH:MM, e.g. 22:00-07:00)")
        start, end = parse_clock(match.group(1)), parse_clock(match.group(2))
        if start == end:
            raise ValueError(f"quiet hours {text!r} start and end at the same time")
        return cls(start, end, tz)

    def until(self, now: datetime) -> datetime | None:
        """When the quiet window containing `now` ends (UTC), or None when not quiet."""
        local = now.astimezone(self.tz)
        for day in (local.date() - timedelta(days=1), local.date()):
            begins = _at(day, self.start, self.tz)
            ends_day = day if self.start < self.end else day + timedelta(days=1)
            ends = _at(ends_day, self.end, self.tz)
            if begins <= now < ends:
                return ends
        return None

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.tz.key}"


def last_daily(now: datetime, moment: time, tz: ZoneInfo) -> tuple[date, datetime]:
    """The latest occurrence of local time `moment` at or before `now`: (local date, UTC)."""
    today = now.astimezone(tz).date()
    for day in (today, today - timedelta(days=1), today - timedelta(days=2)):
        at = _at(day, moment, tz)
        if at <= now:
            return day, at
    raise AssertionError("a daily time occurs within any 48 hours")  # pragma: no cover
