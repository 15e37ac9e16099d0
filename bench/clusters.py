"""What clustering one new relevant item costs as a story's clustering window fills up.

    python bench/clusters.py 1000 4000 20000

Ingests relevant items (35 random words of a 5,000-word vocabulary each, so nothing is
a near-duplicate and every item is a candidate only by chance) into a fresh SQLite
store, 200 at a time, and at each size times ingesting 20 more: milliseconds per item,
best of three. The whole ingest is timed (item insert, signature, band lookup and
insert), as `monitor once` pays it.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.ingest import record
from monitor.ingest.decide import Classified
from monitor.ingest.entry import Entry
from monitor.match.classify import Verdict
from monitor.store.store import Store

VOCABULARY = [f"w{i}" for i in range(5000)]
RELEVANT = Verdict(story="story", milestone=None, terms={"watch": ("w",)}, why="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", type=int, nargs="+", help="relevant items in the window")
    args = parser.parse_args()
    rng = random.Random(7)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="monitor-clusters-") as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'bench.db'}")
        store.sync_feeds([("feed", "http://x.example/")])
        count = 0

        def ingest(size: int) -> float:
            nonlocal count
            items = []
            for _ in range(size):
                count += 1
                summary = " ".join(rng.choice(VOCABULARY) for _ in range(35))
                entry = Entry(f"k{count}", f"http://x.example/{count}", f"T{count}", summary, now)
                items.append(Classified(entry, RELEVANT))
            begin = time.perf_counter()
            record.ingest(
                store,
                "feed",
                items,
                now=now,
                next_check=now,
                alert_after=now - timedelta(days=3),
                route=lambda story, milestone: [],
            )
            return (time.perf_counter() - begin) / size

        for size in args.sizes:
            while count < size:
                ingest(200)
            per_item = min(ingest(20) for _ in range(3))
            print(f"{size:>7} relevant items in the window: {per_item * 1000:.2f} ms per new item")
        store.close()


if __name__ == "__main__":
    main()
