"""What pruning a year of history costs, and what it gives back.

    python bench/retention.py --items 1000000 [--feeds 2000] [--database URL]

Builds a database (a fresh SQLite file unless `--database` names an empty one) of
`--items` items spread evenly over the last 365 days across `--feeds` feeds: 5% of them
relevant to one story with 16 cluster bands each, one in 500 a milestone's report
(attached to one of a few events), one in 50 announced by an update delivery that was
sent. Rows are written straight into the tables (the ingest path would take hours for
a year), then `Store.prune` runs with the default 90-day retention, timed, and the
rows removed and the file size before and after are printed. VACUUM is not run: on
SQLite the file keeps its size, and the freed pages are reused by later inserts.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select

from monitor.store.store import Store
from monitor.store.tables import ClusterBand, Delivery, Event, Feed, Item

_ITEM: Table = Item.__table__  # type: ignore[attr-defined]
_BAND: Table = ClusterBand.__table__  # type: ignore[attr-defined]
_EVENT: Table = Event.__table__  # type: ignore[attr-defined]
_DELIVERY: Table = Delivery.__table__  # type: ignore[attr-defined]
STORY = "story"
CHUNK = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--retention", type=int, default=90, help="days")
    parser.add_argument("--database", help="an empty database's URL (default: a temp SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="monitor-retention-") as folder:
        path = Path(folder) / "bench.db"
        store = Store.open(args.database or f"sqlite:///{path}")
        now = datetime.now(UTC)
        started = time.perf_counter()
        build(store, args.items, args.feeds, now)
        print(f"built {args.items:,} items over 365 days in {time.perf_counter() - started:.0f} s")
        before = counts(store)
        size = _size(path) if args.database is None else None
        print(f"rows before: {before}" + (f", file {size / 1e6:.0f} MB" if size else ""))
        cutoff = now - timedelta(days=args.retention)
        started = time.perf_counter()
        dry = store.prune(cutoff, now=now, dry_run=True)
        dry_s = time.perf_counter() - started
        started = time.perf_counter()
        report = store.prune(cutoff, now=now)
        took = time.perf_counter() - started
        after = counts(store)
        print(f"dry run: {dry_s:.1f} s, would remove {dry.items:,} items")
        print(
            f"prune: {took:.1f} s; removed {report.items:,} items, {report.bands:,} bands, "
            f"{report.deliveries:,} deliveries; kept {report.kept:,} older items"
        )
        print(f"rows after: {after}" + (f", file {_size(path) / 1e6:.0f} MB" if size else ""))
        store.close()


def build(store: Store, items: int, feeds: int, now: datetime) -> None:
    """Rows as a year of ingest leaves them, written in chunks of CHUNK."""
    rng = random.Random(12)
    store.sync_feeds([(f"feed{i}", f"http://feed{i}.example/rss") for i in range(feeds)])
    with store._read() as session:
        feed_ids = [int(i) for i in session.execute(select(Feed.id)).scalars()]
    start = now - timedelta(days=365)
    step = timedelta(days=365) / items
    with store._write() as session:
        db = session.connection()
        db.execute(
            _EVENT.insert(),
            [
                {
                    "story": STORY,
                    "milestone": f"m{i}",
                    "created_at": start,
                    "title": f"event {i}",
                    "silent": False,
                }
                for i in range(4)
            ],
        )
    next_id = 1
    for first in range(0, items, CHUNK):
        rows: list[dict[str, Any]] = []
        bands: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        for n in range(first, min(first + CHUNK, items)):
            item_id = next_id
            next_id += 1
            seen = start + step * n
            relevant = n % 20 == 0
            milestone = n % 500 == 0
            rows.append(
                {
                    "id": item_id,
                    "feed_id": feed_ids[n % len(feed_ids)],
                    "key": f"k{n}",
                    "url": f"https://news.example/{n}",
                    "title": f"Headline number {n} about something",
                    "summary": "A summary of a typical length for a feed entry. " * 3,
                    "seen_at": seen,
                    "published": seen,
                    "story": STORY if relevant else None,
                    "milestone": f"m{n % 4}" if milestone else None,
                    "cluster_id": item_id if relevant else None,
                    "event_id": (n // 500) % 4 + 1 if milestone else None,
                    "content_hash": f"{n:032x}",
                    "silent": False,
                }
            )
            if relevant:
                bands += [
                    {
                        "story": STORY,
                        "key": rng.getrandbits(62),
                        "item_id": item_id,
                        "seen_at": seen,
                    }
                    for _ in range(16)
                ]
            if n % 50 == 0:
                deliveries.append(
                    {
                        "kind": "update",
                        "dedup_key": f"update:{item_id}",
                        "target": "desk",
                        "status": "sent",
                        "attempts": 1,
                        "created_at": seen,
                        "next_attempt_at": seen,
                        "sent_at": seen,
                        "item_id": item_id,
                        "reported": False,
                    }
                )
        with store._write() as session:
            db = session.connection()
            db.execute(_ITEM.insert(), rows)
            db.execute(_BAND.insert(), bands)
            if deliveries:
                db.execute(_DELIVERY.insert(), deliveries)


def counts(store: Store) -> dict[str, int]:
    with store._read() as session:
        return {
            name: int(session.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in [("item", _ITEM), ("cluster_band", _BAND), ("delivery", _DELIVERY)]
        }


def _size(path: Path) -> int:
    return sum(os.path.getsize(f) for f in (path, Path(f"{path}-wal")) if os.path.exists(f))


if __name__ == "__main__":
    main()
