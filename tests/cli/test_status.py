"""`monitor status`: feed health and the outbox, as JSON and as a table."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from monitor.cli import status
from monitor.config.settings import Config, load_config
from monitor.ingest.decide import Classified
from monitor.ingest.entry import Entry
from monitor.ingest.record import ingest
from monitor.match.classify import Verdict
from monitor.service.redact import MASK, Redactor
from monitor.store.store import Store
from tests.conftest import REPO, run_cli, write_config
from tests.support.feeds import FILLER, Item, rss
from tests.support.servers import FeedServer

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STORY = "kursk-kpa-monument"
FEEDS = {
    "fresh": "https://fresh.example/rss",
    "healthy": "https://healthy.example/rss",
    "failing": "https://failing.example/rss",
    "removed": "https://removed.example/rss",
}


def _entry(key: str, title: str) -> Entry:
    return Entry(key=key, url=f"https://x.example/{key}", title=title, summary="", published=NOW)


def _ingest(store: Store, feed: str, items: list[Classified], now: datetime) -> None:
    ingest(
        store,
        feed,
        items,
        now=now,
        next_check=now + timedelta(minutes=15),
        alert_after=now - timedelta(days=3),
        route=lambda story, milestone: ["desk", "slack"],
    )


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[tuple[Config, Store]]:
    """Feeds in every state, and an outbox with pending, failed, sent and dead rows."""
    config = load_config(write_config(tmp_path, FEEDS))
    store = Store.open(config.database_url())
    store.sync_feeds(list(FEEDS.items()))
    quiet = Verdict(story=None, milestone=None, terms={}, why="no story")
    unveiled = Verdict(story=STORY, milestone="unveiling", terms={"watch": ("monument",)}, why="t")
    earlier = NOW - timedelta(minutes=20)
    _ingest(store, "healthy", [Classified(_entry("h0", "Weather"), quiet)], earlier)
    refused = Classified(_entry("h2", "A lone surrogate \ud800 no database stores"), quiet)
    _ingest(
        store,
        "healthy",
        [refused, Classified(_entry("h1", "Monument unveiled in Kursk"), unveiled)],
        NOW,
    )
    store.record_failure(
        "failing",
        "HTTP 503 for token Tok3nTok3n",
        503,
        now=NOW,
        next_check=NOW + timedelta(hours=1),
    )
    store.record_failure("removed", "HTTP 410 Gone", 410, now=NOW, next_check=NOW, gone=True)
    desk, slack = store.claim_due(NOW, timedelta(minutes=5), targets={"desk", "slack"})
    store.finish(desk, now=NOW, error="HTTP 500 from desk", retry_at=NOW + timedelta(minutes=2))
    store.finish(slack, now=NOW, error="401 Unauthorized: Tok3nTok3n rejected")
    yield config, store
    store.close()


def test_collect_reports_every_feed_state(scene: tuple[Config, Store]) -> None:
    """Each feed's health, backoff and last item; pending and dead deliveries, redacted."""
    config, store = scene
    report = status.collect(config, store, NOW, redact=Redactor({"Tok3nTok3n": MASK}))
    feeds = {f.name: f for f in report.feeds}
    assert {name: f.health for name, f in feeds.items()} == {
        "fresh": "new",
        "healthy": "ok",
        "failing": "failing",
        "removed": "gone",
    }
    assert feeds["healthy"].last_item is not None
    assert feeds["healthy"].last_item.title == "Monument unveiled in Kursk"
    assert (feeds["healthy"].items_seen, feeds["healthy"].items_skipped) == (2, 1)
    assert feeds["failing"].backoff_until == NOW + timedelta(hours=1)
    assert feeds["failing"].last_error == f"HTTP 503 for token {MASK}"
    assert feeds["healthy"].backoff_until is None
    assert [(d.target, d.status, d.attempts) for d in report.pending] == [("desk", "failed", 1)]
    assert [(d.target, d.last_error) for d in report.dead] == [
        ("slack", f"401 Unauthorized: {MASK} rejected")
    ]
    assert report.pending[0].milestone == "unveiling"


def test_json_rows(scene: tuple[Config, Store]) -> None:
    """`--json` rows: ISO times and backoff per feed; per-target counts and stuck deliveries."""
    config, store = scene
    report = status.collect(config, store, NOW)
    feeds = json.loads(json.dumps(status.feed_rows(report)))
    failing = next(f for f in feeds if f["name"] == "failing")
    assert failing["backoff_until"] == (NOW + timedelta(hours=1)).isoformat()
    assert failing["consecutive_failures"] == 1
    healthy = next(f for f in feeds if f["name"] == "healthy")
    assert healthy["last_item"]["url"] == "https://x.example/h1"
    assert (healthy["items_skipped"], failing["items_skipped"]) == (1, 0)
    outbox = json.loads(json.dumps(status.delivery_rows(report)))
    targets = {r["target"]: r["counts"] for r in outbox if r["type"] == "target"}
    none = {"waiting": 0, "pending": 0, "failed": 0, "sent": 0, "dead": 0, "folded": 0}
    assert targets == {"desk": {**none, "failed": 1}, "slack": {**none, "dead": 1}}
    deliveries = [r for r in outbox if r["type"] == "delivery"]
    assert [(d["target"], d["status"]) for d in deliveries] == [
        ("desk", "failed"),
        ("slack", "dead"),
    ]
    assert deliveries[1]["title"] == "Monument unveiled in Kursk"


def test_table_shows_health_and_outbox(scene: tuple[Config, Store]) -> None:
    """The terminal view names each feed's health, the backoff and the stuck deliveries."""
    config, store = scene
    out = io.StringIO()
    status.render(status.collect(config, store, NOW), Console(file=out, width=200))
    text = out.getvalue()
    for expected in (
        "fresh",
        "new",
        "failing",
        "backoff until in 60 minutes",
        "gone",
        "Monument unveiled in Kursk · 0 seconds",  # "ago" wraps in the column
        "items not stored: 1",
        "Waiting to be sent",
        "HTTP 500 from desk",
        "Dead",
        "failed 1",
        "dead 1",
    ):
        assert expected in text, expected


def test_silent_feed_is_called_silent(scene: tuple[Config, Store]) -> None:
    """A feed judged silent shows as `silent`, a word apart from targets' quiet hours."""
    config, store = scene
    store.set_health("healthy", "silent", was=None, now=NOW, notices=[])
    report = status.collect(config, store, NOW)
    assert {f.name: f.health for f in report.feeds}["healthy"] == "silent"
    out = io.StringIO()
    status.render(report, Console(file=out, width=200))
    assert "silent" in out.getvalue()
    assert "quiet" not in out.getvalue()


@pytest.mark.parametrize(
    ("moment", "ago", "until"),
    [
        pytest.param(None, "-", "-", id="never"),
        pytest.param(NOW - timedelta(seconds=42), "42 seconds ago", "due", id="seconds"),
        pytest.param(NOW - timedelta(minutes=90), "90 minutes ago", "due", id="minutes"),
        pytest.param(NOW - timedelta(hours=5), "5 hours ago", "due", id="hours"),
        pytest.param(NOW + timedelta(minutes=5), "in 5 minutes", "in 5 minutes", id="future"),
        pytest.param(NOW - timedelta(days=3), "3 days ago", "due", id="days"),
    ],
)
def test_relative_times(moment: datetime | None, ago: str, until: str) -> None:
    """Times in the table read relative to now."""
    assert status.ago(moment, NOW) == ago
    assert status.until(moment, NOW) == until


def test_status_command_prints_json(tmp_path: Path) -> None:
    """`monitor status --json` prints one JSON object per line, a row per configured feed."""
    config = write_config(tmp_path, FEEDS)
    result = run_cli(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [f["name"] for f in rows] == list(FEEDS)
    assert {f["health"] for f in rows} == {"new"}
    for key in ("url", "last_checked", "last_ok", "last_error", "consecutive_failures"):
        assert all(key in row for row in rows)
    assert all("items_seen" in row and "next_check" in row for row in rows)


LONG_HEADLINE = (
    "Officials in the Kursk region announce that the monument to North Korean soldiers "
    "will be unveiled next spring after consultations with veterans' associations"
)


@pytest.fixture
def shipped_feeds_checked(tmp_path: Path, feed_server: FeedServer) -> Path:
    """The shipped config's feeds, served locally: most answer, some fail, one 404s."""
    names = [feed.name for feed in load_config(REPO / "config.yaml", env={}).feeds]
    feeds = {}
    for i, name in enumerate(names):
        path = f"/{i}.xml"
        if i % 5 == 1:
            feed_server.serve(path, "upstream trouble", status=503, content_type="text/plain")
        else:
            feed_server.serve(path, rss([*FILLER, Item(LONG_HEADLINE, f"https://n.example/{i}")]))
        feeds[name] = feed_server.url(path)
    feeds[names[-1]] = feed_server.url("/missing.xml")
    config = write_config(tmp_path, feeds)
    assert run_cli(config, "once").returncode == 0
    return config


def test_status_fits_80_columns(shipped_feeds_checked: Path) -> None:
    """`status` at 80 columns: a line per shipped feed, none longer than 80 characters,
    each with its health, counts and the error in a few words."""
    result = run_cli(shipped_feeds_checked, "status", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    names = [feed.name for feed in load_config(shipped_feeds_checked).feeds]
    rows = lines[1 : 1 + len(names)]
    for name, row in zip(names, rows, strict=True):
        shown_name = row.split(maxsplit=1)[1]
        assert shown_name.startswith(status.fit(name, 24).removesuffix("…")), (name, row)
    assert sum(row.startswith("failing") for row in rows) == 4
    assert sum(row.startswith("ok") for row in rows) == len(names) - 4
    failing = next(row for row in rows if row.startswith("failing"))
    assert failing.endswith("(1x)")
    assert "503" in failing
    assert lines[1 + len(names)].startswith("Deliveries: ")
    assert len(lines) < 2 * len(names)


def test_status_feed_shows_everything_wrapped_at_words(shipped_feeds_checked: Path) -> None:
    """`status FEED` shows one feed in full at 80 columns; its headline wraps between words."""
    result = run_cli(shipped_feeds_checked, "status", "RIA Novosti", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split() == ["feed:", "RIA", "Novosti"]
    words = result.stdout.split()
    assert all(word in words for word in LONG_HEADLINE.split())
    unknown = run_cli(shipped_feeds_checked, "status", "No such feed")
    assert unknown.returncode == 1
    assert "no feed named 'No such feed'" in unknown.stderr


def test_status_wide_keeps_the_full_tables(shipped_feeds_checked: Path) -> None:
    """`status --wide` still draws the full tables, last items included."""
    result = run_cli(shipped_feeds_checked, "status", "--wide", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "last item" in result.stdout
    assert "Officials in the Kursk region" in result.stdout


@pytest.mark.parametrize(
    ("text", "width", "fitted"),
    [
        pytest.param("short", 10, "short", id="fits"),
        pytest.param("Yonhap English (North Korea)", 24, "Yonhap English (North…", id="at-a-word"),
        pytest.param("Unbreakablewordthatislong", 10, "Unbreakab…", id="one-long-word"),
    ],
)
def test_fit_cuts_at_a_word(text: str, width: int, fitted: str) -> None:
    """A cut ends at a word boundary when there is one, marked `…`, within the width."""
    assert status.fit(text, width) == fitted
    assert len(status.fit(text, width)) <= width
