"""Where a cold cycle's CPU goes, stage by stage, on the farm's feeds (no HTTP).

    bench/.venv/bin/python bench/stages.py --feeds 400 --items 40

Times, in one process and one thread, what `monitor once` does to the farm's bodies:
start-up (imports, config), parse, prefilter, classify, and ingest into a fresh SQLite
store. CPU seconds (time.process_time), best of --repeat runs per stage. The worker's
read is what the parse worker does on the second core (parse, prefilter, classify, hash,
sign); the ingest gets what it hands over, as in the service.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import farm  # bench/farm.py
import yaml

BENCH = Path(__file__).resolve().parent


def _import_cli() -> None:
    """What `monitor once` loads before it reads a feed; the import is what is timed."""
    import monitor.cli.commands.service  # noqa: PLC0415
    import monitor.cli.main  # noqa: F401, PLC0415


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=400)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--relevant", type=float, default=0.01, help="share about the story")
    parser.add_argument("--profile", help="write a cProfile of one ingest to this file")
    return parser.parse_args()


def _config(folder: Path, feeds: int) -> Path:
    """The shipped config's stories, with `feeds` feeds."""
    shipped = (BENCH.parent / "config.yaml").read_text(encoding="utf-8")
    stories = shipped[shipped.index("# --- stories ---") :]
    document = {"feeds": [{"name": f"feed-{i}", "url": f"http://x/{i}"} for i in range(feeds)]}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document) + "\n" + stories, encoding="utf-8")
    return path


def main() -> None:
    args = _arguments()

    started = time.process_time()
    _import_cli()
    from monitor.config.settings import load_config  # noqa: PLC0415
    from monitor.ingest import record  # noqa: PLC0415
    from monitor.ingest.parse import parse  # noqa: PLC0415
    from monitor.ingest.worker import read_feed  # noqa: PLC0415
    from monitor.match.classify import classify, prefilter  # noqa: PLC0415
    from monitor.store.store import Store  # noqa: PLC0415

    imports = time.process_time() - started

    feeds = farm.build(args.feeds, args.items, hosts=20, relevant=args.relevant)
    folder = Path(tempfile.mkdtemp(prefix="monitor-stages-"))
    config_path = _config(folder, len(feeds))

    def best(work: object) -> float:
        times = []
        for _ in range(args.repeat):
            begin = time.process_time()
            work()  # type: ignore[operator]
            times.append(time.process_time() - begin)
        return min(times)

    config = load_config(config_path)
    figures = {"imports": imports, "load config": best(lambda: load_config(config_path))}
    # Parts of the worker's read, timed alone; they are not added into the total.
    xml = "application/xml"
    figures["(of which) parse"] = best(lambda: [parse(f.body, "http://x/", xml) for f in feeds])
    parsed = [parse(f.body, "http://x/", "application/xml").entries for f in feeds]
    entries = [e for found in parsed for e in found]
    figures["(of which) prefilter"] = best(
        lambda: [prefilter(e.title, e.summary, config.stories) for e in entries]
    )
    admitted = [e for e in entries if prefilter(e.title, e.summary, config.stories)]
    figures["(of which) classify (admitted only)"] = best(
        lambda: [classify(e.title, e.summary, config.stories) for e in admitted]
    )
    # What the parse worker hands the service: parsed, judged, hashed and, when relevant,
    # signed (the signature is computed there, not in the ingest timed below).
    figures["worker read: parse, prefilter, classify, hash, sign"] = best(
        lambda: [read_feed(f.body, "http://x/", xml, None, config.stories) for f in feeds]
    )
    per_feed = _handed_over(feeds, config.stories)

    stored: dict[str, int] = {}

    def ingest() -> None:
        database = folder / f"stages-{time.monotonic_ns()}.db"
        store = Store.open(f"sqlite:///{database}")
        store.sync_feeds([(f"feed-{i}", f"http://x/{i}") for i in range(len(feeds))])
        now = datetime.now(UTC)
        begin = time.process_time()
        for i, items in enumerate(per_feed):
            record.ingest(
                store,
                f"feed-{i}",
                items,
                now=now,
                next_check=now + timedelta(minutes=15),
                alert_after=now - timedelta(days=3),
                route=lambda story, milestone: ["stdout"],
            )
        figures["ingest"] = min(figures.get("ingest", 1e9), time.process_time() - begin)
        stored.update(_relevant_stored(store.engine))
        store.close()

    for _ in range(args.repeat):
        ingest()
    if args.profile:
        import cProfile  # noqa: PLC0415

        cProfile.runctx("ingest()", globals(), {"ingest": ingest}, args.profile)

    print(f"{len(entries)} entries from {len(feeds)} feeds; {len(admitted)} past the prefilter")
    show(figures)
    print("stored (relevant items):", stored)
    for leftover in folder.iterdir():
        leftover.unlink()
    os.rmdir(folder)


def _handed_over(feeds: list[Any], stories: Any) -> list[list[Any]]:
    """Each feed's entries as the parse worker hands them to the ingest."""
    from monitor.ingest.decide import Classified  # noqa: PLC0415
    from monitor.ingest.worker import read_feed  # noqa: PLC0415
    from monitor.match.classify import Verdict  # noqa: PLC0415

    irrelevant = Verdict(story=None, milestone=None)
    return [
        [
            Classified(e, v or irrelevant)
            for e, v in read_feed(f.body, "http://x/", "application/xml", None, stories)
        ]
        for f in feeds
    ]


def _relevant_stored(engine: Any) -> dict[str, int]:
    """What the ingest made of the relevant items: to compare clustering between runs."""
    with engine.connect() as db:
        relevant, clusters, copies = db.exec_driver_sql(
            "select count(*), count(distinct cluster_id), count(duplicate_of)"
            " from item where story is not null"
        ).one()
        bands = db.exec_driver_sql("select count(*) from cluster_band").scalar_one()
    return {"relevant": relevant, "clusters": clusters, "copies": copies, "bands": bands}


def show(figures: dict[str, float]) -> None:
    total = sum(v for k, v in figures.items() if not k.startswith("(of which)"))
    print("| stage | CPU s | share |")
    print("|---|---:|---:|")
    for stage, seconds in figures.items():
        print(f"| {stage} | {seconds:.2f} | {seconds / total:.0%} |")
    print(f"| total | {total:.2f} | |")


if __name__ == "__main__":
    main()
