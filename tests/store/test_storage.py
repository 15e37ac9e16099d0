"""Storage failures say so: exit 2 and one line from every command, a daemon that goes on.

How each failure is made, as any user (root ignores file permissions): a read-only
database is SQLite's `mode=ro` URI, or PostgreSQL's `default_transaction_read_only`; a
full disk is a file-size limit the process sets on itself (tests/support/full_disk.py:
writes past it fail as on a full disk, and the test can lift it while monitor runs);
corruption is garbage written over the root pages of the tables; a missing driver is
`postgresql+asyncpg://`, whose driver is no dependency.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import StoreError
from monitor.store.store import Store
from monitor.store.views import Notice
from tests.conftest import REPO, run_cli, write_config
from tests.support import postgres
from tests.support.daemon import Daemon
from tests.support.feeds import FILLER, UNVEILING_EN, Item, rss
from tests.support.servers import AlertReceiver, FeedServer, free_port

DISK = 256 * 1024
"""The room a full disk leaves (tests/support/full_disk.py): more than a delivery's claim
and result need, far less than the new items of `_big_feed`."""


def _big_feed() -> str:
    """A feed whose new items need far more room than DISK leaves."""
    lead = "A long lead paragraph about the central bank, the weather and football. " * 6
    items = [
        Item(f"Item {n}: {lead[:150]}", f"https://news.example/{n}", lead) for n in range(2000)
    ]
    return rss(items)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exit 2 and one line on stderr, and no traceback anywhere."""
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("monitor: database error: ")
    return line


def _with_database(config: Path, url: str) -> None:
    text = config.read_text(encoding="utf-8")
    start = text.index("database: ")
    end = text.index("\n", start)
    config.write_text(f"{text[:start]}database: '{url}'{text[end:]}", encoding="utf-8")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def read_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(writable URL, read-only URL) of one database."""
    if request.param == "sqlite":
        path = tmp_path / "monitor.db"
        yield f"sqlite:///{path}", f"sqlite:///file:{path}?mode=ro&uri=true"
        return
    with postgres.schema_url() as url:
        yield url, f"{url}%20-cdefault_transaction_read_only%3Don"


def test_read_only_database_fails_the_cycle(
    tmp_path: Path, feed_server: FeedServer, read_only: tuple[str, str]
) -> None:
    """A database that cannot be written: `once` exits 2 in one line; `status` still reads."""
    writable, unwritable = read_only
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"feed": url}, database=writable)
    assert run_cli(config, "once").returncode == 0
    feed_server.serve("/feed.xml", rss([UNVEILING_EN, *FILLER]))
    _with_database(config, unwritable)

    line = _one_line_error(run_cli(config, "once"))
    assert "1 of 1 feeds not recorded: " in line
    assert "read" in line  # "attempt to write a readonly database", "read-only transaction"
    status = run_cli(config, "status", "--json")
    assert status.returncode == 0, status.stderr
    [row] = [json.loads(line) for line in status.stdout.splitlines()]
    assert row["items_seen"] == len(FILLER)


def test_full_disk_fails_the_cycle_after_delivering_what_was_queued(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """No room for a feed's items: what was queued before is still sent, then exit 2."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"feed": url}, [{"name": "desk", "url": receiver.url}])
    assert run_cli(config, "once").returncode == 0
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    notice = Notice("queued", ["desk"], "Queued before the disk filled", "still to be sent")
    assert store.enqueue([notice], now=datetime.now(UTC)) == 1
    store.close()
    feed_server.serve("/feed.xml", _big_feed())

    result = run_cli(config, "once", room=DISK)
    line = _one_line_error(result)
    assert "1 of 1 feeds not recorded: " in line
    [sent] = receiver.messages()
    assert sent["title"].endswith("Queued before the disk filled")

    again = run_cli(config, "once")  # room again: the feed is recorded, nothing is resent
    assert again.returncode == 0, again.stderr
    status = run_cli(config, "status", "--json")
    assert json.loads(status.stdout.splitlines()[0])["items_seen"] == len(FILLER) + 2000
    assert len(receiver.messages()) == 1


@pytest.fixture
def corrupt(tmp_path: Path, receiver: AlertReceiver) -> Path:
    """A config whose database has every table but `migration` corrupted (root pages)."""
    database = tmp_path / "monitor.db"
    config = write_config(
        tmp_path,
        {"feed": "http://127.0.0.1:1/feed.xml"},
        [{"name": "desk", "url": receiver.url, "receive": ["alerts", "digest"]}],
    )
    store = Store.open(f"sqlite:///{database}")
    store.sync_feeds([("feed", "http://127.0.0.1:1/feed.xml")])
    store.enqueue([Notice("queued", ["desk"], "Queued", "body")], now=datetime.now(UTC))
    store.close()
    with sqlite3.connect(database) as db:
        [[page_size]] = db.execute("PRAGMA page_size").fetchall()
        roots = [
            page
            for (page,) in db.execute(
                "SELECT rootpage FROM sqlite_master WHERE tbl_name != 'migration' AND rootpage > 1"
            )
        ]
    db.close()
    with database.open("r+b") as file:
        for page in roots:
            file.seek((page - 1) * page_size)
            file.write(b"\xff" * page_size)
    return config


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["history"],
        ["once"],
        ["deliver"],
        ["digest"],
        ["replay"],
        ["run"],
    ],
    ids=" ".join,
)
def test_corrupt_database_is_one_line_from_every_command(corrupt: Path, command: list[str]) -> None:
    """Corruption found mid-run: exit 2 and one line naming it, from whichever command."""
    line = _one_line_error(run_cli(corrupt, *command, timeout=60))
    assert "malformed" in line


@pytest.mark.parametrize("command", ["check-config", "status", "once", "run"])
def test_missing_driver_is_one_line(tmp_path: Path, command: str) -> None:
    """A database URL whose driver is not installed: exit 2, one line naming the driver."""
    config = write_config(
        tmp_path,
        {"feed": "http://127.0.0.1:1/feed.xml"},
        database="postgresql+asyncpg://monitor@127.0.0.1:1/monitor",
    )
    line = _one_line_error(run_cli(config, command, timeout=60))
    assert "postgresql+asyncpg is not installed" in line
    assert "asyncpg" in line


@pytest.mark.parametrize("command", ["check-config", "status", "once", "run"])
def test_postgres_without_its_extra_is_one_line(tmp_path: Path, command: str) -> None:
    """PostgreSQL named but psycopg not installed: exit 2, one line naming the extra."""
    config = write_config(
        tmp_path,
        {"feed": "http://127.0.0.1:1/feed.xml"},
        database="postgresql://monitor@127.0.0.1:1/monitor",
    )
    blocked = [sys.executable, "-m", "tests.support.without", "psycopg", "--config", str(config)]
    result = subprocess.run(
        [*blocked, command],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        check=False,
    )
    line = _one_line_error(result)
    assert "psycopg" in line
    assert "pip install 'monitor[postgres]'" in line


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _waiter(port: int, code: int) -> Callable[[], bool]:
    return lambda: _health(port)[0] == code


@pytest.mark.slow
def test_daemon_health_follows_storage(tmp_path: Path, feed_server: FeedServer) -> None:
    """The daemon goes on through a full disk; /healthz is 503 after 3 unrecorded checks,
    200 again once a check is recorded."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    port = free_port()
    config = write_config(
        tmp_path,
        {"feed": url},
        fetch={"interval": "1s", "jitter": "0s"},
        http={"listen": f"127.0.0.1:{port}"},
    )
    assert run_cli(config, "once").returncode == 0
    feed_server.serve("/feed.xml", _big_feed())

    with Daemon(config, room=DISK) as daemon:
        daemon.wait_for_log("service.started")
        daemon.wait_until(_waiter(port, 503), what="/healthz 503")
        body = _health(port)[1]
        assert body["status"] == "storage failing"
        assert body["storage_failures"]["feed"] >= 3
        assert len(daemon.events("feed.unrecorded")) >= 3
        assert daemon.process is not None
        ours = resource.getrlimit(resource.RLIMIT_FSIZE)  # room again
        resource.prlimit(daemon.process.pid, resource.RLIMIT_FSIZE, ours)
        daemon.wait_until(_waiter(port, 200), what="/healthz 200 once there is room")
        assert _health(port)[1]["storage_failures"] == {"feed": 0, "delivery": 0}
        assert daemon.terminate() == 0
    assert "Traceback" not in daemon.output()
    status = run_cli(config, "status", "--json")
    assert json.loads(status.stdout.splitlines()[0])["items_seen"] == len(FILLER) + 2000


@pytest.mark.parametrize(
    ("command", "dropped"),
    [
        (["history"], "item.title"),
        (["history"], "event.outlet"),
        (["status"], "feed.etag"),
        (["status", "--json", "--deliveries"], "feed.etag"),
        (["status", "--json", "--deliveries"], "delivery.body"),
        (["replay"], "item.title"),
        (["deliver"], "delivery.body"),
        (["once"], "feed.etag"),
        (["once"], "item.silent"),
        (["digest"], "delivery.body"),
        (["digest", "--dry-run"], "event.outlet"),
        (["run"], "feed.etag"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_a_wrong_schema_is_one_line_from_every_command(
    tmp_path: Path, receiver: AlertReceiver, command: list[str], dropped: str
) -> None:
    """A database missing a column its commands read: exit 2 and one line naming it."""
    database = tmp_path / "monitor.db"
    config = write_config(
        tmp_path,
        {"feed": "http://127.0.0.1:1/feed.xml"},
        [{"name": "desk", "url": receiver.url, "receive": ["alerts", "digest"]}],
    )
    store = Store.open(f"sqlite:///{database}")
    store.sync_feeds([("feed", "http://127.0.0.1:1/feed.xml")])
    store.enqueue([Notice("queued", ["desk"], "Queued", "body")], now=datetime.now(UTC))
    store.close()
    table, column = dropped.split(".")
    with sqlite3.connect(database) as db:
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.close()
    line = _one_line_error(run_cli(config, *command, timeout=60))
    assert column in line


def test_every_public_store_method_raises_only_store_error(tmp_path: Path) -> None:
    """Errors found while a caller iterates a generator are StoreError too."""
    database = tmp_path / "monitor.db"
    store = Store.open(f"sqlite:///{database}")
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE item DROP COLUMN title")
        db.execute("ALTER TABLE feed DROP COLUMN etag")
    db.close()
    items = store.items()  # nothing is read until the caller iterates
    with pytest.raises(StoreError, match=r"no such column: item\.title"):
        next(items)
    with pytest.raises(StoreError, match=r"no such column: feed\.etag"):
        store.feeds(["feed"])
    with pytest.raises(StoreError, match=r"no such column: item\.title"):
        store.history()
    store.close()
