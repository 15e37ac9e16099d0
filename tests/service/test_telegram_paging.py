"""A Telegram channel that posts more than a preview page between two checks: the
older `?before=ID` pages are read, within a bound, through the fetcher's limits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from monitor.config.settings import load_config
from monitor.ingest.telegram_pages import MAX_PAGES, older_page
from monitor.store.store import Store
from tests.conftest import write_config
from tests.service.test_pipeline import Harness
from tests.support.clock import FakeClock
from tests.support.feeds import UNVEILING_RU
from tests.support.servers import AlertReceiver, FeedServer
from tests.support.telegram import PAGE_SIZE, pages

HTML = "text/html; charset=utf-8"
CHANNEL = "kursk_gov_test"
UNVEILING = f"{UNVEILING_RU.title}\n\n{UNVEILING_RU.summary}"


def serve_channel(server: FeedServer, channel: str, last: int, **texts: str) -> None:
    """The channel's preview, posts 1..`last`, every page of it (`texts`: `p107=...`)."""
    by_number = {int(key[1:]): text for key, text in texts.items()}
    for path, body in pages(channel, last, by_number).items():
        server.serve(path, body, content_type=HTML)


def older_requests(server: FeedServer, channel: str) -> list[str]:
    """The `?before=` pages asked for, in order."""
    return [path for path, _ in server.requests if path.startswith(f"/s/{channel}?before=")]


def numbers(store: Store, feed: str) -> set[int]:
    """The post numbers the feed has stored."""
    return {int(str(i.url).rsplit("/", 1)[1]) for i in store.items() if i.feed == feed}


@pytest.fixture
def harness(tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver) -> Iterator[Any]:
    made: list[Harness] = []

    def build(*channels: str, **fetch: object) -> Harness:
        feeds = {
            name: {"telegram": name, "url": feed_server.url(f"/s/{name}")} for name in channels
        }
        path = write_config(tmp_path, feeds, [{"url": receiver.url}], fetch=fetch)
        made.append(Harness(load_config(path), FakeClock()))
        return made[-1]

    yield build
    for h in made:
        h.store.close()


def test_a_burst_across_two_pages_is_read_whole(
    harness: Any, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """The first fetch reads one page only (a baseline). Then 30 new posts, over two
    pages: the older page is read too, every new post is stored, and the milestone on
    the older page alerts. The first page's validators still make the next check a 304."""
    serve_channel(feed_server, CHANNEL, 105)
    h = harness(CHANNEL)
    assert asyncio.run(h.cycle()) == {CHANNEL: "ok"}
    assert older_requests(feed_server, CHANNEL) == []  # a baseline reads the first page
    assert numbers(h.store, CHANNEL) == set(range(86, 106))

    serve_channel(feed_server, CHANNEL, 135, p110=UNVEILING)  # 110 is on the older page
    h.clock.advance(minutes=5)
    assert asyncio.run(h.cycle()) == {CHANNEL: "ok"}

    assert older_requests(feed_server, CHANNEL) == [f"/s/{CHANNEL}?before=116"]
    assert numbers(h.store, CHANNEL) == set(range(86, 136))
    [message] = receiver.messages()
    assert "КНДР" in message["title"] + message["message"]
    assert h.store.feed(CHANNEL).items_seen == PAGE_SIZE + 30
    # The older page was asked for unconditionally; the first page's ETag is the feed's.
    [(_, older)] = [r for r in feed_server.requests if "?before=" in r[0]]
    assert older.get("If-None-Match") is None
    h.clock.advance(minutes=5)
    assert asyncio.run(h.cycle()) == {CHANNEL: "unchanged"}
    assert len(older_requests(feed_server, CHANNEL)) == 1


def test_a_burst_longer_than_the_bound_reads_at_most_max_pages(
    harness: Any, feed_server: FeedServer
) -> None:
    """Two hundred posts since the last check: five pages are read (the latest hundred
    posts stored), no sixth, and the gap is logged."""
    serve_channel(feed_server, CHANNEL, 20)
    h = harness(CHANNEL)
    asyncio.run(h.cycle())
    serve_channel(feed_server, CHANNEL, 220)
    h.clock.advance(minutes=5)
    with capture_logs() as logs:
        assert asyncio.run(h.cycle()) == {CHANNEL: "ok"}
    [paged] = [e for e in logs if e["event"] == "feed.paged"]
    assert (paged["log_level"], paged["complete"], paged["pages"]) == ("warning", False, 5)

    asked = older_requests(feed_server, CHANNEL)
    assert len(asked) == MAX_PAGES - 1
    assert asked == [f"/s/{CHANNEL}?before={n}" for n in (201, 181, 161, 141)]
    stored = numbers(h.store, CHANNEL)
    assert stored == set(range(1, 21)) | set(range(221 - MAX_PAGES * PAGE_SIZE, 221))


def test_a_passing_fault_on_an_older_page_fails_the_check_and_loses_nothing(
    harness: Any, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """A 503 on the older page fails the whole check (nothing recorded, backed off); the
    next check reads both pages, and the milestone on the older one alerts."""
    serve_channel(feed_server, CHANNEL, 105)
    h = harness(CHANNEL)
    asyncio.run(h.cycle())
    serve_channel(feed_server, CHANNEL, 135, p110=UNVEILING)
    older = f"/s/{CHANNEL}?before=116"
    body = feed_server.routes[older].body
    feed_server.serve(older, "busy", status=503, content_type="text/plain")
    h.clock.advance(minutes=5)
    assert asyncio.run(h.cycle()) == {CHANNEL: "failed"}
    assert numbers(h.store, CHANNEL) == set(range(86, 106))
    assert h.store.feed(CHANNEL).last_error == "HTTP 503"

    feed_server.serve(older, body, content_type=HTML)
    h.clock.advance(hours=1)
    assert asyncio.run(h.cycle()) == {CHANNEL: "ok"}
    assert numbers(h.store, CHANNEL) == set(range(86, 136))
    assert len(receiver.messages()) == 1


@pytest.mark.parametrize(
    ("body", "options"),
    [
        pytest.param(None, {}, id="missing"),
        pytest.param("<html><body><form>Log in</form></body></html>", {}, id="no-preview"),
        pytest.param("<p>" + "x" * 300_000, {}, id="over-the-size-cap"),
        pytest.param("gone", {"status": 410}, id="gone"),
    ],
)
def test_an_older_page_refused_for_good_keeps_what_was_read(
    harness: Any, feed_server: FeedServer, body: str | None, options: dict[str, Any]
) -> None:
    """An older page a mirror does not serve (404, 410), one that is no preview, or one
    over the size cap: the first page's posts are stored all the same, the channel is
    no failure (and not gone), and the stop is logged."""
    serve_channel(feed_server, CHANNEL, 105)
    h = harness(CHANNEL, max_bytes="200KB")
    asyncio.run(h.cycle())
    serve_channel(feed_server, CHANNEL, 135)
    older = f"/s/{CHANNEL}?before=116"
    if body is None:
        del feed_server.routes[older]
    else:
        feed_server.serve(older, body, content_type=HTML, **options)
    h.clock.advance(minutes=5)
    with capture_logs() as logs:
        assert asyncio.run(h.cycle()) == {CHANNEL: "ok"}
    assert numbers(h.store, CHANNEL) == set(range(86, 106)) | set(range(116, 136))
    assert not h.store.feed(CHANNEL).gone
    [paged] = [e for e in logs if e["event"] == "feed.paged"]
    assert (paged["log_level"], paged["complete"], paged["pages"]) == ("warning", False, 1)
    assert paged["error"]


def test_older_pages_keep_to_the_per_host_limit(harness: Any, feed_server: FeedServer) -> None:
    """With `per_host: 1`, two channels on one host paging back at once never have two
    requests in flight at that host."""
    in_flight = peak = 0
    lock = threading.Lock()

    def counting(body: bytes) -> Any:
        def handle(request: BaseHTTPRequestHandler) -> None:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.05)  # long enough for a second request to overlap, were it sent
            with lock:
                in_flight -= 1
            request.send_response(200)
            request.send_header("Content-Type", HTML)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

        return handle

    channels = ("channel_one", "channel_two")
    for channel in channels:
        serve_channel(feed_server, channel, 20)
    h = harness(*channels, per_host=1)
    asyncio.run(h.cycle())
    for channel in channels:
        for path, body in pages(channel, 80, {}).items():
            feed_server.serve(path, b"", handler=counting(body.encode()))
    h.clock.advance(minutes=5)
    assert asyncio.run(h.cycle()) == dict.fromkeys(channels, "ok")
    assert [len(older_requests(feed_server, c)) for c in channels] == [3, 3]
    assert peak == 1
    assert all(numbers(h.store, c) == set(range(1, 81)) for c in channels)


def test_a_server_that_ignores_before_is_read_once(harness: Any, feed_server: FeedServer) -> None:
    """A mirror answering `?before=` with its latest page again: one older request, its
    repeated posts read once, no loop, and the check is still ok."""
    serve_channel(feed_server, CHANNEL, 20)
    h = harness(CHANNEL)
    asyncio.run(h.cycle())
    serve_channel(feed_server, CHANNEL, 60)
    latest = feed_server.routes[f"/s/{CHANNEL}"].body
    feed_server.serve(f"/s/{CHANNEL}?before=41", latest, content_type=HTML)
    h.clock.advance(minutes=5)
    assert asyncio.run(h.cycle()) == {CHANNEL: "ok"}
    assert older_requests(feed_server, CHANNEL) == [f"/s/{CHANNEL}?before=41"]
    assert numbers(h.store, CHANNEL) == set(range(1, 21)) | set(range(41, 61))


@pytest.mark.parametrize(
    ("page", "before", "older"),
    [
        pytest.param("https://t.me/s/chan", 116, "https://t.me/s/chan?before=116", id="t.me"),
        pytest.param(
            "http://127.0.0.1:8080/s/chan?before=99",
            42,
            "http://127.0.0.1:8080/s/chan?before=42",
            id="replaces-before",
        ),
        pytest.param(
            "https://mirror.example/tg?c=chan&x=1#top",
            7,
            "https://mirror.example/tg?c=chan&x=1&before=7",
            id="mirror-keeps-its-query",
        ),
    ],
)
def test_older_page_addresses(page: str, before: int, older: str) -> None:
    """An older page is the first page's address with `before=ID`, on the same server."""
    assert older_page(page, before) == older
