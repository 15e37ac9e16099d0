"""The page and the Atom feed of events: what they show of the store, and what never."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest

from monitor.config.settings import load_config
from monitor.service.http import HttpServer, routes
from monitor.service.metrics import Metrics, wsgi_app
from monitor.service.page import Page, chart
from monitor.service.redact import Redactor
from tests.conftest import write_config
from tests.support.desk import Desk
from tests.support.events import STORY, STORY_NAME, label
from tests.support.servers import AlertReceiver

SECRET = "pAss-W0rd-77aa"
DB_SECRET = "db-Pa55-91zz"


@pytest.fixture
def desk(desk_for: Callable[..., Desk], receiver: AlertReceiver) -> Desk:
    """A desk whose `desk` target takes alerts and updates; a second target, whose URL
    carries a password, cannot be reached."""
    return desk_for(
        [
            {"name": "desk", "url": receiver.url, "receive": ["alerts", "updates"]},
            {"url": f"json://desk:{SECRET}@127.0.0.1:1/alerts"},
        ]
    )


def _page(desk: Desk, config_path: Path | None = None) -> Page:
    config = load_config(config_path) if config_path else desk.config
    redactor = Redactor()
    redactor.learn(config)
    return Page(desk.store, lambda: config, redact=redactor, clock=desk.clock)


def _story_week(desk: Desk) -> None:
    """Three milestones on three days, the last also in Russian; one update between."""
    news = desk.news
    news.report("Site chosen for Kursk monument", "site_selection", url="https://wire.example/1")
    desk.clock.advance(days=1)
    news.report("Kursk fundraising for the monument", None, url="https://wire.example/2")
    desk.clock.advance(hours=2)
    news.report("Design of the Kursk monument revealed", "design_reveal")
    desk.clock.advance(days=1)
    news.report("Monument unveiled in Kursk", "unveiling", url="https://wire.example/3")
    desk.clock.advance(minutes=20)
    news.report(
        "В Курске открыли монумент",
        "unveiling",
        feed="agency",
        url="https://ria.example/4",
        outlet="RIA Novosti",
        lang="ru",
    )
    desk.deliver()


def test_timeline_oldest_first_with_reports_and_deliveries(desk: Desk) -> None:
    """Milestones and updates oldest first; first report, other outlets by language,
    delivery state per target (by its masked label)."""
    _story_week(desk)
    story = _page(desk).context()["stories"][0]
    assert (story["id"], story["name"]) == (STORY, STORY_NAME)
    timeline = story["timeline"]
    assert [e["label"] for e in timeline] == [
        label("site_selection"),
        "Update",
        label("design_reveal"),
        label("unveiling"),
    ]
    assert [e["iso"] for e in timeline] == sorted(e["iso"] for e in timeline)
    unveiling = timeline[-1]
    assert unveiling["first"]["outlet"] == "wire"
    assert unveiling["first"]["lang"] == "en"
    assert unveiling["languages"] == [
        {
            "lang": "ru",
            "outlets": [
                {
                    "outlet": "RIA Novosti",
                    "tier": None,
                    "url": "https://ria.example/4",
                    "at": "2026-11-29 11:20 UTC",
                }
            ],
        }
    ]
    assert (unveiling["outlets"], unveiling["language_count"]) == (2, 2)
    states = {d["target"]: d["status"] for d in unveiling["deliveries"]}
    assert states["desk"] == "sent"
    assert "json://desk:****@127.0.0.1:1/alerts" in states
    first = {d["target"]: (d["status"], d["note"]) for d in timeline[0]["deliveries"]}
    assert first["json://desk:****@127.0.0.1:1/alerts"] == (
        "dead",
        "A Connection error occurred sending JSON notification to 127.0.0.1.",
    )
    assert [d["target"] for d in timeline[1]["deliveries"]] == ["desk"]  # updates: desk only


def test_page_html_escapes_and_links(desk: Desk) -> None:
    """Feed text is escaped; links are made only for http(s) URLs; the chart is SVG."""
    desk.news.report(
        '<script>alert("x")</script> Kursk monument site chosen',
        "site_selection",
        url="javascript:alert(1)",
    )
    html = _page(desk).html()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert re.search(r"<svg[^>]*>.*<rect class=\"bar\"", html, re.DOTALL)
    assert 'href="/events.atom"' in html


def test_coverage_chart_counts_reports_per_day(desk: Desk) -> None:
    """Each day of the last 30 is a bar; reports count on their day, copies do not."""
    _story_week(desk)
    desk.news.report("Monument unveiled in Kursk", "unveiling", url="https://wire.example/3")
    story = _page(desk).context()["stories"][0]
    bars = story["chart"]["bars"]
    assert len(bars) == 30
    assert bars[-1]["day"] == desk.clock().date().isoformat()
    counts = {b["day"]: b["count"] for b in bars if b["count"]}
    assert counts == {"2026-11-27": 1, "2026-11-28": 2, "2026-11-29": 2}


@pytest.mark.parametrize(
    ("days", "heights"),
    [
        pytest.param({}, [0, 0, 0], id="empty"),
        pytest.param({0: 4, 2: 2}, [120, 0, 60], id="scaled-to-highest"),
        pytest.param({0: 500, 1: 1}, [120, 1, 0], id="one-report-still-seen"),
    ],
)
def test_chart_geometry(days: dict[int, int], heights: list[int]) -> None:
    """Bars are scaled to the busiest day; a day with a report is never drawn empty."""
    first = date(2026, 11, 1)
    drawn = chart({first + timedelta(days=k): v for k, v in days.items()}, first, date(2026, 11, 3))
    assert [b["height"] for b in drawn["bars"]] == heights
    assert all(b["y"] + b["height"] == drawn["base"] for b in drawn["bars"])


def test_atom_feed_validates_and_matches_history(desk: Desk) -> None:
    """feedparser reads /events.atom cleanly: one entry per event and update, newest first."""
    _story_week(desk)
    body = _page(desk).atom("http://127.0.0.1:9108/")
    feed = feedparser.parse(body)
    assert feed.bozo == 0, feed.bozo_exception
    history = desk.store.history()
    assert len(feed.entries) == len(history) == 4
    assert [e.title for e in feed.entries] == [
        f"{label('unveiling')}: Monument unveiled in Kursk",
        f"{label('design_reveal')}: Design of the Kursk monument revealed",
        "Update: Kursk fundraising for the monument",
        f"{label('site_selection')}: Site chosen for Kursk monument",
    ]
    assert feed.entries[0].id == f"urn:monitor:event:{STORY}:unveiling"
    assert feed.entries[2].id.startswith(f"urn:monitor:update:{STORY}:")
    assert feed.entries[0].link == "https://wire.example/3"
    assert [e.updated_parsed for e in feed.entries] == sorted(
        (e.updated_parsed for e in feed.entries), reverse=True
    )
    assert "First: wire" in feed.entries[0].summary
    assert feed.feed.links[0].href == "http://127.0.0.1:9108/events.atom"


def test_no_secret_on_the_page_or_in_the_feed(desk: Desk, tmp_path: Path) -> None:
    """A target's password, in its URL or in an error quoting it, and the database's
    password are shown nowhere."""
    _story_week(desk)
    dead = desk.store.outbox(["failed", "dead"])[0]
    claims = desk.store.claim_due(
        desk.clock.advance(days=1), timedelta(minutes=1), targets=[dead.target], ignore_backoff=True
    )
    quoting = f"cannot post to json://desk:{SECRET}@127.0.0.1:1/alerts"
    for claim in claims:
        desk.store.finish(claim, now=desk.clock(), error=quoting)
    other = tmp_path / "other"
    other.mkdir()
    config = write_config(
        other,
        {"wire": "https://wire.example/rss", "agency": "https://agency.example/rss"},
        [
            {"name": "desk", "url": "json://127.0.0.1:9/desk"},
            {"url": f"json://desk:{SECRET}@127.0.0.1:1/alerts"},
        ],
        database=f"postgresql+psycopg://monitor:{DB_SECRET}@db.example/monitor",
    )
    page = _page(desk, config)
    html, atom = page.html(), page.atom("http://127.0.0.1:9108/").decode()
    assert "cannot post to json://desk:****@" in html
    for shown in (html, atom):
        assert SECRET not in shown
        assert DB_SECRET not in shown
        assert "db.example" not in shown


def test_feeds_health_without_their_addresses(desk: Desk) -> None:
    """Each configured feed with its state as `status` shows it, never its URL."""
    desk.store.record_failure(
        "agency", "HTTP 503", 503, now=desk.clock(), next_check=desk.clock() + timedelta(hours=1)
    )
    feeds = {f["name"]: f for f in _page(desk).context()["feeds"]}
    assert (feeds["wire"]["state"], feeds["agency"]["state"]) == ("ok", "failing")
    assert feeds["agency"]["error"] == "HTTP 503"
    assert (feeds["wire"]["items_seen"], feeds["agency"]["items_seen"]) == (1, 1)
    html = _page(desk).html()
    assert '<td class="health-failing">failing (1×)</td>' in html
    assert "<td>1</td><td>HTTP 503</td>" in html
    assert "wire.example/rss" not in html
    assert "agency.example/rss" not in html


@pytest.fixture
def served(desk: Desk) -> Iterator[str]:
    """The page with /metrics and /healthz, as `monitor run` serves them."""
    server = HttpServer(routes(_page(desk), wsgi_app(Metrics(desk.store))), "127.0.0.1", 0)
    server.start()
    yield server.url
    server.stop()


def _fetch(url: str, method: str = "GET") -> tuple[int, str, Any]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


@pytest.mark.parametrize(
    ("path", "method", "status", "content_type"),
    [
        pytest.param("", "GET", 200, "text/html; charset=utf-8", id="page"),
        pytest.param(f"story/{STORY}", "GET", 200, "text/html; charset=utf-8", id="one-story"),
        pytest.param("story/nope", "GET", 404, "text/plain", id="unknown-story"),
        pytest.param("events.atom", "GET", 200, "application/atom+xml; charset=utf-8", id="atom"),
        pytest.param(
            "metrics", "GET", 200, "text/plain; version=0.0.4; charset=utf-8", id="metrics"
        ),
        pytest.param("healthz", "GET", 200, "application/json", id="healthz"),
        pytest.param("elsewhere", "GET", 404, "text/plain", id="unknown-path"),
        pytest.param("", "POST", 405, "text/plain", id="read-only"),
    ],
)
def test_routes(served: str, path: str, method: str, status: int, content_type: str) -> None:
    """The page's paths beside /metrics and /healthz; nothing but GET and HEAD."""
    got, body, headers = _fetch(served + path, method)
    assert (got, headers["Content-Type"]) == (status, content_type)
    if path.startswith("story/") and status == 200:
        assert STORY_NAME in body
