"""The assembled application: one config's parts, built once and shared.

Every command that opens the database and the daemon work through one `App` per loaded
config: the store, the sender, the clock, the renderer and what delivers on top of them
(the outbox, the digests, the feed health notices). Polling feeds needs more — an HTTP
fetcher and a parse worker — and only the commands that poll pay for it:
`monitor.service.pipeline.polling(app)` opens both for as long as feeds are checked.
This module imports neither, so `deliver`, `digest`, `test-notify` and the store reads
never load the HTTP client or start a parse child.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from monitor.config.settings import Config
from monitor.core.clock import Clock, utcnow
from monitor.delivery.digest import Digests
from monitor.delivery.notify import AppriseSender, Sender
from monitor.delivery.outbox import Outbox
from monitor.ingest.decide import DERIVATIONS
from monitor.service.health import FeedHealth
from monitor.store.store import Store
from monitor.templates.render import Renderer


@dataclass(frozen=True, slots=True)
class App:
    """One config, assembled: what delivers alerts, digests and health notices.

    Built by `App.build` (on a store the caller opened) or `App.open` (which opens the
    config's database, and `close` closes it). A reload builds a new App on the same
    store; nothing in one is shared with the next but the store.
    """

    config: Config
    store: Store
    sender: Sender
    clock: Clock
    rng: random.Random
    """Jitter for retry delays, shared by the outbox and the feeds' backoff."""
    renderer: Renderer
    outbox: Outbox
    digests: Digests
    health: FeedHealth

    @classmethod
    def build(
        cls,
        config: Config,
        store: Store,
        *,
        sender: Sender | None = None,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> App:
        """Assemble `config`'s parts on `store`; the sender is apprise's unless given."""
        sender = sender or AppriseSender(config.notify)
        rng = rng or random.Random()
        renderer = Renderer(config.templates.overrides())
        return cls(
            config=config,
            store=store,
            sender=sender,
            clock=clock,
            rng=rng,
            renderer=renderer,
            outbox=Outbox(config, store, sender, renderer, clock=clock, rng=rng),
            digests=Digests(config, store, clock),
            health=FeedHealth(config, store, clock, renderer=renderer),
        )

    @classmethod
    def open(cls, config: Config) -> App:
        """Open the config's database and assemble on it; raises StoreError."""
        return cls.build(config, Store.open(config.database_url(), derive=DERIVATIONS))

    def close(self) -> None:
        """Close the store (for an App made by `open`)."""
        self.store.close()

    async def prepare(self) -> int:
        """Queue what is due besides alerts: the digests whose time has come."""
        return await asyncio.to_thread(self.digests.queue_due)

    async def check_health(self, names: list[str] | None = None) -> None:
        """Tell the health targets about feeds that went wrong or recovered."""
        await asyncio.to_thread(self.health.check, names)
