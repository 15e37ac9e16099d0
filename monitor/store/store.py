"""The store stage: the only SQL in the service, behind one `Store`.

    engine.py      the engine, its sessions, database errors as StoreError
    migrations.py  named schema migrations
    feeds.py       feeds: validators, failures, health and arrivals
    items.py       ingest persistence: the facts an ingest decides on, its decisions written
    outbox.py      deliveries: queued, claimed, sent, retried, folded, dead
    reports.py     read models: events, updates, items, digest material
    retention.py   pruning what is older than the retention
    views.py       the frozen values all of these return

The store decides nothing about what a report is (`monitor.ingest.decide` does) and
imports no stage. Every public method raises only `StoreError` for a failing database
(`wrap_public_methods`): no SQLAlchemy exception, and no ORM row, leaves the store.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlmodel import select

from monitor.core.errors import StoreError
from monitor.store.engine import create_tables, engine_for, wrap_public_methods
from monitor.store.feeds import FeedStore
from monitor.store.items import ItemStore
from monitor.store.migrations import MIGRATION_LOCK, MIGRATIONS, Derivations
from monitor.store.outbox import OutboxStore
from monitor.store.reports import ReportStore
from monitor.store.retention import RetentionStore
from monitor.store.tables import Migration


@wrap_public_methods
class Store(FeedStore, ItemStore, OutboxStore, ReportStore, RetentionStore):
    """Everything monitor remembers, behind one small API."""

    def __init__(self, engine: Engine, *, derive: Derivations | None = None) -> None:
        super().__init__(engine)
        self._derive = derive

    @classmethod
    def open(cls, url: str, *, derive: Derivations | None = None) -> Store:
        """Connect to `url`, apply pending migrations, and return the store. `derive`
        fills in derived values when an older database needs them (`migrations`)."""
        try:
            store = cls(engine_for(url), derive=derive)
            store.migrate()
        except StoreError as exc:
            raise StoreError(f"cannot open database: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot open database: {exc}") from None
        return store

    @staticmethod
    def check(url: str) -> None:
        """Raise StoreError when `url` names a driver that cannot be loaded (no connection)."""
        engine_for(url).dispose()

    def migrate(self) -> None:
        """Apply the named migrations this database has not seen yet, in order.

        One transaction under the database's write lock, the `migration` table's creation
        included: processes opening one fresh database at once (a fleet starting) take
        turns, and the later ones find the work done. SQLite's `BEGIN IMMEDIATE` is that
        lock; on PostgreSQL, whose DDL takes no such lock (two CREATE TABLEs of one name
        collide in its catalogue), it is a transaction-level advisory lock, released by
        the commit."""
        with self._write() as session:
            if not self._sqlite:
                session.connection().execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            create_tables(session, "migration")
            done = set(session.exec(select(Migration.name)).all())
            for name, step in MIGRATIONS:
                if name not in done:
                    step(session, self._derive)
                    session.add(Migration(name=name, applied_at=datetime.now(UTC)))
        self.signed_cache.clear()  # a migration may have signed the window again
