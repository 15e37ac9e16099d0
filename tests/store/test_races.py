"""Several processes on one database at once: opening a fresh one (the migration) and
syncing the same feeds (the start or reload of a fleet sharing one config)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import pytest

from monitor.store.store import Store
from tests.support import postgres
from tests.support.daemon import REPO
from tests.support.store_worker import feed_list

PROCESSES = 3
ROUNDS = 10


class Workers:
    """`tests.support.store_worker` processes, told to start each step together."""

    def __init__(self, count: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.support.store_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(count)
        ]

    def together(self, command: str) -> list[str]:
        """Prepare `command` in every worker, then let them all go; their answers."""
        assert self._ask_all(f"prepare {command}") == ["ready"] * len(self.processes)
        return self._ask_all("go")

    def _ask_all(self, line: str) -> list[str]:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(line + "\n")
            process.stdin.flush()
        answers = []
        for process in self.processes:
            assert process.stdout is not None
            answers.append(process.stdout.readline().strip() or f"exited {process.wait()}")
        return answers

    def close(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.close()
        for process in self.processes:
            process.wait(timeout=30)
            assert process.stdout is not None
            process.stdout.close()


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers(PROCESSES)
    try:
        yield started
    finally:
        started.close()


Database = str
"""Which database a test runs on: "sqlite" or "postgresql"."""


def fresh_database(kind: Database, where: Path) -> AbstractContextManager[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if kind == "sqlite":
        return nullcontext(f"sqlite:///{where}")
    return postgres.schema_url()


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("kind", DATABASES)
def test_processes_opening_a_fresh_database_at_once_all_succeed(
    kind: Database, workers: Workers, tmp_path: Path
) -> None:
    """The first opener migrates; the others wait for it and find the work done
    (on PostgreSQL, concurrent CREATE TABLEs used to fail all but one)."""
    for round_ in range(ROUNDS):
        with fresh_database(kind, tmp_path / f"{round_}.db") as url:
            assert workers.together(f"open {url}") == ["ok"] * PROCESSES, f"round {round_}"
            with _opened(url) as store:
                assert store.feeds() == []


@pytest.mark.parametrize("kind", DATABASES)
def test_processes_syncing_the_same_new_feeds_at_once_all_succeed(
    kind: Database, workers: Workers, tmp_path: Path
) -> None:
    """Instances adding the same feeds (a fleet started or reloaded together) all
    succeed and leave one row per feed."""
    for round_ in range(ROUNDS // 2):
        with fresh_database(kind, tmp_path / f"{round_}.db") as url:
            Store.open(url).close()  # migrated: only the sync races
            count = 50 * (round_ + 1)
            assert workers.together(f"sync {url} {count}") == ["ok"] * PROCESSES, f"round {round_}"
            with _opened(url) as store:
                assert [(f.name, f.url) for f in store.feeds()] == feed_list(count)


@contextmanager
def _opened(url: str) -> Iterator[Store]:
    store = Store.open(url)
    try:
        yield store
    finally:
        store.close()
