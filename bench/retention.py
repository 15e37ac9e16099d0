"""What pruning a year of history costs, and what it gives back.

    python bench/retention.py --items 1000000 [--feeds 2000] [--database URL]

Builds a database (a fresh SQLite file unless `--database` names an empty one) of
`--items` items spread evenly over the last 365 days across `--feeds` feeds: 5% of them
relevant to one story with 16 cluster bands each, one in 500 a milestone's report
(attached to one of a few events), one in 50 announced by an update delivery that was
sent. Rows are written straight into the tables by bench/aged.py (the ingest path
would take hours for a year), then `Store.prune` runs with the default 90-day
retention, timed, and the rows removed and the file size before and after are printed.
VACUUM is not run: on SQLite the file keeps its size, and the freed pages are reused by
later inserts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aged  # bench/aged.py, beside this script: the rows, shared with bench/history.py
from sqlalchemy import func, select

from monitor.store.store import Store
from monitor.store.tables import BAND_TABLE, DELIVERY_TABLE, ITEM_TABLE


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
        feeds = [(f"feed{i}", f"http://feed{i}.example/rss") for i in range(args.feeds)]
        aged.build(store, feeds, args.items, 365, now)
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


def counts(store: Store) -> dict[str, int]:
    with store._read() as session:
        return {
            name: int(session.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in [
                ("item", ITEM_TABLE),
                ("cluster_band", BAND_TABLE),
                ("delivery", DELIVERY_TABLE),
            ]
        }


def _size(path: Path) -> int:
    return sum(os.path.getsize(f) for f in (path, Path(f"{path}-wal")) if os.path.exists(f))


if __name__ == "__main__":
    main()
