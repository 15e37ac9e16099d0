"""Killing the delivery process (SIGKILL) at random points loses nothing, and repeats
at most the one send that was in flight when it died."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.config.settings import load_config
from monitor.store.store import Store
from monitor.store.views import SENT, Notice
from tests.conftest import REPO, write_config
from tests.support.events import Newsroom, alert_title
from tests.support.servers import AlertReceiver

SEED = 20261127
MESSAGES = 24
MAX_ROUNDS = 40
LEASE_SECONDS = 300
POINTS = ["claim", "request", "send", "finish"]
"""Where a process dies: after leasing a delivery; while its request is being answered
(killed from outside by the receiver); after the send, before recording it; after
recording it."""
REPEATS = {"request", "send"}
"""The deaths that leave a message delivered but not recorded: it is sent again."""


@dataclass
class Round:
    """One delivery process: where it was to die, and what the receiver got meanwhile."""

    point: str
    n: int
    died: bool = False
    titles: list[str] = field(default_factory=list)


class Killer:
    """Runs delivery processes, each dying at a seeded random point of its work."""

    def __init__(self, config: Path, receiver: AlertReceiver) -> None:
        self.config = config
        self.rounds: list[Round] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        receiver.on_request = self._on_request

    def _on_request(self, payload: dict[str, Any]) -> None:
        """Called by the receiver as each message arrives, before it answers."""
        with self._lock:
            current = self.rounds[-1]
            current.titles.append(payload["title"])
            if current.point == "request" and len(current.titles) == current.n:
                assert self._process is not None
                os.kill(self._process.pid, signal.SIGKILL)

    def run(self, point: str, n: int) -> Round:
        offset = len(self.rounds) * 2 * LEASE_SECONDS  # later than every lease left behind
        command = [sys.executable, "-m", "tests.support.deliver_worker", str(self.config)]
        command += [str(offset)] + ([point, str(n)] if point in ("claim", "send", "finish") else [])
        with self._lock:
            self.rounds.append(Round(point, n))
            self._process = subprocess.Popen(
                command,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        code = self._process.wait(timeout=30)
        self.rounds[-1].died = code == -signal.SIGKILL
        return self.rounds[-1]


@pytest.mark.slow
def test_sigkill_during_delivery_loses_nothing(tmp_path: Path, receiver: AlertReceiver) -> None:
    """Seeded kills: every message arrives; each death mid-send repeats that send only."""
    config_path = write_config(
        tmp_path,
        {"wire": "https://wire.example/rss"},
        [{"name": "hook", "url": receiver.url}],
        delivery={"lease": f"{LEASE_SECONDS}s"},
    )
    config = load_config(config_path)
    store = Store.open(config.database_url())
    now = datetime.now(UTC)
    Newsroom(store, config, lambda: now).report(
        "Monument to North Korean soldiers unveiled in Kursk", "unveiling"
    )
    notices = [Notice(f"crash:{i}", ["hook"], f"message {i:02d}", "b") for i in range(MESSAGES - 1)]
    store.enqueue(notices, now=now)
    expected = {alert_title("unveiling")}
    expected |= {f"monitor: {n.title}" for n in notices}

    rng = random.Random(SEED)
    killer = Killer(config_path, receiver)
    while store.undelivered(["hook"]) and len(killer.rounds) < MAX_ROUNDS:
        killer.run(rng.choice(POINTS), rng.randint(1, 4))
    clean = killer.run("none", 0)

    received = Counter(m["title"] for m in receiver.messages())
    deaths = [r for r in killer.rounds if r.died]
    repeats = [r for r in deaths if r.point in REPEATS]
    duplicates = {title: n - 1 for title, n in received.items() if n > 1}
    summary = (
        f"{len(killer.rounds)} processes, {len(deaths)} SIGKILLed "
        f"({Counter(r.point for r in deaths)}), {len(expected - set(received))} lost, "
        f"{sum(duplicates.values())} duplicates"
    )
    print(summary)
    assert set(received) == expected, summary  # nothing lost, nothing invented
    assert not clean.died
    assert len(deaths) >= 8, summary
    # Exactly one duplicate per death between send and record, of the send in flight.
    assert sum(duplicates.values()) == len(repeats), summary
    assert Counter(r.titles[-1] for r in repeats) == Counter(duplicates), summary
    assert {r.status for r in store.outbox(["pending", "failed", "dead", SENT])} == {SENT}
    store.close()
