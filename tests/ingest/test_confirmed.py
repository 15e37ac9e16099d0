"""`decide.confirmed`: which waiting alerts the reports so far confirm."""

from __future__ import annotations

import pytest

from monitor.ingest.decide import confirmed
from monitor.store.items import Reporter, Waiting

PRESS_A = Reporter("Kursk Pravda", "press")
PRESS_B = Reporter("Seoul Daily", "press")
AGGREGATOR = Reporter("Google News", "aggregator")


@pytest.mark.parametrize(
    ("needed", "reports", "released"),
    [
        pytest.param(2, [PRESS_A], False, id="one-press-outlet"),
        pytest.param(2, [PRESS_A, PRESS_A], False, id="one-outlet-twice"),
        pytest.param(2, [PRESS_A, PRESS_B], True, id="two-press-outlets"),
        pytest.param(3, [PRESS_A, PRESS_B], False, id="two-of-three"),
        pytest.param(3, [PRESS_A, PRESS_B, AGGREGATOR], True, id="aggregator-counts-as-outlet"),
        pytest.param(5, [Reporter("governor", "official")], True, id="official-alone"),
        pytest.param(5, [PRESS_A, Reporter("TASS", "agency")], True, id="agency-alone"),
        pytest.param(2, [AGGREGATOR], False, id="aggregator-alone"),
        pytest.param(2, [], False, id="no-reports"),
    ],
)
def test_confirmation(needed: int, reports: list[Reporter], released: bool) -> None:
    """N distinct outlets, or one official or agency source, confirm; nothing else does."""
    waiting = [Waiting(id=7, event_id=1, target="careful", confirm=needed)]
    assert confirmed(waiting, {1: reports}) == ([7] if released else [])


def test_each_alert_has_its_own_count_and_event() -> None:
    """Two targets waiting on one event for different counts, and an event with no
    reports yet: each is judged on its own."""
    waiting = [
        Waiting(id=1, event_id=1, target="two", confirm=2),
        Waiting(id=2, event_id=1, target="three", confirm=3),
        Waiting(id=3, event_id=2, target="two", confirm=2),
    ]
    assert confirmed(waiting, {1: [PRESS_A, PRESS_B]}) == [1]
