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
import sqlite3
import statistics
import subprocess
import sys
import threading
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
    """The largest RSS of the process or any one of its children: in a run that samples
    memory, the largest peak (VmHWM) of one process of the tree; otherwise what wait4
    (and `time -v`) reports, which also counts the RSS of this benchmark's own process
    that the child was forked from (Linux keeps the high-water mark across exec)."""
    tree_rss_mb: float
    """The largest sum of the RSS of the process and its children, sampled every 50 ms
    (reading smaps_rollup more often slows the process measured)."""
    tree_pss_mb: float
    """The same for PSS, where pages the processes share are counted once."""
    tree_peaks_mb: float
    """The sum of each process's own peak RSS (VmHWM, which the kernel keeps, so no
    peak between two samples is missed): a bound the tree's peak cannot exceed."""
    stdout: str
    returncode: int


class TreeMemory(threading.Thread):
    """Samples the summed RSS and PSS of a process and its descendants every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.rss = self.pss = 0
        self.peaks: dict[int, int] = {}
        """Each process's peak RSS (VmHWM) as last read, in KB."""
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            rss = pss = 0
            for pid in _tree(self.pid):
                peak = _high_water(pid)
                if peak is not None:
                    self.peaks[pid] = max(self.peaks.get(pid, 0), peak)
                try:
                    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
                        for line in rollup:
                            if line.startswith("Rss:"):
                                rss += int(line.split()[1])
                            elif line.startswith("Pss:"):
                                pss += int(line.split()[1])
                except OSError:
                    continue  # it just ended
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)


def _high_water(pid: int) -> int | None:
    """The peak RSS of a process so far (VmHWM, KB), or None if it has ended."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _tree(pid: int) -> list[int]:
    found = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            for child in children.read().split():
                found += _tree(int(child))
    except OSError:
        pass
    return found


def run(
    command: list[str], log: Path, env: dict[str, str] | None = None, *, sample: bool = False
) -> Process:
    """Run `command`, wait for it with wait4: its wall and CPU time, its largest RSS, and
    with `sample` the summed memory of its process tree. Sampling reads smaps_rollup
    20 times a second, which takes CPU from the two cores the process runs on: timed
    runs do not sample, and memory is measured in runs of their own."""
    with log.open("w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env or os.environ.copy()
        )
        memory = TreeMemory(child.pid)
        if sample:
            memory.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if sample:
            memory.done.set()
            memory.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    peaks = memory.peaks.values()
    return Process(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=(max(peaks) if peaks else usage.ru_maxrss) / 1024,
        tree_rss_mb=memory.rss / 1024,
        tree_pss_mb=memory.pss / 1024,
        tree_peaks_mb=sum(peaks) / 1024,
        stdout=log.read_text(),
        returncode=child.returncode,
    )


def start_farm(
    feeds: int, items: int, hosts: int, port: int, relevant: float
) -> subprocess.Popen[str]:
    farm = subprocess.Popen(
        [
            *(sys.executable, str(BENCH / "farm.py"), f"--feeds={feeds}", f"--items={items}"),
            *(f"--hosts={hosts}", f"--port={port}", f"--relevant={relevant}"),
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
            "cycle": {k: cycle[k] for k in ("ok", "unchanged", "failed", "new")},
        }
        if phase == "cold":
            figures["stored"] = stored(work / "monitor.db")
    # The same two cycles again, on a fresh database, for memory only.
    fresh(work)
    for phase in ("cold", "warm"):
        done = run(once, out / f"monitor-{phase}-memory.log", sample=True)
        if done.returncode != 0:
            raise SystemExit(f"monitor once failed:\n{done.stdout[-3000:]}")
        figures[f"monitor_{phase}"].update(
            peak_rss_mb=done.peak_rss_mb,
            tree_rss_mb=done.tree_rss_mb,
            tree_pss_mb=done.tree_pss_mb,
            tree_peaks_mb=done.tree_peaks_mb,
        )

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


def stored(database: Path) -> dict[str, int]:
    """What the cold cycle left in the database: items, those about a story, their
    clusters, milestones and events, and the copies found by link and content."""
    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT count(*), count(story), count(DISTINCT cluster_id), count(milestone),"
            " count(event_id), count(duplicate_of), (SELECT count(*) FROM event)"
            " FROM item"
        ).fetchone()
    names = ("items", "relevant", "clusters", "milestones", "in_events", "copies", "events")
    return dict(zip(names, (int(v) for v in row), strict=True))


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
        for name in ("reader", "feedparser", "lxml", "httpx", "aiohttp", "sqlalchemy")
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
    # Judged on the whole process tree (the service and its parse worker), RSS summed:
    # the strictest reading of "peak RSS".
    tree_rss = max(f[p]["tree_rss_mb"] for f in runs for p in ("monitor_cold", "monitor_warm"))
    tree_pss = max(f[p]["tree_pss_mb"] for f in runs for p in ("monitor_cold", "monitor_warm"))
    largest = max(f[p]["peak_rss_mb"] for f in runs for p in ("monitor_cold", "monitor_warm"))
    peaks = max(f[p]["tree_peaks_mb"] for f in runs for p in ("monitor_cold", "monitor_warm"))
    reader_cold = median(runs, "reader", "cold", "seconds")
    ratio = cold / reader_cold
    checks = {
        "cold_ratio": ratio <= TARGETS["cold_ratio"],
        "warm_seconds": warm <= TARGETS["warm_seconds"],
        "peak_rss_mb": tree_rss <= TARGETS["peak_rss_mb"],
    }

    def mark(key: str) -> str:
        return "met" if checks[key] else "MISSED"

    def row(label: str, phase: str, target: str = "") -> str:
        return (
            f"| {label} | {median(runs, phase, 'seconds'):.2f} "
            f"| {median(runs, phase, 'cpu_seconds'):.2f} "
            f"| {median(runs, phase, 'peak_rss_mb'):.0f} "
            f"| {median(runs, phase, 'tree_rss_mb'):.0f} "
            f"/ {median(runs, phase, 'tree_pss_mb'):.0f} "
            f"| {target} |"
        )

    info = machine()
    lines = [
        f"### {args.feeds} feeds × {args.items} items, {args.hosts} loopback hosts"
        f" — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {info['cpu']}, {info['memory']}, {info['system']}, Python {info['python']}",
        f"- Versions: {info['versions']}",
        f"- Command: `{command}`",
        f"- Load average before the runs: {args.load}",
        f"- Medians of {len(runs)} runs. Wall and CPU (user + system, the process and its"
        " children) seconds of the whole process, in runs that sample nothing; RSS, from"
        " a second cold and warm run that samples memory every 50 ms: the largest single"
        " process, then the sum over the process tree (service + parse worker) as RSS / PSS.",
        "",
        "| measure | wall s | CPU s | RSS MB | tree RSS / PSS MB | target |",
        "|---|---:|---:|---:|---:|---|",
        row(
            "`monitor once`, cold (all new)",
            "monitor_cold",
            f"≤ {TARGETS['cold_ratio']:.2f} × reader: **{ratio:.2f} ×** — {mark('cold_ratio')}",
        ),
        row(
            "`monitor once`, warm (all 304)",
            "monitor_warm",
            f"≤ {TARGETS['warm_seconds']} s — {mark('warm_seconds')}",
        ),
        f"| reader `update_feeds`, cold (workers={args.reader_workers}) | {reader_cold:.2f}"
        f" | | {median(runs, 'reader', 'peak_rss_mb'):.0f} | | (update call only) |",
        f"| reader `update_feeds`, warm | {median(runs, 'reader', 'warm', 'seconds'):.2f}"
        " | | | | |",
        f"| reader process (start, add_feed ×{args.feeds}, both updates) "
        f"| {median(runs, 'reader', 'process_seconds'):.2f}"
        f" | {median(runs, 'reader', 'cpu_seconds'):.2f} | | | |",
        f"| floor: fetch + feedparser | {median(runs, 'floor', 'seconds'):.2f} | | | | |",
        f"| … fetch alone (aiohttp, 16 at once) | {median(runs, 'floor', 'fetch_seconds'):.2f}"
        " | | | | |",
        f"| … feedparser alone | {median(runs, 'floor', 'parse_seconds'):.2f} | | | | |",
        "",
        f"Cycle time inside `monitor once` (from its `cycle.done` log): cold "
        f"{median(runs, 'monitor_cold', 'cycle_seconds'):.2f} s, warm "
        f"{median(runs, 'monitor_warm', 'cycle_seconds'):.2f} s; the rest is start-up"
        " (imports, config, database) and shut-down.",
        "",
        f"Peak memory: {tree_rss:.0f} MB RSS summed over the process tree ({tree_pss:.0f} MB"
        f" PSS), {largest:.0f} MB in the largest process; target ≤"
        f" {TARGETS['peak_rss_mb']:.0f} MB — {mark('peak_rss_mb')}. The processes' own peaks"
        f" (VmHWM, the kernel's high-water mark, read every 50 ms) add up to {peaks:.0f} MB: a"
        " bound on the tree's peak that no spike between two samples escapes.",
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
        f"({first['monitor_cold']['cycle']['failed']} failed), then found "
        f"{first['monitor_warm']['cycle']['unchanged']} feeds unchanged; reader stored "
        f"{first['reader']['cold']['new']} new entries ({first['reader']['cold']['errors']} "
        f"errors); feedparser read {first['floor']['entries']} entries.",
        "",
        f"Farm: `--relevant {args.relevant}`. What the cold cycle stored (run 1): "
        + ", ".join(f"{v} {k}" for k, v in first["stored"].items())
        + " (items about the story, their distinct clusters, milestone reports, items"
        " attached to an event, copies by link and content, events).",
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
    parser.add_argument(
        "--relevant",
        type=float,
        default=0.01,
        help="share of the farm's items about the story (1.0: the day of an unveiling)",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args()
    args.load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    command = shlex.join(["bench/.venv/bin/python", "bench/poll.py", *sys.argv[1:]])

    args.out.mkdir(parents=True, exist_ok=True)
    server = start_farm(args.feeds, args.items, args.hosts, args.port, args.relevant)
    try:
        urls = farm.urls(farm.build(args.feeds, args.items, args.hosts, args.relevant), args.port)
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
