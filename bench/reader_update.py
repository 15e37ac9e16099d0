"""reader's update over the farm: `python reader_update.py DB URLS WORKERS` → one JSON line.

Adds every feed (timed apart), then runs `update_feeds_iter` twice: cold (every entry
new) and warm (every feed unchanged). `scheduled=False` makes the second update poll
every feed again instead of waiting out reader's own update interval.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from reader import UpdatedFeed, make_reader


def update(reader: object, workers: int) -> dict[str, float | int]:
    started = time.perf_counter()
    new = errors = 0
    for result in reader.update_feeds_iter(workers=workers, scheduled=False):  # type: ignore[attr-defined]
        if isinstance(result.value, UpdatedFeed):
            new += result.value.new
        elif isinstance(result.value, Exception):
            errors += 1
    return {"seconds": time.perf_counter() - started, "new": new, "errors": errors}


def main() -> None:
    database, urls_file, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    urls = Path(urls_file).read_text().split()
    started = time.perf_counter()
    reader = make_reader(database)
    for url in urls:
        reader.add_feed(url, exist_ok=True)
    added = time.perf_counter() - started
    cold = update(reader, workers)
    warm = update(reader, workers)
    reader.close()
    print(json.dumps({"add_seconds": added, "cold": cold, "warm": warm}))


if __name__ == "__main__":
    main()
