"""One way to write a duration, for messages and for `monitor status` alike."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from monitor.core.clock import span, utcnow


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        pytest.param(timedelta(0), "0 seconds", id="zero"),
        pytest.param(timedelta(seconds=1), "1 second", id="one-second"),
        pytest.param(timedelta(seconds=42), "42 seconds", id="seconds"),
        pytest.param(timedelta(minutes=1), "1 minute", id="one-minute"),
        pytest.param(timedelta(minutes=90), "90 minutes", id="minutes-below-two-hours"),
        pytest.param(timedelta(hours=2), "2 hours", id="whole-hours"),
        pytest.param(timedelta(hours=3, minutes=30), "3.5 hours", id="tenths-of-hours"),
        pytest.param(timedelta(hours=47), "47 hours", id="hours-below-two-days"),
        pytest.param(timedelta(days=2), "2 days", id="whole-days"),
        pytest.param(timedelta(days=2, hours=12), "2.5 days", id="tenths-of-days"),
        pytest.param(timedelta(minutes=-5), "5 minutes", id="negative-is-its-length"),
    ],
)
def test_span(delta: timedelta, text: str) -> None:
    """Seconds, then minutes to two hours, hours to two days, then days; no `.0`."""
    assert span(delta) == text


def test_utcnow_is_aware() -> None:
    """The real clock gives UTC, aware, like every clock handed to a stage."""
    assert utcnow().tzinfo is UTC
