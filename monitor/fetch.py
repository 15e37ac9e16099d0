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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from monitor.config import FetchSettings
from monitor.errors import (
    FeedError,
    FeedGone,
    PermanentFeedError,
    RateLimited,
    TransientFeedError,
)

Clock = Callable[[], datetime]

_REDIRECTS = {301, 302, 303, 307, 308}
_PERMANENT_REDIRECTS = {301, 308}


@dataclass(frozen=True, slots=True)
class Validators:
    """What the previous successful fetch told us, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A completed fetch: a body to parse, or `not_modified` for a 304."""

    url: str
    status: int
    body: bytes = b""
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    moved_to: str | None = None
    """The new address when every redirect on the way was permanent (301/308)."""

    @property
    def content_hash(self) -> str:
        return hashlib.blake2b(self.body, digest_size=16).hexdigest()


class Fetcher:
    """Fetches feeds concurrently, within a global and a per-host limit."""

    def __init__(
        self,
        settings: FetchSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(
                settings.timeout.total_seconds(),
                connect=settings.connect_timeout.total_seconds(),
            ),
            limits=httpx.Limits(
                max_connections=settings.concurrency,
                max_keepalive_connections=settings.concurrency,
            ),
            headers={
                "User-Agent": settings.user_agent,
                "Accept": (
                    "application/rss+xml, application/atom+xml, application/feed+json, "
                    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
                ),
            },
        )

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
        await self._client.aclose()

    async def fetch(self, url: str, validators: Validators = Validators()) -> FetchResult:
        """GET `url` conditionally; raise a `FeedError` subclass on failure."""
        host = urlsplit(url).hostname or ""
        per_host = self._hosts.setdefault(host, asyncio.Semaphore(self.settings.per_host))
        async with self._global, per_host:
            try:
                async with asyncio.timeout(self.settings.timeout.total_seconds()):
                    return await self._follow(url, validators)
            except TimeoutError:
                raise TransientFeedError(
                    f"timed out after {self.settings.timeout.total_seconds():g}s"
                ) from None
            except httpx.TimeoutException as exc:
                raise TransientFeedError(f"timed out ({type(exc).__name__})") from None
            except httpx.InvalidURL as exc:
                raise PermanentFeedError(f"invalid URL: {exc}") from None
            except (httpx.TransportError, httpx.DecodingError) as exc:
                raise TransientFeedError(f"{type(exc).__name__}: {exc}") from None

    async def _follow(self, url: str, validators: Validators) -> FetchResult:
        headers = {}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        current = url
        permanent = True
        for _ in range(self.settings.max_redirects + 1):
            request = self._client.build_request("GET", current, headers=headers)
            response = await self._client.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    permanent = permanent and response.status_code in _PERMANENT_REDIRECTS
                    current = str(response.url.join(response.headers["location"]))
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
        if status == 304:
            return FetchResult(
                url=url,
                status=status,
                not_modified=True,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                moved_to=moved_to,
            )
        if status >= 400:
            raise self._status_error(response)
        if status != 200:
            raise TransientFeedError(f"unexpected HTTP {status}", status)
        body = await self._read_capped(response)
        return FetchResult(
            url=url,
            status=status,
            body=body,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            content_type=response.headers.get("content-type"),
            moved_to=moved_to,
        )

    async def _read_capped(self, response: httpx.Response) -> bytes:
        cap = int(self.settings.max_bytes)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise PermanentFeedError(f"body of {int(declared)} bytes exceeds the {cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        # aiter_bytes yields decompressed bytes: the cap bounds what gzip expands to.
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise PermanentFeedError(f"body exceeds the {cap}-byte cap")
            chunks.append(chunk)
        return b"".join(chunks)

    def _status_error(self, response: httpx.Response) -> FeedError:
        status = response.status_code
        if status == 410:
            return FeedGone("HTTP 410 Gone: the feed was removed", status)
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"), self.clock())
            hint = f", retry after {retry_after}" if retry_after else ""
            return RateLimited(f"HTTP {status}{hint}", status, retry_after)
        if status >= 500 or status in (408, 425):
            return TransientFeedError(f"HTTP {status}", status)
        return PermanentFeedError(f"HTTP {status}", status)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date → a non-negative delay, else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))
