"""Items written straight through the store, for tests of what is kept over time."""

from __future__ import annotations

from datetime import datetime

from monitor.store.items import NewItem
from monitor.store.store import Store


def store_items(store: Store, feed: str, at: datetime, *keys: str) -> None:
    """Unrelated items of `feed`, each titled by its key, first seen `at`."""
    with store.ingest(feed) as tx:
        tx.insert([_row(key) for key in keys], at)


def _row(key: str) -> NewItem:
    return NewItem(
        key=key,
        url=None,
        title=key,
        summary="",
        outlet=None,
        lang=None,
        published=None,
        story=None,
        milestone=None,
        terms=None,
        signature=None,
        content_hash=key,
        version_of=None,
        silent=True,
    )
