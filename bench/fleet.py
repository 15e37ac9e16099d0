"""A fleet of `monitor run` processes on one PostgreSQL database, against one process.

    bench/.venv/bin/python bench/fleet.py --feeds 400 --items 40 --instances 1 3 \\
        --interval 20 --rounds 4

Serves the farm (bench/farm.py) on loopback, then for each fleet size: a fresh
PostgreSQL schema, that many `monitor run` processes started together on one config,
and for `--rounds` intervals after the first:

- the first round: from the start until every feed has been checked once (every entry
  new: the silent baseline, the whole ingest path), beside reader's cold update of the
  same farm in the same run;
- the rounds after it (every feed 304): checks per feed per interval across the fleet,
  feeds checked twice within half an interval (a claim shared by two instances: must be
  0), the longest wait of any feed between two checks, and each process's CPU seconds;
- with `--kill`, one process SIGKILLed half way: the longest any feed then waited.

Checks are read from each process's JSON log (`feed.checked` and `feed.failed` lines,
with their feed and time). Prints a Markdown report and writes it, with the raw
figures, to bench/out/fleet-*.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import farm  # bench/farm.py: the feeds the farm serves
import poll  # bench/poll.py: the farm, the reader run and the machine, as it measures them
import yaml
from sqlalchemy import create_engine, text

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PG_ROOT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Schema:
    """A fresh schema on the local PostgreSQL, dropped afterwards."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.name = f"bench_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> str:
        engine = create_engine(self.root)
        with engine.begin() as connection:
            connection.execute(text(f"create schema {self.name}"))
        engine.dispose()
        return f"{self.root}?options=-csearch_path%3D{self.name}"

    def __exit__(self, *_: object) -> None:
        engine = create_engine(self.root)
        with engine.begin() as connection:
            connection.execute(text(f"drop schema {self.name} cascade"))
        engine.dispose()


def config_for(folder: Path, urls: list[str], database: str, interval: int) -> Path:
    shipped = (REPO / "config.yaml").read_text(encoding="utf-8")
    stories = shipped[shipped.index(poll.STORIES_MARKER) :]
    document = {
        "database": database,
        "fetch": {"interval": f"{interval}s", "jitter": f"{max(interval // 10, 1)}s"},
        "feeds": [{"name": f"feed-{i:04d}", "url": url} for i, url in enumerate(urls)],
        "notify": [],
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False) + "\n" + stories, encoding="utf-8")
    return path


def checks(log: Path) -> list[tuple[str, float]]:
    """(feed, Unix time) of every check the log records."""
    found = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("event") in ("feed.checked", "feed.failed") and "feed" in event:
            moment = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
            found.append((event["feed"], moment.timestamp()))
    return found


def _started(log: Path) -> float:
    """When the instance logged `service.started` (Unix time)."""
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.startswith("{") and '"service.started"' in line:
            moment = json.loads(line)["timestamp"].replace("Z", "+00:00")
            return datetime.fromisoformat(moment).timestamp()
    raise SystemExit(f"{log} has no service.started")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children so far, from /proc."""
    total = 0.0
    for member in poll._tree(pid):
        try:
            with open(f"/proc/{member}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def fleet_run(
    out: Path, urls: list[str], size: int, args: argparse.Namespace, database: str
) -> dict[str, Any]:
    folder = out / f"fleet-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    config = config_for(folder, urls, database, args.interval)
    command = [sys.executable, "-m", "monitor", "--config", str(config), "--log-format", "json"]
    logs = [folder / f"instance-{n}.log" for n in range(size)]
    handles = [log.open("w") for log in logs]
    started = time.time()
    processes = [
        subprocess.Popen([*command, "run"], stdout=h, stderr=subprocess.STDOUT, cwd=REPO)
        for h in handles
    ]
    feeds = {f"feed-{i:04d}" for i in range(len(urls))}

    def seen() -> list[tuple[str, float]]:
        return [c for log in logs for c in checks(log)]

    while {feed for feed, _ in seen()} != feeds:
        if time.time() - started > 600:
            raise SystemExit("the first round did not finish in 10 minutes")
        time.sleep(0.2)
    round_end = max(min(t for f, t in seen() if f == feed) for feed in feeds)
    ready = min(_started(log) for log in logs)
    cpu_first = [cpu_seconds(p.pid) for p in processes]
    # The counting window: `rounds` intervals, from half an interval after the first round.
    window = (
        round_end + args.interval / 2,
        round_end + args.interval / 2 + args.rounds * args.interval,
    )
    end = window[1] + args.interval / 2
    killed_at = None
    if args.kill and size > 1:
        time.sleep(max((window[0] + window[1]) / 2 - time.time(), 0))
        processes[-1].send_signal(signal.SIGKILL)
        killed_at = time.time()
        end = max(end, killed_at + 2 * args.interval + 1)  # to see its feeds taken over
    time.sleep(max(end - time.time(), 0))
    cpu_end = [cpu_seconds(p.pid) for p in processes]
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)
    for handle in handles:
        handle.close()

    by_feed: dict[str, list[float]] = defaultdict(list)
    for feed, moment in sorted(seen(), key=lambda c: c[1]):
        by_feed[feed].append(moment)
    per_interval = [
        sum(1 for t in by_feed[feed] if window[0] <= t < window[1]) / args.rounds for feed in feeds
    ]
    gaps = [b - a for feed in feeds for a, b in itertools.pairwise(by_feed[feed]) if a >= round_end]
    figures: dict[str, Any] = {
        "instances": size,
        "first_round_seconds": round_end - ready,
        "first_round_from_launch_seconds": round_end - started,
        "checks_per_feed_per_interval": {
            "mean": statistics.mean(per_interval),
            "min": min(per_interval),
            "max": max(per_interval),
        },
        "double_checks": sum(1 for g in gaps if g < args.interval / 2),
        "longest_gap_seconds": max(gaps) if gaps else None,
        "cpu_first_round": cpu_first,
        "cpu_per_interval_after": [
            None
            if p.returncode == -signal.SIGKILL
            else (e - f) / ((end - round_end) / args.interval)
            for f, e, p in zip(cpu_first, cpu_end, processes, strict=True)
        ],
        "checks_by_instance": [len(checks(log)) for log in logs],
    }
    if killed_at is not None:
        after = [
            b - a
            for feed in feeds
            for a, b in itertools.pairwise(
                [killed_at, *(t for t in by_feed[feed] if t > killed_at)]
            )
        ]
        figures["longest_wait_after_kill_seconds"] = max(after)
    return figures


def report(
    args: argparse.Namespace, runs: list[dict[str, Any]], reader: dict[str, Any], command: str
) -> str:
    lines = [
        f"### Fleet: {args.feeds} feeds × {args.items} items, interval {args.interval} s, "
        f"on PostgreSQL — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`{command}`",
        "",
        f"reader's cold update of the same farm in the same run: {reader['cold']['seconds']:.2f} s "
        f"({reader['cold']['new']} new entries).",
        "",
        "First round: from the first instance's `service.started` (imports and migration "
        "done, as reader's figure excludes its imports) until every feed was checked once; "
        "from the processes' launch in brackets.",
        "",
        "| instances | first round (s) | × reader | checks per feed per interval "
        "(mean, min–max) | checks twice in ½ interval | longest gap (s) "
        "| CPU s per interval, each | checks by instance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for figures in runs:
        per = figures["checks_per_feed_per_interval"]
        cpu = ", ".join(
            "killed" if c is None else f"{c:.2f}" for c in figures["cpu_per_interval_after"]
        )
        lines.append(
            f"| {figures['instances']} | {figures['first_round_seconds']:.1f} "
            f"({figures['first_round_from_launch_seconds']:.1f}) "
            f"| {figures['first_round_seconds'] / reader['cold']['seconds']:.2f} "
            f"| {per['mean']:.3f} ({per['min']:.2f}–{per['max']:.2f}) | {figures['double_checks']} "
            f"| {figures['longest_gap_seconds']:.1f} | {cpu} | {figures['checks_by_instance']} |"
        )
    for figures in runs:
        if "longest_wait_after_kill_seconds" in figures:
            lines += [
                "",
                f"With one of {figures['instances']} SIGKILLed half way: the longest any feed then "
                f"waited for its next check was {figures['longest_wait_after_kill_seconds']:.1f} s "
                f"(two intervals: {2 * args.interval} s).",
            ]
    machine = poll.machine()
    lines += [
        "",
        f"Machine: {machine['cpu']}, {machine['memory']}, {machine['system']}, "
        f"Python {machine['python']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=400)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument(
        "--relevant", type=float, default=0.01, help="share of items about the story"
    )
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--interval", type=int, default=20, help="seconds")
    parser.add_argument("--rounds", type=int, default=4, help="intervals measured after the first")
    parser.add_argument("--kill", action="store_true", help="SIGKILL one instance half way")
    parser.add_argument("--database", default=PG_ROOT, help="a PostgreSQL URL to make schemas in")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args()
    out = args.out / f"fleet-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    out.mkdir(parents=True)
    server = poll.start_farm(args.feeds, args.items, args.hosts, args.port, args.relevant)
    try:
        feeds = farm.build(args.feeds, args.items, args.hosts, args.relevant)
        urls = farm.urls(feeds, args.port)
        urls_file = out / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n", encoding="utf-8")
        shelf = out / "reader"
        shelf.mkdir()
        done = poll.run(
            [
                sys.executable,
                str(BENCH / "reader_update.py"),
                str(shelf / "reader.db"),
                str(urls_file),
                "1",
            ],
            out / "reader.log",
        )
        reader = json.loads(done.stdout.strip().splitlines()[-1])
        runs = []
        for size in args.instances:
            with Schema(args.database) as database:
                runs.append(fleet_run(out, urls, size, args, database))
    finally:
        server.terminate()
        server.wait()
    command = "bench/.venv/bin/python bench/fleet.py " + " ".join(sys.argv[1:])
    text_report = report(args, runs, reader, command)
    (out / "report.md").write_text(text_report + "\n", encoding="utf-8")
    (out / "figures.json").write_text(
        json.dumps({"reader": reader, "runs": runs}, indent=2), encoding="utf-8"
    )
    print(text_report)


if __name__ == "__main__":
    main()
