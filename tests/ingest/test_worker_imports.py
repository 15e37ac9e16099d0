"""The parse child, run for real, never loads the HTTP, SQL, notification or template libraries.

import-linter checks the import graph (pyproject.toml); this checks what the running
child actually loads, lazy imports included, so that an import hidden from the graph
(importlib, a plugin entry point) cannot slip the libraries in.
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config.settings import load_config
from monitor.ingest.sources import PageSource, Source, TelegramSource
from tests.conftest import REPO, write_config
from tests.support.feeds import FILLER, UNVEILING_EN, rss

DATA = REPO / "tests" / "data"
FORBIDDEN = frozenset({"httpx", "sqlalchemy", "sqlmodel", "apprise", "jinja2"})
# One body for each reader: the lxml fast path, JSON Feed, feedparser (a DOCTYPE), a
# Telegram channel preview, a listing page (with the source each needs).
BODIES = [
    (rss([UNVEILING_EN, *FILLER]).encode(), None),
    ((DATA / "jsonfeed11.json").read_bytes(), None),
    ((DATA / "rss091.xml").read_bytes(), None),
    ((DATA / "telegram_channel.html").read_bytes(), TelegramSource("kursk_gov_test")),
    ((DATA / "page_listing.html").read_bytes(), PageSource("h3 a")),
]


def _frame(value: object) -> bytes:
    """A frame as the service writes it to the child: 4-byte length, then a pickle."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack(">I", len(data)) + data


def _answers(stdout: bytes) -> list[tuple[object, ...]]:
    answers = []
    while stdout:
        (size,) = struct.unpack(">I", stdout[:4])
        answers.append(pickle.loads(stdout[4 : 4 + size]))
        stdout = stdout[4 + size :]
    return answers


def _loaded(importtime: str) -> set[str]:
    """Every module `-X importtime` reports (its lines end with `| dotted.name`)."""
    return {
        line.rpartition("|")[2].strip()
        for line in importtime.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def _child_modules(folder: Path, bodies: list[tuple[bytes, Source | None]]) -> set[str]:
    """The modules a real `python -m monitor.ingest.worker` loads reading `bodies`."""
    config = load_config(write_config(folder, {"f": "https://f.example/"}))
    frames = [_frame(list(config.stories))]
    frames += [
        _frame((n, body, "https://f.example/", None, "en", source))
        for n, (body, source) in enumerate(bodies)
    ]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor.ingest.worker"],
        input=b"".join(frames),
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    answers = _answers(done.stdout)
    assert [(seq, status) for seq, status, *_ in answers] == [(n, "ok") for n in range(len(bodies))]
    return _loaded(done.stderr.decode())


@pytest.fixture(scope="module")
def child_modules(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """What the child loads reading one feed per reader."""
    return _child_modules(tmp_path_factory.mktemp("child"), BODIES)


def test_a_child_of_plain_feeds_never_loads_feedparser(tmp_path: Path) -> None:
    """feedparser is loaded when the fast path first declines a document: a child whose
    feeds all take the lxml fast path runs without it (about 2 MB less)."""
    loaded = _child_modules(tmp_path, [BODIES[0], BODIES[0]])
    assert "lxml.etree" in loaded
    assert sorted(loaded & {"feedparser", "monitor.ingest.read_feedparser"}) == []


def test_child_reads_with_the_parse_and_match_stages(child_modules: set[str]) -> None:
    """The import record is real: the readers and the matcher are in it."""
    assert {"monitor.ingest.parse", "lxml.etree", "feedparser", "monitor.match.classify"} <= (
        child_modules
    )
    assert {"monitor.ingest.read_telegram", "monitor.ingest.read_page", "cssselect"} <= (
        child_modules
    )


def test_child_loads_no_http_sql_notification_or_template_library(
    child_modules: set[str],
) -> None:
    """None of httpx, SQLAlchemy, SQLModel, apprise or Jinja is imported in the parse child."""
    loaded = {name.partition(".")[0] for name in child_modules}
    assert sorted(loaded & FORBIDDEN) == []
