"""What the health check after one feed's fetch costs, against how much is stored.

    .venv/bin/python bench/health_check.py --rows 1000 60000 --feeds 300

Fills a fresh SQLite store with `--rows` items spread over `--feeds` feeds and 60 days
(rows written directly, so the same script times any checkout: run it with
PYTHONPATH=<checkout>), then times `FeedHealth.check([one feed])`, the call the
pipeline makes after each feed check. Wall seconds, median of --repeat checks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 60000])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from monitor.config.settings import load_config  # noqa: PLC0415 - per checkout
    from monitor.service.health import FeedHealth  # noqa: PLC0415
    from monitor.store.store import Store  # noqa: PLC0415

    now = datetime.now(UTC)
    for rows in args.rows:
        folder = Path(tempfile.mkdtemp(prefix="monitor-health-"))
        shipped = (BENCH.parent / "config.yaml").read_text(encoding="utf-8")
        stories = shipped[shipped.index("# --- stories ---") :]
        names = [f"feed-{i}" for i in range(args.feeds)]
        document = {
            "database": f"sqlite:///{folder / 'monitor.db'}",
            "feeds": [{"name": name, "url": f"http://x/{name}"} for name in names],
        }
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(document) + "\n" + stories, encoding="utf-8")
        config = load_config(path)
        store = Store.open(config.database_url())
        store.sync_feeds([(f.name, f.url) for f in config.feeds])
        span = timedelta(days=60).total_seconds()
        with store.engine.begin() as db:
            ids = dict(db.exec_driver_sql("SELECT name, id FROM feed").all())
            db.exec_driver_sql(
                "INSERT INTO item (feed_id, key, url, title, summary, seen_at, silent)"
                " VALUES (?, ?, ?, ?, ?, ?, 0)",
                [
                    (
                        ids[names[n % args.feeds]],
                        f"k{n}",
                        f"https://news.example/{n}",
                        "Weather",
                        "",
                        # As SQLAlchemy stores a datetime in SQLite.
                        (now - timedelta(seconds=span * n / rows)).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    )
                    for n in range(rows)
                ],
            )
        health = FeedHealth(config, store, lambda: now)
        health.check()  # settle every feed's state: the timed checks write nothing
        times = []
        for n in range(args.repeat):
            begin = time.perf_counter()
            health.check([names[n % args.feeds]])
            times.append(time.perf_counter() - begin)
        store.close()
        median = statistics.median(times) * 1000
        print(f"{rows} rows, {args.feeds} feeds: one feed's check {median:.1f} ms")


if __name__ == "__main__":
    main()
