"""The fetch stage against httpx.MockTransport: statuses, redirects, caps, validators."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from monitor.config import FetchSettings
from monitor.errors import (
    FeedGone,
    PermanentFeedError,
    RateLimited,
    TransientFeedError,
)
from monitor.fetch import Fetcher, FetchResult, Validators, parse_retry_after

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
        ("30", timedelta(seconds=30)),
        ("Fri, 27 Nov 2026 12:01:00 GMT", timedelta(minutes=1)),
        ("Fri, 27 Nov 2026 11:00:00 GMT", timedelta(0)),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    """Retry-After is read as seconds or as an HTTP date; nonsense is ignored."""
    assert parse_retry_after(value, NOW) == expected
