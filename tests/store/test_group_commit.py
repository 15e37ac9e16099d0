"""Group commit: ingests that wait for the writer share its commit, and stay separate."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text

from monitor.core.errors import StoreError
from monitor.store.items import IngestTransaction
from monitor.store.store import Store
from tests.support.rows import _row

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _commits(store: Store) -> list[int]:
    counted = [0]

    def commit(_connection: Any) -> None:
        counted[0] += 1

    event.listen(store.engine, "commit", commit)
    return counted


def _keys(store: Store) -> set[str]:
    with store._read() as session:
        return {key for (key,) in session.execute(text("select key from item"))}


def _wait_for_queue(store: Store, size: int) -> None:
    """Until `size` works wait behind the one running (polled; no timing is asserted)."""
    deadline = time.monotonic() + 30
    while len(store._waiting) < size:
        assert time.monotonic() < deadline, "the other ingests never queued"
        time.sleep(0.005)


def _insert(key: str) -> Any:
    def work(tx: IngestTransaction) -> int:
        [item_id] = tx.insert([_row(key)], NOW)
        assert item_id is not None
        return item_id

    return work


def _failing(tx: IngestTransaction) -> int:
    tx.insert([_row("never")], NOW)
    raise ValueError("a fault of this feed's ingest")


def _group(store: Store, works: list[tuple[str, Any]]) -> dict[str, object]:
    """Run the works from threads of their own, the later ones queued while the first
    holds the writer; each one's result, or what it raised."""
    results: dict[str, object] = {}
    (lead, lead_work), *rest = works

    def first(tx: IngestTransaction) -> object:
        _wait_for_queue(store, len(rest))
        return lead_work(tx)

    def run(name: str, work: Any) -> None:
        try:
            results[name] = store.ingest_grouped(name, work)
        except (ValueError, StoreError, RuntimeError) as exc:
            results[name] = exc

    threads = [threading.Thread(target=run, args=(lead, first))]
    threads[0].start()
    while not store._write_lock.locked():
        time.sleep(0.001)
    for name, work in rest:
        threads.append(threading.Thread(target=run, args=(name, work)))
        threads[-1].start()
    for thread in threads:
        thread.join(60)
    return results


def test_waiting_ingests_share_one_commit_and_fail_alone(store: Store) -> None:
    """While one ingest holds the writer, three queue; they are written in one commit,
    and the one that raises leaves nothing and raises in its own caller only."""
    store.sync_feeds([(name, f"https://news.example/{name}") for name in "abcd"])
    commits = _commits(store)
    works = [("a", _insert("a1")), ("b", _insert("b1")), ("c", _failing), ("d", _insert("d1"))]
    results = _group(store, works)
    assert isinstance(results["c"], ValueError)
    assert all(isinstance(results[name], int) for name in "abd")
    assert _keys(store) == {"a1", "b1", "d1"}
    assert commits[0] == 2  # "a" alone (it held the writer), then "b", "c" and "d"


def test_a_failed_commit_fails_every_ingest_of_its_group(store: Store) -> None:
    """When the database refuses a group's commit, none of its ingests is written, and
    each caller hears of it; the next ingest is written as usual."""
    store.sync_feeds([(name, f"https://news.example/{name}") for name in "abcd"])
    refused = [0]

    def refuse(_connection: Any) -> None:
        if refused[0] < 2:  # "a" alone, then "b" with "c"
            refused[0] += 1
            raise RuntimeError("disk full")

    event.listen(store.engine, "commit", refuse)
    results = _group(store, [("a", _insert("a1")), ("b", _insert("b1")), ("c", _insert("c1"))])
    assert all(isinstance(results[name], (StoreError, RuntimeError)) for name in "abc")
    assert store.ingest_grouped("d", _insert("d1")) is not None
    assert _keys(store) == {"d1"}
