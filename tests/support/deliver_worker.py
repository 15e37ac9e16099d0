"""A delivery process for the crash test: drain the outbox once, on a shifted clock.

    python -m tests.support.deliver_worker CONFIG OFFSET_SECONDS [POINT N]

The clock runs OFFSET_SECONDS ahead of real time, so a test can start a new process
"later" than the leases a killed one left behind, without sleeping through them.
With POINT and N the process SIGKILLs itself right after the N-th `claim` (a delivery
leased, not yet sent), `send` (sent, not yet recorded) or `finish` (recorded): the
same death as `kill -9` from outside, at a point the test chose. Apprise's pause
between two sends to one target is dropped, as in the other tests.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.config.settings import load_config
from monitor.delivery.notify import AppriseSender
from monitor.delivery.outbox import Outbox
from monitor.store.store import Store
from monitor.templates.render import Renderer
from tests.support.plugins import loopback_plugins


class DieAfter:
    """Wraps `target`; after the `n`-th call of `method` that did something, SIGKILL."""

    def __init__(self, target: Any, method: str, n: int) -> None:
        self._target = target
        self._method = method
        self._left = n

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name != self._method:
            return attribute
        return self._counting(attribute)

    def _counting(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = call(*args, **kwargs)
            if result or result is None:  # an empty claim did nothing
                self._left -= 1
                if self._left == 0:
                    os.kill(os.getpid(), signal.SIGKILL)
            return result

        return wrapped


def main(config_path: str, offset: str, point: str = "", n: str = "0") -> int:
    config = load_config(Path(config_path))
    shift = timedelta(seconds=float(offset))
    store: Any = Store.open(config.database_url())
    sender: Any = AppriseSender(config.notify, plugin_factory=loopback_plugins())
    if point == "claim":
        store = DieAfter(store, "claim_due", int(n))
    elif point == "finish":
        store = DieAfter(store, "finish", int(n))
    elif point == "send":
        sender = DieAfter(sender, "send", int(n))
    outbox = Outbox(
        config,
        store,
        sender,
        Renderer(config.templates.overrides()),
        clock=lambda: datetime.now(UTC) + shift,
        rng=random.Random(),
    )
    report = asyncio.run(outbox.deliver())
    store.close()
    return 0 if report.failed == 0 and report.dead == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
