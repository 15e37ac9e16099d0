"""Benchmark one poll cycle: `monitor once` cold and warm, against reader and the floor.

    bench/.venv/bin/python bench/poll.py --feeds 400 --items 40 --runs 3

Serves the farm (bench/farm.py) on loopback in its own process, then for each run:

1. `monitor once` on a fresh database: every entry is new (the silent baseline, full
   ingest work: parse, match, dedup, store). Wall time of the whole process, imports
   and all, and its peak RSS (from wait4).
2. `monitor once` again: every feed answers 304.
3. reader (lemon24/reader, feedparser + SQLite) on a fresh database: `update_feeds`
   cold, then warm; the time of the update calls alone, not of imports or add_feed.
4. The floor: fetch every feed and parse it with feedparser, nothing else.

Prints a Markdown report (medians over the runs, every run's figures, the machine and
the command) and writes it with the raw figures to bench/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import farm  # bench/farm.py, beside this script: the same builder the server runs
import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
STORIES_MARKER = "# --- stories ---"

TARGETS = {"cold_ratio": 0.30, "warm_seconds": 1.5, "peak_rss_mb": 150.0}


@dataclass
class Process:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    stdout: str
    returncode: int


def run(command: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    """Run `command`, wait for it with wait4 and return its wall time and peak RSS."""
    with log.open("w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env or os.environ.copy()
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return Process(seconds, cpu, usage.ru_maxrss / 1024, log.read_text(), child.returncode)


def start_farm(feeds: int, items: int, hosts: int, port: int) -> subprocess.Popen[str]:
    farm = subprocess.Popen(
        [
            *(sys.executable, str(BENCH / "farm.py"), f"--feeds={feeds}", f"--items={items}"),
            *(f"--hosts={hosts}", f"--port={port}"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert farm.stdout is not None
    line = farm.stdout.readline()
    if not line.startswith("ready"):
        farm.kill()
        raise SystemExit(f"the farm did not start: {line!r}")
    return farm


def monitor_config(folder: Path, urls: list[str]) -> Path:
    shipped = (REPO / "config.yaml").read_text(encoding="utf-8")
    stories = shipped[shipped.index(STORIES_MARKER) :]
    document = {
        "database": f"sqlite:///{folder / 'monitor.db'}",
        "feeds": [{"name": f"feed-{i:04d}", "url": url} for i, url in enumerate(urls)],
        "notify": [],
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False) + "\n" + stories, encoding="utf-8")
    return path


def cycle_done(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("{") and '"cycle.done"' in line:
            event: dict[str, Any] = json.loads(line)
            return event
    raise SystemExit(f"monitor once did not finish a cycle:\n{output[-3000:]}")


def fresh(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("*.db*"):
        leftover.unlink()


def one_run(out: Path, urls_file: Path, urls: list[str], reader_workers: int) -> dict[str, Any]:
    python = sys.executable
    figures: dict[str, Any] = {}

    work = out / "monitor"
    fresh(work)
    config = monitor_config(work, urls)
    once = [python, "-m", "monitor", "--config", str(config), "--log-format", "json", "once"]
    for phase in ("cold", "warm"):
        done = run(once, out / f"monitor-{phase}.log")
        if done.returncode != 0:
            raise SystemExit(f"monitor once failed:\n{done.stdout[-3000:]}")
        cycle = cycle_done(done.stdout)
        figures[f"monitor_{phase}"] = {
            "seconds": done.seconds,
            "cpu_seconds": done.cpu_seconds,
            "cycle_seconds": cycle["seconds"],
            "peak_rss_mb": done.peak_rss_mb,
            "cycle": {k: cycle[k] for k in ("ok", "unchanged", "failed", "new")},
        }

    shelf = out / "reader"
    fresh(shelf)
    script = str(BENCH / "reader_update.py")
    done = run(
        [python, script, str(shelf / "reader.db"), str(urls_file), str(reader_workers)],
        out / "reader.log",
    )
    if done.returncode != 0:
        raise SystemExit(f"reader failed:\n{done.stdout[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    figures["reader"] = {
        **result,
        "process_seconds": done.seconds,
        "cpu_seconds": done.cpu_seconds,
        "peak_rss_mb": done.peak_rss_mb,
    }

    done = run([python, str(BENCH / "floor.py"), str(urls_file), "16"], out / "floor.log")
    if done.returncode != 0:
        raise SystemExit(f"floor failed:\n{done.stdout[-3000:]}")
    figures["floor"] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    versions = {
        name: metadata.version(name)
        for name in ("reader", "feedparser", "lxml", "httpx", "sqlalchemy")
    }
    return {
        "cpu": f"{cpu} ({os.cpu_count()} cores)",
        "memory": memory,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def median(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for figures in runs:
        value: Any = figures
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def report(args: argparse.Namespace, runs: list[dict[str, Any]], command: str) -> str:
    cold = median(runs, "monitor_cold", "seconds")
    warm = median(runs, "monitor_warm", "seconds")
    rss = max(max(f["monitor_cold"]["peak_rss_mb"], f["monitor_warm"]["peak_rss_mb"]) for f in runs)
    reader_cold = median(runs, "reader", "cold", "seconds")
    ratio = cold / reader_cold
    checks = {
        "cold_ratio": ratio <= TARGETS["cold_ratio"],
        "warm_seconds": warm <= TARGETS["warm_seconds"],
        "peak_rss_mb": rss <= TARGETS["peak_rss_mb"],
    }

    def mark(key: str) -> str:
        return "met" if checks[key] else "MISSED"

    info = machine()
    lines = [
        f"### {args.feeds} feeds × {args.items} items, {args.hosts} loopback hosts"
        f" — {datetime.now(UTC):%Y-%m-%d}",
        "",
        f"- Machine: {info['cpu']}, {info['memory']}, {info['system']}, Python {info['python']}",
        f"- Versions: {info['versions']}",
        f"- Command: `{command}`",
        f"- Medians of {len(runs)} runs; peak RSS is the largest seen.",
        "",
        "| measure | seconds | peak RSS (MB) | target |",
        "|---|---:|---:|---|",
        f"| monitor once, cold (whole process) | {cold:.2f} "
        f"| {median(runs, 'monitor_cold', 'peak_rss_mb'):.0f} "
        f"| ≤ {TARGETS['cold_ratio']:.2f} × reader: {ratio:.2f} × — {mark('cold_ratio')} |",
        f"| monitor once, cold (cycle only) | {median(runs, 'monitor_cold', 'cycle_seconds'):.2f}"
        " | | |",
        f"| monitor once, warm, all 304 (whole process) | {warm:.2f} "
        f"| {median(runs, 'monitor_warm', 'peak_rss_mb'):.0f} "
        f"| ≤ {TARGETS['warm_seconds']} s — {mark('warm_seconds')} |",
        f"| monitor once, warm (cycle only) | {median(runs, 'monitor_warm', 'cycle_seconds'):.2f}"
        " | | |",
        f"| reader update_feeds, cold (workers={args.reader_workers}) | {reader_cold:.2f} "
        f"| {median(runs, 'reader', 'peak_rss_mb'):.0f} | |",
        f"| reader update_feeds, warm | {median(runs, 'reader', 'warm', 'seconds'):.2f} | | |",
        f"| floor: fetch + feedparser | {median(runs, 'floor', 'seconds'):.2f} | | |",
        f"| … of which fetch | {median(runs, 'floor', 'fetch_seconds'):.2f} | | |",
        f"| … of which feedparser | {median(runs, 'floor', 'parse_seconds'):.2f} | | |",
        "",
        f"Peak RSS of `monitor once`: {rss:.0f} MB (target ≤ {TARGETS['peak_rss_mb']:.0f} MB"
        f" — {mark('peak_rss_mb')}).",
        "",
        "Every run (seconds): monitor cold / warm, reader cold / warm, floor:",
        "",
    ]
    for i, f in enumerate(runs, 1):
        lines.append(
            f"{i}. {f['monitor_cold']['seconds']:.2f} / {f['monitor_warm']['seconds']:.2f}, "
            f"{f['reader']['cold']['seconds']:.2f} / {f['reader']['warm']['seconds']:.2f}, "
            f"{f['floor']['seconds']:.2f}"
        )
    first = runs[0]
    lines += [
        "",
        f"Work done (run 1): monitor stored {first['monitor_cold']['cycle']['new']} new items "
        f"from {first['monitor_cold']['cycle']['ok']} feeds "
        f"({first['monitor_cold']['cycle']['failed']} failed), then "
        f"{first['monitor_warm']['cycle']['unchanged']} feeds unchanged; reader stored "
        f"{first['reader']['cold']['new']} new entries ({first['reader']['cold']['errors']} "
        f"errors); feedparser read {first['floor']['entries']} entries.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=400)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--hosts", type=int, default=20, help="loopback addresses to spread over")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reader-workers", type=int, default=1, help="reader's default is 1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args()
    command = shlex.join(["bench/.venv/bin/python", "bench/poll.py", *sys.argv[1:]])

    args.out.mkdir(parents=True, exist_ok=True)
    server = start_farm(args.feeds, args.items, args.hosts, args.port)
    try:
        urls = farm.urls(farm.build(args.feeds, args.items, args.hosts), args.port)
        urls_file = args.out / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n")
        runs = []
        for number in range(1, args.runs + 1):
            figures = one_run(args.out, urls_file, urls, args.reader_workers)
            runs.append(figures)
            print(f"run {number}: {json.dumps(figures)}", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    text = report(args, runs, command)
    (args.out / "report.md").write_text(text, encoding="utf-8")
    (args.out / "runs.json").write_text(json.dumps(runs, indent=2), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
