"""Shared fixtures: loopback servers, test configs built on the shipped stories, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.full_disk import monitor_module
from tests.support.servers import AlertReceiver, FeedServer, MailSink

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
STORIES_MARKER = "# --- stories ---"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[AlertReceiver]:
    server = AlertReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def second() -> Iterator[AlertReceiver]:
    """Another receiver, for a second target."""
    server = AlertReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def desk_for(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Build in-process desks (config, store, clock, outbox) that are closed afterwards."""
    # Imported here: tests.support.desk builds its configs with this module's write_config.
    from tests.support.desk import Desk  # noqa: PLC0415

    made: list[Desk] = []

    def build(targets: list[dict[str, Any]], **options: Any) -> Desk:
        desk = Desk(tmp_path, targets, **options)
        made.append(desk)
        return desk

    yield build
    for desk in made:
        desk.close()


def shipped_stories() -> str:
    """The `stories:` block of the shipped config.yaml, as text."""
    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    return text[text.index(STORIES_MARKER) :]


def write_config(
    folder: Path,
    feeds: Mapping[str, str | Mapping[str, Any]],
    targets: Sequence[Mapping[str, Any]] = (),
    stories: str | None = None,
    **sections: Any,
) -> Path:
    """A config file for tests: these feeds and targets, the shipped stories (or `stories`).

    A feed is its URL, or the mapping of its keys but `name` (`{"telegram": ...}`)."""
    document: dict[str, Any] = {
        "database": "sqlite:///monitor.db",
        "fetch": {"interval": "1m", "jitter": "0s", "timeout": "10s"},
        "feeds": [
            {"name": name, "url": source} if isinstance(source, str) else {"name": name, **source}
            for name, source in feeds.items()
        ],
        "notify": list(targets),
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(document.get(name), dict):
            document[name] = {**document[name], **value}
        else:
            document[name] = value
    path = folder / "config.yaml"
    top = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    path.write_text(top + "\n" + (stories or shipped_stories()), encoding="utf-8")
    return path


def run_cli(
    config: Path | None,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
    room: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m monitor [--config config] args...` and capture its output.

    `room`: on a disk full but for this many bytes (see tests/support/full_disk.py).
    """
    command = [sys.executable, "-m", *monitor_module(room)]
    if config is not None:
        command += ["--config", str(config)]
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [*command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        cwd=REPO,
        check=False,
    )
