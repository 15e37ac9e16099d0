"""Time as the stages see it: one clock type, and one way to say how long something is.

Every stage that needs the time takes a `Clock` handed in (tests pass a clock they move
by hand), so "now" is never read from a global in decision code. `span` is how every
message and view writes a duration, so a feed's rhythm, a delivery's age limit and a
time in `monitor status` read alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware (UTC)."""


def utcnow() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def span(delta: timedelta) -> str:
    """`42 seconds`, `90 minutes`, `3.5 hours`, `2 days`: words, to a tenth past two hours.

    Minutes up to two hours and hours up to two days, so a small number is never
    rounded into a misleading unit ("1 hour" for 1 h 59 min); a negative span is read
    as its length.
    """
    seconds = abs(delta.total_seconds())
    if seconds < 60:
        return _count(round(seconds), "second")
    minutes = seconds / 60
    if minutes < 120:
        return _count(round(minutes), "minute")
    if minutes < 48 * 60:
        return _count(minutes / 60, "hour")
    return _count(minutes / 1440, "day")


def _count(amount: float, unit: str) -> str:
    """`1 minute`, `3 minutes`, `3.5 hours`: one decimal at most, none when it is zero."""
    text = f"{amount:.1f}".removesuffix(".0")
    return f"{text} {unit}" if text == "1" else f"{text} {unit}s"
