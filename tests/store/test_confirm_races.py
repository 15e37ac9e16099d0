"""Two ingests confirming one milestone at once, on PostgreSQL: the confirmation is not
lost for being split between them, and neither fails."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, text

from monitor.ingest import record
from monitor.ingest.decide import Classified, IngestResult
from monitor.ingest.entry import Entry
from monitor.match.classify import Verdict
from monitor.store.store import Store
from tests.support.postgres import schema_url

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STORY = "kursk-kpa-monument"
UNVEILED = Verdict(STORY, "unveiling", {"watch": ("monument",)}, "test")
WEATHER = Verdict(None, None, {}, "no story")


def _ingest(store: Store, feed: str, verdict: Verdict, key: str) -> IngestResult:
    item = Entry(
        key=key,
        url=f"https://{feed}.example/{key}",
        title="Monument unveiled in Kursk" if verdict.story else "Weather",
        summary=f"as {feed} reports it",
        published=NOW - timedelta(minutes=5),
        outlet=None,
        lang="en",
    )
    return record.ingest(
        store,
        feed,
        [Classified(item, verdict)],
        now=NOW,
        next_check=NOW + timedelta(minutes=15),
        alert_after=NOW - timedelta(days=3),
        route=lambda story, milestone: ["desk"],
        confirming=lambda story, milestone: {"careful": 3},
    )


@pytest.mark.postgres
def test_two_confirming_ingests_at_once_release_the_alert() -> None:
    """The third outlet's report arrives in two processes' ingests at the same moment
    (held at the event's row until both are in flight): the later one counts the
    earlier one's report, so `confirm: 3` is met and the alert is released, once."""
    with schema_url() as url:
        store = Store.open(url)
        side = create_engine(url)
        try:
            store.sync_feeds([(f, f"https://{f}.example/rss") for f in ("a", "b", "c")])
            for feed in ("a", "b", "c"):
                _ingest(store, feed, WEATHER, "old")
            _ingest(store, "a", UNVEILED, "k")
            [waiting] = store.outbox(["waiting"])
            assert waiting.target == "careful"

            results: dict[str, IngestResult | BaseException] = {}
            # One store each, as two instances have (a store's writes take turns).
            instances = {feed: Store.open(url) for feed in ("b", "c")}

            def run(feed: str) -> None:
                try:
                    results[feed] = _ingest(instances[feed], feed, UNVEILED, "k")
                except BaseException as exc:  # reported by the assertion below
                    results[feed] = exc

            with side.connect() as holder:
                holder.begin()
                holder.execute(text("select id from event for update"))
                holder_pid = holder.execute(text("select pg_backend_pid()")).scalar_one()
                threads = [threading.Thread(target=run, args=(f,)) for f in ("b", "c")]
                for thread in threads:
                    thread.start()
                _wait_for_blocked(side, holder_pid, count=2)
                holder.rollback()
            for thread in threads:
                thread.join(timeout=60)
            for instance in instances.values():
                instance.close()
            assert all(isinstance(r, IngestResult) for r in results.values()), results
            confirmed = sorted(r.confirmed for r in results.values())  # type: ignore[union-attr]
            assert confirmed == [0, 1]
            assert store.outbox(["waiting"]) == []
            [due] = [row for row in store.outbox(["pending"]) if row.target == "careful"]
            assert due.id == waiting.id
        finally:
            side.dispose()
            store.close()


def _wait_for_blocked(engine: Engine, holder: int, count: int) -> None:
    """Until `count` sessions wait on the holder's lock (a deadline, not a measurement:
    the threads reach the lock however slowly the machine runs)."""
    deadline = time.monotonic() + 60
    blocked = text("select count(*) from pg_stat_activity where :pid = any(pg_blocking_pids(pid))")
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(blocked, {"pid": holder}).scalar_one() >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"{count} ingests never reached the event's lock")
