"""The fetch stage against real servers on loopback: statuses, redirects, validators,
and hostile bodies (compression, bombs, drips, oversized answers), and its limits."""

from __future__ import annotations

import asyncio
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from monitor.config.settings import PROJECT_URL, FetchSettings
from monitor.core.errors import (
    FeedError,
    FeedGone,
    PermanentFeedError,
    RateLimited,
    TransientFeedError,
)
from monitor.ingest.fetch import (
    RETRY_AFTER_MAX,
    Fetcher,
    FetchResult,
    Validators,
    parse_retry_after,
)
from tests.support import hostile
from tests.support.feeds import FILLER, rss
from tests.support.servers import FeedServer, free_port

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CAP = 1024 * 1024
FEED = rss(FILLER).encode()


def fetch(url: str, validators: Validators | None = None, **overrides: Any) -> FetchResult:
    values: dict[str, Any] = {"timeout": timedelta(seconds=5), "max_bytes": CAP, **overrides}

    async def go() -> FetchResult:
        async with Fetcher(FetchSettings(**values), clock=lambda: NOW) as fetcher:
            return await fetcher.fetch(url, validators or Validators())

    return asyncio.run(go())


def fetch_error(url: str, **overrides: Any) -> FeedError:
    """The error of fetching `url`, or of decoding what it sent (the read stage's first step)."""
    with pytest.raises(FeedError) as caught:
        fetch(url, **overrides).payload.decode()
    return caught.value


# -- statuses -------------------------------------------------------------------


def test_ok_carries_validators_and_body(feed_server: FeedServer) -> None:
    """A 200 returns the body, its ETag, Last-Modified and content type."""
    url = feed_server.serve("/f", FEED, headers={"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"})
    result = fetch(url)
    assert (result.status, result.body, result.not_modified) == (200, FEED, False)
    assert result.etag
    assert result.etag.startswith('"')
    assert result.last_modified == "Wed, 01 Jan 2025 00:00:00 GMT"
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.moved_to is None


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        pytest.param(500, {}, TransientFeedError, None, id="500-transient"),
        pytest.param(502, {}, TransientFeedError, None, id="502-transient"),
        pytest.param(404, {}, PermanentFeedError, None, id="404-permanent"),
        pytest.param(403, {}, PermanentFeedError, None, id="403-permanent"),
        pytest.param(410, {}, FeedGone, None, id="410-gone"),
        pytest.param(429, {"Retry-After": "120"}, RateLimited, 120, id="429-seconds"),
        pytest.param(
            503, {"Retry-After": "Fri, 27 Nov 2026 12:05:00 GMT"}, RateLimited, 300, id="503-date"
        ),
        pytest.param(429, {}, RateLimited, None, id="429-without-retry-after"),
        pytest.param(
            429,
            {"Retry-After": "99999999999999999999"},
            RateLimited,
            RETRY_AFTER_MAX.total_seconds(),
            id="429-absurd-retry-after-capped",
        ),
    ],
)
def test_status_errors(
    feed_server: FeedServer,
    status: int,
    headers: dict[str, str],
    kind: type[FeedError],
    retry_after: float | None,
) -> None:
    """Each error status raises its kind of FeedError, with the server's Retry-After."""
    url = feed_server.serve("/f", b"nope", status=status, headers=headers)
    error = fetch_error(url)
    assert type(error) is kind
    assert error.status == status
    assert str(status) in str(error)
    if isinstance(error, RateLimited):
        waited = error.retry_after.total_seconds() if error.retry_after else None
        assert waited == retry_after


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("30", timedelta(seconds=30), id="seconds"),
        pytest.param(" 30 ", timedelta(seconds=30), id="padded"),
        pytest.param("Fri, 27 Nov 2026 12:01:00 GMT", timedelta(minutes=1), id="http-date"),
        pytest.param("Fri, 27 Nov 2026 11:00:00 GMT", timedelta(0), id="date-in-the-past"),
        pytest.param("Sat, 27 Nov 2027 12:00:00 GMT", RETRY_AFTER_MAX, id="date-far-ahead"),
        pytest.param("99999999999999999999", RETRY_AFTER_MAX, id="absurd-seconds"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("-5", None, id="negative"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    """Retry-After is seconds or an HTTP date, never negative nor beyond a day; else None."""
    assert parse_retry_after(value, NOW) == expected


# -- redirects ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hops", "moved"),
    [
        pytest.param([301], True, id="301-moves"),
        pytest.param([308], True, id="308-moves"),
        pytest.param([301, 308], True, id="permanent-chain-moves"),
        pytest.param([302], False, id="302-temporary"),
        pytest.param([307], False, id="307-temporary"),
        pytest.param([301, 307], False, id="mixed-chain-not-permanent"),
    ],
)
def test_redirects(feed_server: FeedServer, hops: list[int], moved: bool) -> None:
    """Redirects are followed; `moved_to` is set only when every hop was permanent."""
    final = feed_server.serve("/final", FEED)
    for i, status in enumerate(hops):
        target = "/final" if i == len(hops) - 1 else f"/hop{i + 1}"
        feed_server.serve(f"/hop{i}", b"", handler=hostile.redirect(target, status))
    result = fetch(feed_server.url("/hop0"))
    assert result.body == FEED
    assert result.url == final
    assert result.moved_to == (final if moved else None)


def test_redirect_to_an_absolute_url_on_another_host(feed_server: FeedServer) -> None:
    """An absolute Location on another host is followed and becomes the new address."""
    moved = feed_server.serve("/feed", FEED).replace("127.0.0.1", "localhost")
    feed_server.serve("/old", b"", handler=hostile.redirect(moved, 308))
    result = fetch(feed_server.url("/old"))
    assert (result.body, result.moved_to) == (FEED, moved)


def test_redirect_loop_is_an_error(feed_server: FeedServer) -> None:
    """A redirect loop stops at the redirect limit with a permanent error."""
    feed_server.serve("/a", b"", handler=hostile.redirect("/b", 302))
    feed_server.serve("/b", b"", handler=hostile.redirect("/a", 302))
    error = fetch_error(feed_server.url("/a"), max_redirects=3)
    assert isinstance(error, PermanentFeedError)
    assert "redirects" in str(error)
    assert feed_server.hits("/a") + feed_server.hits("/b") == 4


# -- conditional GET and headers ------------------------------------------------


def test_conditional_get_and_identifying_headers(feed_server: FeedServer) -> None:
    """The second fetch sends the validators back and gets a 304; the UA names the project."""
    url = feed_server.serve("/f", FEED)
    first = fetch(url)
    assert first.status == 200
    assert first.body == FEED
    assert first.etag
    second = fetch(url, Validators(first.etag, first.last_modified))
    assert second.not_modified
    assert second.body == b""
    _, headers = feed_server.requests[-1]
    assert headers["If-None-Match"] == first.etag
    assert PROJECT_URL in headers["User-Agent"]
    assert headers["User-Agent"].startswith("monitor/")
    assert headers["Accept-Encoding"] == "gzip, deflate"


def test_unsendable_validator_is_dropped(feed_server: FeedServer) -> None:
    """A stored ETag that cannot go back in a header is left out, not fatal."""
    url = feed_server.serve("/f", FEED)
    result = fetch(url, Validators(etag='"ét€"', last_modified="Thu, 01 Jan 2026 00:00:00 GMT"))
    assert result.body == FEED
    _, headers = feed_server.requests[-1]
    assert "If-None-Match" not in headers
    assert headers["If-Modified-Since"] == "Thu, 01 Jan 2026 00:00:00 GMT"


def test_redirect_to_other_scheme_is_an_error(feed_server: FeedServer) -> None:
    """A redirect to a non-HTTP scheme is refused, not followed."""
    feed_server.serve("/a", b"", handler=hostile.redirect("file:///etc/passwd"))
    assert isinstance(fetch_error(feed_server.url("/a")), FeedError)


# -- bodies ---------------------------------------------------------------------


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        pytest.param("gzip", hostile.gzip_body(FEED), id="gzip"),
        pytest.param("x-gzip", hostile.gzip_body(FEED), id="x-gzip"),
        pytest.param(
            "gzip",
            hostile.gzip_body(FEED[:100]) + hostile.gzip_body(FEED[100:]),
            id="gzip-two-members",
        ),
        pytest.param("gzip", hostile.gzip_body(FEED) + b"\0\0junk", id="gzip-trailing-junk"),
        pytest.param("deflate", zlib.compress(FEED), id="deflate-zlib"),
        pytest.param("deflate", _raw_deflate(FEED), id="deflate-raw"),
        pytest.param("identity", FEED, id="identity"),
    ],
)
def test_compressed_bodies(feed_server: FeedServer, encoding: str, body: bytes) -> None:
    """Compressed bodies come back decoded."""
    url = feed_server.serve("/f", b"", handler=hostile.encoded(body, encoding))
    assert fetch(url).body == FEED


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        pytest.param("br", b"\x0b\x02\x80hello\x03", "unsupported", id="brotli-not-offered"),
        pytest.param("gzip, gzip", hostile.gzip_body(FEED), "unsupported", id="double-gzip"),
        pytest.param("gzip", b"\x1f\x8b\x08\x00garbage" * 10, "cannot decode", id="corrupt"),
    ],
)
def test_undecodable_bodies(
    feed_server: FeedServer, encoding: str, body: bytes, message: str
) -> None:
    """A body in an encoding we did not offer, or corrupt, is a recorded error."""
    url = feed_server.serve("/f", b"", handler=hostile.encoded(body, encoding))
    error = fetch_error(url)
    assert isinstance(error, PermanentFeedError)
    assert message in str(error)


@pytest.mark.parametrize(
    "declare", [pytest.param(True, id="declared"), pytest.param(False, id="undeclared")]
)
def test_oversized_body_is_cut_off(feed_server: FeedServer, declare: bool) -> None:
    """A 50 MB body stops at the cap, whether or not its length was declared."""
    url = feed_server.serve("/big", b"", handler=hostile.endless(declare=declare))
    error = fetch_error(url)
    assert isinstance(error, PermanentFeedError)
    assert "cap" in str(error)


def test_gzip_bomb_is_stopped_within_the_cap() -> None:
    """A gzip bomb raises at the cap, and never holds much more than the cap in memory."""
    bomb = hostile.gzip_bomb()
    server = FeedServer().start()
    try:
        url = server.serve("/bomb", b"", handler=hostile.encoded(bomb, "gzip"))
        tracemalloc.start()
        try:
            error = fetch_error(url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        server.stop()
    assert isinstance(error, PermanentFeedError)
    assert "cap" in str(error)
    assert peak < 8 * CAP, f"peak {peak} bytes while inflating a bomb against a {CAP}-byte cap"


def test_dripping_server_hits_the_deadline(feed_server: FeedServer) -> None:
    """A server sending a byte every half second is cut off by the whole-request deadline."""
    url = feed_server.serve("/drip", b"", handler=hostile.drip(every=0.5))
    error = fetch_error(url, timeout=timedelta(seconds=1.5))
    assert isinstance(error, TransientFeedError)
    assert "timed out" in str(error)


def test_connection_refused_is_transient() -> None:
    """Nothing listening is a transient error, reported as what it is, not as a timeout."""
    error = fetch_error(f"http://127.0.0.1:{free_port()}/feed.xml")
    assert isinstance(error, TransientFeedError)
    assert "cannot connect" in str(error)
    assert "timed out" not in str(error)


# -- concurrency ----------------------------------------------------------------


class _Gauge:
    """Counts requests in flight at once on a server that answers slowly."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def handler(self) -> Callable[[BaseHTTPRequestHandler], None]:
        def handle(request: BaseHTTPRequestHandler) -> None:
            with self._lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            time.sleep(0.15)
            with self._lock:
                self.now -= 1
            hostile.encoded(FEED, "identity")(request)

        return handle


@pytest.mark.parametrize(
    ("concurrency", "per_host", "expected"),
    [
        pytest.param(16, 2, 2, id="per-host-limit"),
        pytest.param(3, 16, 3, id="global-limit"),
    ],
)
def test_concurrency_limits(
    feed_server: FeedServer, concurrency: int, per_host: int, expected: int
) -> None:
    """No more requests are in flight at once than the global and per-host limits allow."""
    gauge = _Gauge()
    urls = [feed_server.serve(f"/f{i}", b"", handler=gauge.handler()) for i in range(8)]

    async def go() -> list[FetchResult]:
        options = FetchSettings(concurrency=concurrency, per_host=per_host)
        async with Fetcher(options) as fetcher:
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    results = asyncio.run(go())
    assert [r.body for r in results] == [FEED] * 8
    assert gauge.peak == expected


def test_a_slow_host_does_not_hold_up_other_hosts(feed_server: FeedServer) -> None:
    """Feeds queued behind one slow host leave the global slots to feeds on other hosts."""
    gauge = _Gauge()
    slow = [feed_server.serve(f"/slow{i}", b"", handler=gauge.handler()) for i in range(8)]
    # Same server, another host name: its own per-host limit.
    fast = feed_server.serve("/fast", FEED).replace("127.0.0.1", "localhost")
    finished: list[str] = []

    async def go() -> None:
        async with Fetcher(FetchSettings(concurrency=4, per_host=2)) as fetcher:

            async def one(url: str) -> None:
                await fetcher.fetch(url)
                finished.append(url)

            await asyncio.gather(*(one(u) for u in [*slow, fast]))

    asyncio.run(go())
    assert finished[0] == fast
    assert gauge.peak == 2


# -- the transport seam ------------------------------------------------------------


def test_transport_is_a_seam() -> None:
    """The Fetcher takes any httpx transport: MockTransport sees exactly what is sent."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/old":
            return httpx.Response(308, headers={"Location": "/new"})
        return httpx.Response(429, headers={"Retry-After": "90"})

    async def go() -> None:
        settings = FetchSettings(timeout=timedelta(seconds=5))
        transport = httpx.MockTransport(handler)
        async with Fetcher(settings, transport=transport, clock=lambda: NOW) as fetcher:
            await fetcher.fetch("https://feeds.example/old", Validators('"v1"'))

    with pytest.raises(RateLimited) as caught:
        asyncio.run(go())
    assert caught.value.retry_after == timedelta(seconds=90)
    assert [str(r.url) for r in seen] == ["https://feeds.example/old", "https://feeds.example/new"]
    assert all(r.headers["If-None-Match"] == '"v1"' for r in seen)
    assert seen[0].headers["Accept-Encoding"] == "gzip, deflate"
