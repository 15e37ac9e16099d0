"""An outbox wired to loopback targets, a real store and a clock the test moves."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.config.settings import load_config
from monitor.delivery.digest import Digests
from monitor.delivery.notify import AppriseSender
from monitor.delivery.outbox import DeliveryReport, Outbox
from monitor.service.health import FeedHealth
from monitor.store.store import Store
from monitor.store.views import OutboxRow
from monitor.templates.render import Renderer
from tests.conftest import write_config
from tests.support.clock import FakeClock
from tests.support.events import Newsroom
from tests.support.plugins import loopback_plugins

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
FEEDS = {"wire": "https://wire.example/rss", "agency": "https://agency.example/rss"}


class Desk:
    """Everything between a new event and a message on a loopback target."""

    def __init__(
        self,
        folder: Path,
        targets: Sequence[Mapping[str, Any]],
        *,
        slack_base: str | None = None,
        start: datetime = START,
        feeds: Mapping[str, str | Mapping[str, Any]] = FEEDS,
        **sections: Any,
    ) -> None:
        self.config = load_config(write_config(folder, feeds, targets, **sections))
        self.clock = FakeClock(start)
        self.store = Store.open(self.config.database_url())
        self.news = Newsroom(self.store, self.config, self.clock)
        sender = AppriseSender(self.config.notify, plugin_factory=loopback_plugins(slack_base))
        self.outbox = Outbox(
            self.config,
            self.store,
            sender,
            Renderer(self.config.templates.overrides()),
            clock=self.clock,
            rng=random.Random(3),
        )
        self.digests = Digests(self.config, self.store, self.clock)
        self.health = FeedHealth(self.config, self.store, self.clock)

    def deliver(self, **options: Any) -> DeliveryReport:
        return asyncio.run(self.outbox.deliver(**options))

    def rows(self, *statuses: str) -> list[OutboxRow]:
        every = ("waiting", "pending", "failed", "sent", "dead", "folded")
        return self.store.outbox(statuses or every)

    def statuses(self, target: str | None = None) -> list[tuple[str, str]]:
        """(kind, status) of every delivery, oldest first (to one target, if given)."""
        return [(r.kind, r.status) for r in self.rows() if target in (None, r.target)]

    def close(self) -> None:
        self.store.close()
