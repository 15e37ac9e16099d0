"""The fetch stage: statuses, redirects, caps and validators (MockTransport), then hostile
servers on loopback (compression, bombs, drips, oversized bodies, concurrency limits)."""

from __future__ import annotations

import asyncio
import gzip
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

from monitor.config import PROJECT_URL, FetchSettings
from monitor.errors import (
    FeedError,
    FeedGone,
    PermanentFeedError,
    RateLimited,
    TransientFeedError,
)
from monitor.fetch import RETRY_AFTER_MAX, Fetcher, FetchResult, Validators, parse_retry_after
from tests.support import hostile
from tests.support.feeds import FILLER, rss
from tests.support.servers import FeedServer, free_port

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FEED = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


def fetch(
    handler: httpx.MockTransport | object,
    url: str = "https://feeds.example/rss",
    validators: Validators | None = None,
    **settings: object,
) -> FetchResult:
    transport = (
        handler if isinstance(handler, httpx.MockTransport) else httpx.MockTransport(handler)
    )  # type: ignore[arg-type]

    async def go() -> FetchResult:
        async with Fetcher(FetchSettings(**settings), transport=transport, clock=lambda: NOW) as f:  # type: ignore[arg-type]
            return await f.fetch(url, validators or Validators())

    return asyncio.run(go())


def test_ok_carries_validators_and_body() -> None:
    """A 200 returns the body, its ETag and Last-Modified, and the User-Agent names us."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            content=FEED,
            headers={"ETag": '"v1"', "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"},
        )

    result = fetch(handler)
    assert result.body == FEED
    assert result.etag == '"v1"'
    assert result.last_modified == "Wed, 01 Jan 2025 00:00:00 GMT"
    assert "monitor/" in seen[0].headers["user-agent"]
    assert "+http" in seen[0].headers["user-agent"]


def test_conditional_get_and_304() -> None:
    """Stored validators are sent; a 304 is a value, not an error."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["if-none-match"] == '"v1"'
        assert request.headers["if-modified-since"] == "Wed, 01 Jan 2025 00:00:00 GMT"
        return httpx.Response(304)

    result = fetch(handler, validators=Validators('"v1"', "Wed, 01 Jan 2025 00:00:00 GMT"))
    assert result.not_modified
    assert result.body == b""


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        pytest.param(410, {}, FeedGone, None, id="410-gone"),
        pytest.param(404, {}, PermanentFeedError, None, id="404"),
        pytest.param(403, {}, PermanentFeedError, None, id="403"),
        pytest.param(500, {}, TransientFeedError, None, id="500"),
        pytest.param(502, {}, TransientFeedError, None, id="502"),
        pytest.param(
            429, {"Retry-After": "120"}, RateLimited, timedelta(seconds=120), id="429-seconds"
        ),
        pytest.param(
            503,
            {"Retry-After": "Fri, 27 Nov 2026 12:05:00 GMT"},
            RateLimited,
            timedelta(minutes=5),
            id="503-date",
        ),
        pytest.param(429, {}, RateLimited, None, id="429-no-header"),
    ],
)
def test_status_codes(
    status: int, headers: dict[str, str], error: type[Exception], retry_after: timedelta | None
) -> None:
    """Each error status maps to its kind of failure, with Retry-After when given."""
    with pytest.raises(error) as caught:
        fetch(lambda request: httpx.Response(status, headers=headers))
    assert getattr(caught.value, "status", None) == status
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == retry_after
    if error is PermanentFeedError:
        assert not isinstance(caught.value, FeedGone)


def _redirects(chain: dict[str, tuple[int, str]]):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        hop = chain.get(request.url.path)
        if hop is None:
            return httpx.Response(200, content=FEED)
        return httpx.Response(hop[0], headers={"Location": hop[1]})

    return handler


@pytest.mark.parametrize(
    ("chain", "moved_to"),
    [
        pytest.param({"/rss": (301, "/new")}, "https://feeds.example/new", id="301"),
        pytest.param(
            {"/rss": (308, "https://other.example/feed")},
            "https://other.example/feed",
            id="308-absolute",
        ),
        pytest.param(
            {"/rss": (301, "/a"), "/a": (308, "/b")},
            "https://feeds.example/b",
            id="permanent-chain",
        ),
        pytest.param({"/rss": (302, "/tmp")}, None, id="302-temporary"),
        pytest.param(
            {"/rss": (301, "/a"), "/a": (307, "/b")}, None, id="mixed-chain-not-permanent"
        ),
    ],
)
def test_redirects(chain: dict[str, tuple[int, str]], moved_to: str | None) -> None:
    """Redirects are followed; only an all-permanent chain moves the feed."""
    result = fetch(_redirects(chain))
    assert result.body == FEED
    assert result.moved_to == moved_to


def test_redirect_loop_is_an_error() -> None:
    """A redirect loop ends after max_redirects with a permanent error."""
    with pytest.raises(PermanentFeedError, match="redirects"):
        fetch(_redirects({"/rss": (302, "/a"), "/a": (302, "/rss")}), max_redirects=3)


@pytest.mark.parametrize(
    ("declared", "size"),
    [pytest.param(True, 2048, id="declared-length"), pytest.param(False, 2048, id="streamed")],
)
def test_size_cap(declared: bool, size: int) -> None:
    """A body over max_bytes is refused, whether or not Content-Length announces it."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = b"x" * size
        if declared:
            return httpx.Response(200, content=body)

        async def stream():  # type: ignore[no-untyped-def]
            for start in range(0, size, 256):
                yield body[start : start + 256]

        return httpx.Response(200, content=stream())

    with pytest.raises(PermanentFeedError, match="cap"):
        fetch(handler, max_bytes=1024)


def test_gzip_bomb_stops_at_the_cap() -> None:
    """The cap counts decompressed bytes, so a small gzip body cannot expand past it."""
    bomb = gzip.compress(b"\0" * (5 * 1024 * 1024))
    assert len(bomb) < 10_000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})

    with pytest.raises(PermanentFeedError, match="cap"):
        fetch(handler, max_bytes=1024 * 1024)


def test_connection_errors_are_transient() -> None:
    """A refused connection is a transient failure, with the cause in the message."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(TransientFeedError, match="ConnectError"):
        fetch(handler)


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


# -- against loopback servers -------------------------------------------------------

CAP = 1024 * 1024
LOOPBACK_FEED = rss(FILLER).encode()


def loopback_fetch(url: str, validators: Validators | None = None, **overrides: Any) -> FetchResult:
    values: dict[str, Any] = {"timeout": timedelta(seconds=5), "max_bytes": CAP, **overrides}

    async def go() -> FetchResult:
        async with Fetcher(FetchSettings(**values), clock=lambda: NOW) as fetcher:
            return await fetcher.fetch(url, validators or Validators())

    return asyncio.run(go())


def fetch_error(url: str, **overrides: Any) -> FeedError:
    with pytest.raises(FeedError) as caught:
        loopback_fetch(url, **overrides)
    return caught.value


# -- conditional GET and headers ------------------------------------------------


def test_conditional_get_and_identifying_headers(feed_server: FeedServer) -> None:
    """The second fetch sends the validators back and gets a 304; the UA names the project."""
    url = feed_server.serve("/f", LOOPBACK_FEED)
    first = loopback_fetch(url)
    assert first.status == 200
    assert first.body == LOOPBACK_FEED
    assert first.etag
    second = loopback_fetch(url, Validators(first.etag, first.last_modified))
    assert second.not_modified
    assert second.body == b""
    _, headers = feed_server.requests[-1]
    assert headers["If-None-Match"] == first.etag
    assert PROJECT_URL in headers["User-Agent"]
    assert headers["User-Agent"].startswith("monitor/")
    assert headers["Accept-Encoding"] == "gzip, deflate"


def test_unsendable_validator_is_dropped(feed_server: FeedServer) -> None:
    """A stored ETag that cannot go back in a header is left out, not fatal."""
    url = feed_server.serve("/f", LOOPBACK_FEED)
    result = loopback_fetch(
        url, Validators(etag='"ét€"', last_modified="Thu, 01 Jan 2026 00:00:00 GMT")
    )
    assert result.body == LOOPBACK_FEED
    _, headers = feed_server.requests[-1]
    assert "If-None-Match" not in headers
    assert headers["If-Modified-Since"] == "Thu, 01 Jan 2026 00:00:00 GMT"


# -- redirects ------------------------------------------------------------------


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
        pytest.param("gzip", hostile.gzip_body(LOOPBACK_FEED), id="gzip"),
        pytest.param("x-gzip", hostile.gzip_body(LOOPBACK_FEED), id="x-gzip"),
        pytest.param(
            "gzip",
            hostile.gzip_body(LOOPBACK_FEED[:100]) + hostile.gzip_body(LOOPBACK_FEED[100:]),
            id="gzip-two-members",
        ),
        pytest.param(
            "gzip", hostile.gzip_body(LOOPBACK_FEED) + b"\0\0junk", id="gzip-trailing-junk"
        ),
        pytest.param("deflate", zlib.compress(LOOPBACK_FEED), id="deflate-zlib"),
        pytest.param("deflate", _raw_deflate(LOOPBACK_FEED), id="deflate-raw"),
        pytest.param("identity", LOOPBACK_FEED, id="identity"),
    ],
)
def test_compressed_bodies(feed_server: FeedServer, encoding: str, body: bytes) -> None:
    """Compressed bodies come back decoded."""
    url = feed_server.serve("/f", b"", handler=hostile.encoded(body, encoding))
    assert loopback_fetch(url).body == LOOPBACK_FEED


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        pytest.param("br", b"\x0b\x02\x80hello\x03", "unsupported", id="brotli-not-offered"),
        pytest.param(
            "gzip, gzip", hostile.gzip_body(LOOPBACK_FEED), "unsupported", id="double-gzip"
        ),
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
    """Nothing listening is a transient error."""
    error = fetch_error(f"http://127.0.0.1:{free_port()}/feed.xml")
    assert isinstance(error, TransientFeedError)


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
            hostile.encoded(LOOPBACK_FEED, "identity")(request)

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
    assert [r.body for r in results] == [LOOPBACK_FEED] * 8
    assert gauge.peak == expected
