"""The whole service against hostile feed servers: every case ends as a recorded error.

`monitor once` runs as a subprocess against one loopback server that serves a good feed
beside a dozen misbehaving ones. Each bad feed must end with its error in `status`,
within the fetch deadline, while the good feed still alerts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, write_config
from tests.support import hostile
from tests.support.feeds import FILLER, UNVEILING_EN, rss
from tests.support.servers import AlertReceiver, FeedServer

SECRET = "TOPSECRET-XXE-MARKER"
RETRY_AFTER = 3600
GONE = "monitor: feed http 410 is gone (HTTP 410)"


@dataclass(frozen=True)
class Case:
    """One hostile feed: how it is served and what its recorded error must say."""

    name: str
    serve: Callable[[FeedServer, Path], str]
    error: str | None
    """A fragment of `last_error`; None when storing the feed (inertly) is also fine."""


def _static(body: bytes, **options: Any) -> Callable[[FeedServer, Path], str]:
    def serve(server: FeedServer, folder: Path) -> str:
        return server.serve(f"/{id(serve)}", body, **options)

    return serve


def _handler(make: Callable[[], Any]) -> Callable[[FeedServer, Path], str]:
    def serve(server: FeedServer, folder: Path) -> str:
        return server.serve(f"/{id(serve)}", b"", handler=make())

    return serve


def _redirect_loop(server: FeedServer, folder: Path) -> str:
    server.serve("/loop-a", b"", handler=hostile.redirect("/loop-b", 302))
    server.serve("/loop-b", b"", handler=hostile.redirect("/loop-a", 301))
    return server.url("/loop-a")


def _xxe(server: FeedServer, folder: Path) -> str:
    secret = folder / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    return server.serve("/xxe.xml", hostile.xxe(str(secret)))


CASES = [
    Case("http 500", _static(b"oops", status=500), "HTTP 500"),
    Case(
        "http 429",
        _static(b"slow down", status=429, headers={"Retry-After": str(RETRY_AFTER)}),
        "HTTP 429",
    ),
    Case("http 404", _static(b"not here", status=404), "HTTP 404"),
    Case("http 410", _static(b"gone", status=410), "HTTP 410"),
    Case("login page", _static(hostile.LOGIN_PAGE, content_type="text/html"), ""),
    Case("50 MB declared", _handler(lambda: hostile.endless(declare=True)), "cap"),
    Case("50 MB streamed", _handler(lambda: hostile.endless(declare=False)), "cap"),
    Case("gzip bomb", _handler(lambda: hostile.encoded(hostile.gzip_bomb(), "gzip")), "cap"),
    Case("redirect loop", _redirect_loop, "redirects"),
    Case("random bytes", _static(hostile.random_bytes(), content_type="application/xml"), ""),
    Case("empty body", _static(b""), ""),
    Case("drip", _handler(lambda: hostile.drip(every=0.5)), "timed out"),
    Case("billion laughs", _static(hostile.BILLION_LAUGHS), None),
    Case("xxe", _xxe, None),
]


def _status(config: Path) -> dict[str, dict[str, Any]]:
    result = run_cli(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return {row["name"]: row for row in rows}


def _once(config: Path, *args: str) -> list[dict[str, Any]]:
    """Run one cycle; return its log events. The subprocess timeout bounds the cycle."""
    result = run_cli(config, "once", *args, timeout=90)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _stored_text(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        return [t + "\n" + s for t, s in db.execute("SELECT title, summary FROM item")]


@pytest.mark.slow
def test_hostile_servers_end_as_recorded_errors(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """Each hostile feed gets a recorded error within the deadline; the good feed alerts."""
    good = feed_server.serve("/good.xml", rss(FILLER, lang="en"))
    feeds = {"good": good}
    feeds.update({case.name: case.serve(feed_server, tmp_path) for case in CASES})
    config = write_config(
        tmp_path,
        feeds,
        [{"name": "desk", "url": receiver.url, "receive": ["alerts", "health"]}],
        fetch={"timeout": "2s", "interval": "1m"},
    )

    events = _once(config)
    done = next(e for e in events if e["event"] == "cycle.done")
    assert done["failed"] + done["ok"] == len(feeds)
    assert not [e for e in events if e["event"] == "feed.crashed"]

    status = _status(config)
    assert status["good"]["last_error"] is None
    assert status["good"]["items_seen"] == len(FILLER)
    for case in CASES:
        row = status[case.name]
        if case.error is None and row["last_error"] is None:
            assert row["last_ok"] is not None, case.name
            continue
        assert row["last_error"], f"{case.name}: no error recorded"
        assert case.error is None or case.error in row["last_error"], (case.name, row)
        assert "internal error" not in row["last_error"], (case.name, row)
        assert row["consecutive_failures"] == 1, case.name

    limited = status["http 429"]
    waited = datetime.fromisoformat(limited["next_check"]) - datetime.fromisoformat(
        limited["last_checked"]
    )
    assert waited.total_seconds() >= RETRY_AFTER
    assert status["http 410"]["health"] == "gone"
    assert status["http 500"]["health"] != "gone"

    stored = "\n".join(_stored_text(tmp_path / "monitor.db"))
    assert SECRET not in stored
    assert "lollollollollol" not in stored

    notices = receiver.messages()
    assert [m["title"] for m in notices] == [GONE]
    assert feed_server.url("/") in notices[0]["message"]

    # The next cycle polls everything again (--force skips the backoff) and the good
    # feed's new report alerts while the hostile feeds fail beside it.
    feed_server.serve("/good.xml", rss([UNVEILING_EN, *FILLER], lang="en"))
    events = _once(config, "--force")
    assert not [e for e in events if e["event"] == "feed.crashed"]
    titles = [m["title"] for m in receiver.messages()]
    assert len(titles) == 2, titles
    assert titles[0] == GONE
    assert "Kursk" in titles[1] or "Unveiled" in titles[1]
    status = _status(config)
    assert status["http 500"]["consecutive_failures"] == 2
    assert status["good"]["consecutive_failures"] == 0


def test_permanent_redirect_is_followed_and_shown(tmp_path: Path, feed_server: FeedServer) -> None:
    """A 301 updates the stored URL, `status` says so, and the next poll goes straight there."""
    new = feed_server.serve("/new.xml", rss(FILLER))
    old = feed_server.serve("/old.xml", b"", handler=hostile.redirect("/new.xml", 301))
    config = write_config(tmp_path, {"moved": old})
    _once(config)
    row = _status(config)["moved"]
    assert row["moved_to"] == new
    assert row["items_seen"] == len(FILLER)
    text = run_cli(config, "status", "--wide", env={"COLUMNS": "300"}).stdout
    assert f"moved to {new}" in text
    detail = run_cli(config, "status", "moved").stdout.splitlines()
    assert ["moved", "to:", new] in [line.split() for line in detail]

    _once(config, "--force")
    assert feed_server.hits("/old.xml") == 1
    assert feed_server.hits("/new.xml") == 2


def test_unchanged_body_is_not_parsed_again(tmp_path: Path, feed_server: FeedServer) -> None:
    """A server without validators that sends the same bytes again costs no parse."""
    url = feed_server.serve("/feed.xml", rss(FILLER), etag=False)
    config = write_config(tmp_path, {"feed": url})
    first = [e for e in _once(config) if e["event"] == "feed.checked"]
    assert first[0].get("entries") == len(FILLER)
    second = [e for e in _once(config, "--force") if e["event"] == "feed.checked"]
    assert second[0]["unchanged"] is True
    assert second[0]["status"] == 200
    assert "entries" not in second[0]


DATA = Path(__file__).resolve().parents[1] / "data"
HTML = "text/html; charset=utf-8"
UNMATCHED = "finds no items (has the page changed?)"


def _enormous_listing() -> bytes:
    """About 6 MB of listing, under the size cap: read to the item cap."""
    items = b"".join(
        b'<div class="news"><a href="/n/%d">Item %d</a><p>%s</p></div>' % (i, i, b"x" * 20)
        for i in range(100_000)
    )
    return b"<html><body>" + items + b"</body></html>"


def _deep_page() -> bytes:
    return b"<html><body>" + b"<div>" * 100_000 + b'<a href="/deep">deep</a>' + b"</div>" * 100_000


@pytest.mark.slow
def test_hostile_telegram_and_page_sources_end_as_recorded_errors(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """Telegram and page sources against hostile servers: each ends read or with its error
    recorded, never a crash; a page whose selector matches nothing tells health once."""
    channel = (DATA / "telegram_channel.html").read_bytes()
    serve = feed_server.serve

    def telegram(path: str) -> dict[str, str]:
        return {"telegram": "kursk_gov_test", "url": feed_server.url(path)}

    def page(path: str, items: str = "div.news a") -> dict[str, str]:
        return {"page": feed_server.url(path), "items": items}

    serve("/s/good", channel, content_type=HTML)
    serve("/s/broken", (DATA / "telegram_broken.html").read_bytes(), content_type=HTML)
    serve("/s/login", hostile.LOGIN_PAGE, content_type=HTML)
    serve("/s/truncated", channel[: len(channel) // 3], content_type=HTML)
    serve("/s/huge", b"", handler=hostile.endless(declare=False))
    serve("/s/drip", b"", handler=hostile.drip(every=0.5))
    serve("/p/enormous", _enormous_listing(), content_type=HTML)
    serve("/p/nothing", (DATA / "page_listing.html").read_bytes(), content_type=HTML)
    serve("/p/deep", _deep_page(), content_type=HTML)
    serve("/p/random", hostile.random_bytes(), content_type=HTML)
    serve("/p/huge", b"", handler=hostile.endless(declare=True))
    serve("/p/bomb", b"", handler=hostile.encoded(hostile.gzip_bomb(), "gzip", HTML))
    sources: dict[str, Any] = {
        "tg good": telegram("/s/good"),
        "tg broken markup": telegram("/s/broken"),
        "tg login page": telegram("/s/login"),
        "tg truncated": telegram("/s/truncated"),
        "tg 50 MB": telegram("/s/huge"),
        "tg drip": telegram("/s/drip"),
        "page enormous": page("/p/enormous"),
        "page no matches": page("/p/nothing"),
        "page too deep": page("/p/deep", "a"),
        "page random bytes": page("/p/random"),
        "page 50 MB": page("/p/huge"),
        "page gzip bomb": page("/p/bomb"),
    }
    errors = {
        "tg login page": "not a Telegram channel preview",
        "tg 50 MB": "cap",
        "tg drip": "timed out",
        "page no matches": "no item matched the items selector 'div.news a'",
        "page too deep": "no item matched",
        "page random bytes": "no item matched",
        "page 50 MB": "cap",
        "page gzip bomb": "cap",
    }
    config = write_config(
        tmp_path,
        sources,
        [{"name": "desk", "url": receiver.url, "receive": ["alerts", "health"]}],
        fetch={"timeout": "2s", "interval": "1m"},
    )

    events = _once(config)
    done = next(e for e in events if e["event"] == "cycle.done")
    assert done["failed"] + done["ok"] == len(sources)
    assert not [e for e in events if e["event"] == "feed.crashed"]

    status = _status(config)
    for name, fragment in errors.items():
        row = status[name]
        assert row["last_error"], (name, row)
        assert fragment in row["last_error"], (name, row)
        assert "internal error" not in row["last_error"], (name, row)
    for name in sorted(set(sources) - set(errors)):
        assert status[name]["last_error"] is None, (name, status[name])
        assert status[name]["items_seen"] > 0, name
    assert status["tg good"]["items_seen"] == 5
    assert status["tg truncated"]["items_seen"] >= 1
    assert status["page enormous"]["items_seen"] == 500
    assert status["page no matches"]["health"] == "unmatched"
    assert status["page no matches"]["health_told"] == "unmatched"

    unmatched = sorted(m["title"] for m in receiver.messages())
    assert unmatched == [
        f"monitor: feed {name} {UNMATCHED}"
        for name in ("page no matches", "page random bytes", "page too deep")
    ]
    _once(config, "--force")  # still unmatched: told once, not again
    assert len(receiver.messages()) == 3
