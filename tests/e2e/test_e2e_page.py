"""The page and the Atom feed of events, served by `monitor serve` over a store filled by
real cycles, looked at in a real headless Chromium and read by feedparser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import feedparser
import pytest

from tests.conftest import REPO, run_cli, write_config
from tests.support.feeds import FILLER, THREE_MILESTONES, UNVEILING_RU, rss
from tests.support.servers import AlertReceiver, FeedServer, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECRET = "s3cret-T0ken-4242"
"""The password in a target's URL: shown nowhere."""

pytestmark = pytest.mark.slow


@contextmanager
def serving(config: Path, *options: str) -> Iterator[str]:
    """`monitor serve` as a real process; yields its base URL once it listens."""
    port = free_port()
    command = [sys.executable, "-m", "monitor", "--config", str(config), "serve"]
    command += [*options, "--listen", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line + process.stderr.read()
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def _history(config: Path) -> list[dict[str, Any]]:
    result = run_cli(config, "history", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def desk(tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver) -> Path:
    """A store filled by five real cycles: a baseline, then one milestone per cycle, the
    last reported in English, then (next cycle, so which comes first is no race between
    the two feeds) in Russian too; one target receives, one is down."""
    wire = feed_server.serve("/wire.xml", rss(FILLER, lang="en"))
    ru = feed_server.serve("/ru.xml", rss(FILLER[:2], lang="ru"))
    closed = free_port()
    targets = [
        {"url": receiver.url.replace("json://", f"json://desk:{SECRET}@")},
        {"name": "night-desk", "url": f"json://127.0.0.1:{closed}/{SECRET}"},
    ]
    config = write_config(
        tmp_path,
        {"Wire": wire, "Russian outlet": ru},
        targets,
        delivery={"max_attempts": 2},
    )
    site, design, unveiled = THREE_MILESTONES
    for items, russian in [
        ([], []),
        ([site], []),
        ([design, site], []),
        ([unveiled, design, site], []),
        ([unveiled, design, site], [UNVEILING_RU]),
    ]:
        feed_server.serve("/wire.xml", rss([*items, *FILLER], lang="en"))
        feed_server.serve("/ru.xml", rss([*russian, *FILLER[:2]], lang="ru"))
        result = run_cli(config, "once")
        assert result.returncode == 0, result.stderr + result.stdout
    return config


def _dom(url: str, folder: Path, *extra: str) -> str:
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={folder / 'chromium'}",
            *extra,
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_page_in_a_browser(desk: Path, tmp_path: Path) -> None:
    """Chromium renders the page: the story's timeline in order, its chart, the feeds."""
    events = list(reversed(_history(desk)))
    assert [e["milestone"] for e in events] == ["site_selection", "design_reveal", "unveiling"]
    with serving(desk) as base:
        dom = _dom(base, tmp_path)
        shot = tmp_path / "page.png"
        _dom(base, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = re.findall(r'<li class="entry (\w+)" data-at="([^"]+)">', dom)
    assert [kind for kind, _ in shown] == ["milestone"] * 3
    assert [at for _, at in shown] == sorted(at for _, at in shown)
    positions = [dom.index(e["title"]) for e in events]
    assert positions == sorted(positions), "timeline out of order"
    assert "<svg" in dom
    assert 'class="bar"' in dom
    assert re.search(r'data-count="[1-9]', dom), "no day with coverage drawn"
    assert "Also reported by 1 outlet: <b>ru</b>" in dom
    assert "2 outlets, 2 languages in all" in dom
    assert "Russian outlet" in dom
    assert "Wire" in dom
    assert "night-desk: dead" in dom or "night-desk: failed" in dom
    assert SECRET not in dom


def test_atom_feed_of_events(desk: Path) -> None:
    """/events.atom parses cleanly; its entries are the events, newest first."""
    events = _history(desk)
    with serving(desk) as base:
        body = _get(f"{base}events.atom")
        page = _get(base).decode()
    assert SECRET not in body.decode()
    assert SECRET not in page
    feed = feedparser.parse(body)
    assert feed.bozo == 0, feed.bozo_exception
    assert feed.feed.title == "monitor: events"
    assert [e.link for e in feed.entries] == [e["url"] for e in events]
    assert [e.title for e in feed.entries] == [f"{e['label']}: {e['title']}" for e in events]
    assert [e.id for e in feed.entries] == [
        f"urn:monitor:event:{e['story']}:{e['milestone']}" for e in events
    ]
    assert all(e.updated_parsed for e in feed.entries)
