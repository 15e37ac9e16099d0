"""Feed text end to end: made safe where it is parsed, and shown safely wherever it goes out.

`monitor once` runs as a subprocess against a loopback feed server and a `json://`
receiver. A poisoned item (a lone surrogate, a NUL byte, a link too long to index) must
not keep the good item beside it from alerting, on SQLite and on PostgreSQL; terminal
controls in a title must never reach a terminal or a message raw; a huge title must not
make a huge message or a huge `status`. Rows stored before text was made safe at the
parse boundary are doctored into the database directly, to show that output is safe
on its own too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, write_config
from tests.support.feeds import FILLER, Item, json_feed
from tests.support.postgres import schema_url
from tests.support.servers import AlertReceiver, FeedServer

UNVEILED = Item(
    "Monument to North Korean soldiers unveiled in Kursk",
    "https://wire.example/unveiled",
    "A monument honouring Korean People's Army soldiers was unveiled in Kursk on Sunday.",
)
RAW_CONTROLS = ("\x1b", "\x07", "\x08", "\x00", "\x9b")
"""ESC, BEL, BS, NUL and the 8-bit CSI: none may reach a terminal or a message raw."""
HOSTILE = (
    "[/] \x1b]0;owned\x07\x1b[2J\x08\x08Monument to North Korean soldiers unveiled in Kursk\x9b"
)


SQLITE = "sqlite:///monitor.db"


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database URL for `sqlite` (a file beside the config) or `postgresql` (a fresh schema)."""
    if request.param == "sqlite":
        yield SQLITE
        return
    with schema_url() as url:
        yield url


def _config(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, database: str = SQLITE
) -> Path:
    """A config with one JSON feed, already fetched once (so the next items alert)."""
    url = feed_server.serve("/wire.json", json_feed(FILLER), content_type="application/json")
    config = write_config(
        tmp_path, {"wire": url}, [{"name": "desk", "url": receiver.url}], database=database
    )
    _once(config)
    return config


def _serve(feed_server: FeedServer, items: list[Item]) -> None:
    feed_server.serve("/wire.json", json_feed(items), content_type="application/json")


def _once(config: Path) -> None:
    result = run_cli(config, "once")
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]


def _output(config: Path, *args: str) -> str:
    result = run_cli(config, *args, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def _raw_controls(text: str) -> list[str]:
    return [repr(c) for c in RAW_CONTROLS if c in text]


def _alert_for(
    config: Path, feed_server: FeedServer, receiver: AlertReceiver, *items: Item
) -> dict[str, Any]:
    """The one alert that `items`, new in the feed, make."""
    _serve(feed_server, [*items, *FILLER])
    _once(config)
    [alert] = receiver.messages()
    return alert


def _stored_before(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, title: str
) -> Path:
    """A config whose store holds a milestone, its alert still queued, all titled `title`.

    The titles are written into the database directly, as a version that stored text
    raw would have; the alert's message is rendered only when it is sent.
    """
    config = _config(tmp_path, feed_server, receiver)
    receiver.down = True
    _serve(feed_server, [UNVEILED, *FILLER])
    _once(config)
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        db.execute("UPDATE item SET title = ?", (title,))
        db.execute("UPDATE event SET title = ?", (title,))
    return config


def _delivered(config: Path, receiver: AlertReceiver) -> dict[str, Any]:
    """The one alert that `monitor deliver` sends once the receiver is up."""
    receiver.down = False
    _output(config, "deliver")
    [alert] = receiver.messages()
    return alert


def _poisoned(title: str = "Central bank keeps key rate", link: str = "") -> Item:
    return Item(title, link or "https://wire.example/rate-2")


POSTGRES = pytest.mark.postgres
# Random hex: PostgreSQL compresses a repetitive link below its index limit.
LONG_LINK = "https://wire.example/" + "".join(f"{n * 7919 % 65536:04x}" for n in range(800))


@pytest.mark.parametrize(
    ("bad", "database"),
    [
        pytest.param(_poisoned("Central bank \ud800 keeps rate"), "sqlite", id="surrogate-sqlite"),
        pytest.param(
            _poisoned("Central bank \ud800 keeps rate"),
            "postgresql",
            marks=POSTGRES,
            id="surrogate-pg",
        ),
        pytest.param(
            _poisoned("Central bank \x00 keeps rate"), "postgresql", marks=POSTGRES, id="nul-pg"
        ),
        pytest.param(_poisoned(link=LONG_LINK), "postgresql", marks=POSTGRES, id="3kB-link-pg"),
    ],
    indirect=["database"],
)
def test_a_poisoned_item_does_not_keep_its_feed_from_alerting(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, bad: Item, database: str
) -> None:
    """An item that cannot be stored as sent is made storable; the milestone beside it alerts."""
    config = _config(tmp_path, feed_server, receiver, database)
    alert = _alert_for(config, feed_server, receiver, bad, UNVEILED)
    assert UNVEILED.title in alert["message"]
    status = json.loads(_output(config, "status", "--json"))
    assert status["last_error"] is None
    assert status["items_seen"] == len(FILLER) + 2


def test_terminal_controls_in_a_title_reach_no_terminal_and_no_message(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """ESC, BEL and BS in a title are gone from the alert, history, status and the digest."""
    config = _config(tmp_path, feed_server, receiver)
    alert = _alert_for(
        config, feed_server, receiver, Item(HOSTILE, UNVEILED.link, UNVEILED.summary)
    )
    assert "Monument to North Korean soldiers unveiled in Kursk" in alert["message"]
    assert _raw_controls(alert["message"] + alert["title"]) == []
    for command in (["history"], ["history", "--json"], ["status"], ["status", "--json"]):
        assert _raw_controls(_output(config, *command)) == [], command
    assert _raw_controls(_output(config, "digest", "--dry-run")) == []


def test_controls_already_stored_are_shown_escaped_and_sent_stripped(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """Rows stored raw before sanitising are escaped by every command and stripped in messages."""
    config = _stored_before(tmp_path, feed_server, receiver, HOSTILE)

    history = _output(config, "history")
    assert _raw_controls(history) == []
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x08\\x08Monument" in history
    for command in (["history", "--json"], ["status"], ["status", "--json"]):
        assert _raw_controls(_output(config, *command)) == [], command
    assert _raw_controls(_output(config, "status", "--json", "--deliveries")) == []
    for fmt in ("text", "markdown", "html"):
        digest = _output(config, "digest", "--dry-run", "--format", fmt)
        assert "unveiled in Kursk" in digest
        assert _raw_controls(digest) == [], fmt
    replay = _output(config, "replay")
    assert _raw_controls(replay) == []

    alert = _delivered(config, receiver)
    assert "]0;owned[2JMonument to North Korean soldiers unveiled in Kursk" in alert["message"]
    assert _raw_controls(alert["message"] + alert["title"]) == []


HUGE = UNVEILED.title + " " + "and more words " * 70_000  # about 1 MB


def test_a_huge_title_is_capped_where_it_is_read(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """A 1 MB title is stored capped, alerts in a small message, and keeps `status` small."""
    config = _config(tmp_path, feed_server, receiver)
    alert = _alert_for(config, feed_server, receiver, Item(HUGE, UNVEILED.link, UNVEILED.summary))
    assert UNVEILED.title in alert["message"]
    assert len(json.dumps(alert)) < 3_000
    [event] = [json.loads(line) for line in _output(config, "history", "--json").splitlines()]
    assert event["title"].startswith(UNVEILED.title)
    assert event["title"].endswith("…")
    assert event["title"][:-1].split()[-1] in {"and", "more", "words"}
    assert len(event["title"]) <= 500
    assert len(_output(config, "status")) < 10_000


def test_a_huge_title_stored_before_capping_is_printed_capped(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """A 1 MB title already in the store gives small output from every command and message."""
    config = _stored_before(tmp_path, feed_server, receiver, HUGE)

    sizes: dict[str, Any] = {
        " ".join(command): len(_output(config, *command))
        for command in (
            ["history"],
            ["history", "--json"],
            ["status"],
            ["status", "--json"],
            ["status", "--json", "--deliveries"],
            ["digest", "--dry-run"],
            ["replay"],
            ["replay", "--json"],
        )
    }
    assert {command: size for command, size in sizes.items() if size > 10_000} == {}
    alert = _delivered(config, receiver)
    assert UNVEILED.title in alert["message"]
    # The text, and the structured object a json:// target gets beside it, each small.
    assert len(json.dumps({k: v for k, v in alert.items() if k != "alert"})) < 3_000
    assert len(json.dumps(alert["alert"])) < 3_000
