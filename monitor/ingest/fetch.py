"""The fetch stage: one HTTP GET per feed, the only HTTP in the service.

Conditional GET (ETag, Last-Modified), a streamed body with a size cap counted after
decompression (so gzip bombs stop at the cap), redirects followed by hand so a
permanent move can be recorded, and one deadline over the whole request so a server
that drips a byte at a time cannot hold a feed job for ever.

Expected outcomes are values (`FetchResult`, with `not_modified` for a 304); failures
raise `FeedError` subclasses that tell transient from permanent.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from monitor.config.settings import FetchSettings
from monitor.core.clock import Clock, utcnow
from monitor.core.errors import (
    FeedError,
    FeedGone,
    PermanentFeedError,
    RateLimited,
    TransientFeedError,
)
from monitor.ingest.payload import Payload, content_encoding

_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT_REDIRECTS = {301, 308}
RETRY_AFTER_MAX = timedelta(days=1)
"""The longest wait a `Retry-After` may impose: a feed is never disabled for good."""
_CHUNK = 64 * 1024
_ACCEPT_ENCODING = "gzip, deflate"
"""Only what `Payload.decode` inflates with a bounded output; anything else is refused."""


@dataclass(frozen=True, slots=True)
class Validators:
    """What the previous successful fetch told us, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


NO_BODY = Payload()
"""The payload of a 304."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A completed fetch: a payload to read, or `not_modified` for a 304."""

    url: str
    status: int
    payload: Payload = NO_BODY
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    moved_to: str | None = None
    """The new address when every redirect on the way was permanent (301/308)."""

    @property
    def body(self) -> bytes:
        """The decoded body (see `Payload.decode`)."""
        return self.payload.decode()

    @property
    def content_hash(self) -> str:
        """A digest of the body as sent: the same bytes again need no reading."""
        return hashlib.blake2b(self.payload.data, digest_size=16).hexdigest()


class Fetcher:
    """Fetches feeds concurrently, within a global and a per-host limit.

    The client is httpx, so the transport is a seam: tests hand in
    `httpx.MockTransport`, and the service uses httpx-aiohttp's transport, whose C HTTP
    parser costs a quarter of the CPU of httpx's own for a cycle of hundreds of small
    answers and 304s. The client is made on first use and closed by `aclose` (or
    `async with`).
    """

    def __init__(
        self,
        settings: FetchSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._transport = transport
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            settings = self.settings
            self._http = httpx.AsyncClient(
                transport=self._transport or aiohttp_transport(settings),
                follow_redirects=False,
                timeout=httpx.Timeout(
                    settings.timeout.total_seconds(),
                    connect=settings.connect_timeout.total_seconds(),
                ),
                # One feed's cookies are no business of another's.
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
                headers={
                    "User-Agent": settings.user_agent,
                    "Accept-Encoding": _ACCEPT_ENCODING,
                    "Accept": (
                        "application/rss+xml, application/atom+xml, application/feed+json, "
                        "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
                    ),
                },
            )
        return self._http

    async def fetch(self, url: str, validators: Validators = Validators()) -> FetchResult:
        """GET `url` conditionally; raise a `FeedError` subclass on failure."""
        host = urlsplit(url).hostname or ""
        per_host = self._hosts.setdefault(host, asyncio.Semaphore(self.settings.per_host))
        deadline = self.settings.timeout.total_seconds()
        # The host's slot first: feeds queued behind a slow host must not hold global
        # slots that feeds on other hosts could use.
        async with per_host, self._global:
            try:
                async with asyncio.timeout(deadline):
                    return await self._follow(url, validators)
            except TimeoutError:
                raise TransientFeedError(f"timed out after {deadline:g}s") from None
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise PermanentFeedError(f"invalid URL: {exc}") from None
            except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
                raise TransientFeedError(_describe(exc)) from None

    async def _follow(self, url: str, validators: Validators) -> FetchResult:
        headers = {}
        # A validator is echoed back verbatim; one a server sent in non-ASCII bytes
        # cannot be, and is dropped rather than failing every later fetch.
        if validators.etag and validators.etag.isascii():
            headers["If-None-Match"] = validators.etag
        if validators.last_modified and validators.last_modified.isascii():
            headers["If-Modified-Since"] = validators.last_modified
        client = self._client()
        current = url
        permanent = True
        for _ in range(self.settings.max_redirects + 1):
            request = client.build_request("GET", current, headers=headers)
            response = await client.send(request, stream=True)
            try:
                location = response.headers.get("Location")
                if response.status_code in _REDIRECTS and location:
                    permanent = permanent and response.status_code in _PERMANENT_REDIRECTS
                    current = str(response.url.join(location))
                    continue
                moved_to = current if permanent and current != url else None
                return await self._complete(response, current, moved_to)
            finally:
                await response.aclose()
        raise PermanentFeedError(f"more than {self.settings.max_redirects} redirects")

    async def _complete(
        self, response: httpx.Response, url: str, moved_to: str | None
    ) -> FetchResult:
        status = response.status_code
        if status >= 400:
            raise self._status_error(status, response.headers.get("Retry-After"))
        if status not in (200, 304):
            raise TransientFeedError(f"unexpected HTTP {status}", status)
        not_modified = status == 304
        return FetchResult(
            url=url,
            status=status,
            payload=NO_BODY if not_modified else await self._read_capped(response),
            not_modified=not_modified,
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            content_type=None if not_modified else response.headers.get("Content-Type"),
            moved_to=moved_to,
        )

    async def _read_capped(self, response: httpx.Response) -> Payload:
        cap = int(self.settings.max_bytes)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise PermanentFeedError(f"body of {int(declared)} bytes exceeds the {cap}-byte cap")
        encoding = content_encoding(response.headers.get("Content-Encoding", ""))
        # The bytes as sent, under the cap; what they expand to is bounded by `decode`,
        # a step at a time, so a gzip bomb never holds more than the cap in memory.
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw(_CHUNK):
            size += len(raw)
            if size > cap:
                raise PermanentFeedError(f"body exceeds the {cap}-byte cap")
            chunks.append(raw)
        return Payload(b"".join(chunks), encoding, cap)

    def _status_error(self, status: int, retry_after: str | None) -> FeedError:
        if status == 410:
            return FeedGone("HTTP 410 Gone: the feed was removed", status)
        if status in (429, 503):
            delay = parse_retry_after(retry_after, self.clock())
            hint = f", retry after {delay}" if delay else ""
            return RateLimited(f"HTTP {status}{hint}", status, delay)
        if status >= 500 or status in (408, 425):
            return TransientFeedError(f"HTTP {status}", status)
        return PermanentFeedError(f"HTTP {status}", status)


def aiohttp_transport(settings: FetchSettings) -> httpx.AsyncBaseTransport:
    """httpx over aiohttp, with the fetch limits; the session is made inside the loop."""

    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            # The limits are the semaphores in `fetch`; the pool only keeps connections.
            connector=aiohttp.TCPConnector(limit=settings.concurrency, limit_per_host=0),
            # Bodies are inflated by `_Inflater`, under the size cap.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    return AiohttpTransport(client=session)


def _describe(exc: BaseException) -> str:
    """What went wrong, in the words of the library that saw it first.

    The aiohttp transport re-raises aiohttp's errors as httpx ones, not always aptly
    (a failed DNS lookup or a dropped connection as `ConnectTimeout`); the original
    says what really happened, and only a real timeout is called one.
    """
    original = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    text = str(original)
    if isinstance(original, aiohttp.ClientConnectorError):
        text = f"cannot connect: {original.os_error}"
    described = f"{type(original).__name__}: {text}" if text else type(original).__name__
    if isinstance(original, httpx.TimeoutException | aiohttp.ServerTimeoutError):
        return f"timed out ({described})"
    return described


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date → a non-negative delay, else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = int(value)
        if seconds > RETRY_AFTER_MAX.total_seconds():
            return RETRY_AFTER_MAX
        return timedelta(seconds=seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when - now, timedelta(0)), RETRY_AFTER_MAX)
