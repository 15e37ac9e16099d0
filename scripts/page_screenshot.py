"""Make docs/page.png: the page over a store filled from ../shared/eval/dev.jsonl by real cycles.

The labelled headlines are served on loopback feeds (one per language), their dates
spread over the last four weeks: the announcements and other news first (the first
fetch, recorded silently), then the site, design and unveiling reports one cycle each
(`monitor once`), alerted to a loopback receiver and to an email target that cannot be
reached. Then `monitor serve` serves the page and headless Chromium photographs it.

    PYTHONPATH=. python scripts/page_screenshot.py docs/page.png /tmp/page-shot
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import REPO, run_cli, write_config
from tests.support.feeds import Item, rss
from tests.support.servers import AlertReceiver, FeedServer, free_port

EVAL = REPO.parent / "shared" / "eval" / "dev.jsonl"
FEEDS = {
    "en": "Wire (English)",
    "ru": "Russian press",
    "ko": "Korean press",
    "uk": "Ukrainian press",
    "other": "World press",
}


def staged(now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The labelled items by the cycle that brings them, each given a date in its window."""
    hour = timedelta(hours=1)
    windows = {
        "first fetch": (now - 27 * 24 * hour, now - 4 * 24 * hour),
        "site_selection": (now - 62 * hour, now - 50 * hour),
        "design_reveal": (now - 40 * hour, now - 30 * hour),
        "unveiling": (now - 12 * hour, now - hour),
    }
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines()]
    rows.sort(key=lambda r: r.get("published") or "9999")
    stages: dict[str, list[dict[str, Any]]] = {stage: [] for stage in windows}
    for row in rows:
        stages[row["label"] if row["label"] in windows else "first fetch"].append(row)
    for stage, (start, end) in windows.items():
        items = stages[stage]
        for index, row in enumerate(items):
            row["when"] = start + (end - start) * (index / max(1, len(items) - 1))
    return stages


def chromium(url: str, folder: Path, *options: str) -> str:
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--user-data-dir={folder / 'chromium'}", *options, url]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def main(out: Path, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    server, receiver = FeedServer().start(), AlertReceiver().start()
    feeds: dict[str, Any] = {}
    for lang, name in FEEDS.items():
        url = server.serve(f"/{lang}.xml", rss([]))
        feeds[name] = url if lang == "other" else {"url": url, "lang": lang}
    feeds["Kursk governor (Telegram)"] = server.serve("/governor.xml", rss([], lang="ru"))
    night = f"mailto://monitor:secret@127.0.0.1:{free_port()}?from=monitor@example.org&to=night@example.org"
    targets = [{"name": "desk-slack", "url": receiver.url}, {"name": "night-email", "url": night}]
    config = write_config(work, feeds, targets, delivery={"max_attempts": 3})
    shown: list[dict[str, Any]] = []
    for items in staged(datetime.now(UTC).replace(second=0, microsecond=0)).values():
        shown += items
        for lang in FEEDS:
            entries = [
                Item(
                    r["title"] or r["summary"][:140],
                    r["url"],
                    r["summary"],
                    None,
                    r["when"],
                    r["source"],
                )
                for r in reversed(shown)
                if r["lang"] == lang
            ]
            server.serve(f"/{lang}.xml", rss(entries, lang=None if lang == "other" else lang))
        result = run_cli(config, "once")
        assert result.returncode == 0, result.stderr
    port = free_port()
    command = [sys.executable, "-m", "monitor", "--config", str(config), "serve"]
    page = subprocess.Popen(
        [*command, "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert page.stdout is not None
        print(page.stdout.readline(), end="")
        base = f"http://127.0.0.1:{port}/"
        chromium(base, work, f"--screenshot={out.resolve()}", "--window-size=1200,1600")
        (work / "dom.html").write_text(chromium(base, work, "--dump-dom"), encoding="utf-8")
    finally:
        page.terminate()
        page.communicate(timeout=10)
        server.stop()
        receiver.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
