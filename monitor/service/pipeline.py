"""The data flow: fetch → parse → match → store for each feed, then store → notify.

Each stage is called with values; IO is handed in: the assembled application (store,
sender, clock, outbox, digests, health; `monitor.service.app`) and, for polling, a
fetcher and a reader (`polling(app)` opens both). One feed's failure is caught here,
recorded against that feed and backed off; it never reaches the scheduler or the other
feeds.

Every entry of a changed feed body is judged by the match stage before the store sees
it; the store decides what each verdict changes, by identity (README.md, "How it
works", and `monitor.ingest.identity`). "Seen" is not "judged": dedup decides what is
sent, never what is read. An entry whose headline or summary changed is a new version
whose verdict counts; only the same content again (in this feed, or the same link and
content in any) is passed over. One item the store cannot write is one item's fault:
it is left out, logged (`item.skipped`) and counted, and the rest of its feed stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from monitor.config.settings import FeedConfig
from monitor.core.backoff import retry_delay
from monitor.core.errors import FeedError, FeedGone, RateLimited, StoreError
from monitor.delivery.routing import confirming, route
from monitor.ingest.decide import Classified
from monitor.ingest.fetch import Fetcher, Validators
from monitor.ingest.record import ingest
from monitor.ingest.sources import TelegramSource, source_of
from monitor.ingest.telegram_pages import read_back
from monitor.ingest.worker import FeedReader, Read, open_reader
from monitor.match.classify import Verdict
from monitor.service.app import App
from monitor.store.views import FeedView

_IRRELEVANT = Verdict(story=None, milestone=None, terms={}, why="no story matched")
UNRECORDED = "unrecorded"
"""The outcome of a feed check whose result the store could not record."""


@dataclass(slots=True)
class FeedReport:
    """What checking one feed did."""

    feed: str
    outcome: str
    """ok, unchanged, failed (the feed's fault, recorded), backoff, gone, or UNRECORDED."""
    new: int = 0
    events: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    status: int | None = None
    """The HTTP status of the fetch, when there was one."""
    kind: str | None = None
    """The error class of a failed fetch (`TransientFeedError`, `FeedGone`, ...)."""
    skipped: int = 0
    """Items the store could not write, left out of the feed's ingest."""
    confirmed: int = 0
    """Alerts waiting for confirmation that this feed's reports made due."""


@dataclass(slots=True)
class CycleReport:
    feeds: list[FeedReport] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.feeds if f.outcome == outcome)


class Pipeline:
    """Checks an application's feeds with a fetcher and a reader it is handed.

    One per assembled application: a reload assembles a new application, and the
    daemon a new pipeline on it.
    """

    def __init__(self, app: App, fetcher: Fetcher, reader: FeedReader) -> None:
        self.app = app
        self.config = app.config
        self.store = app.store
        self.clock = app.clock
        self.rng = app.rng
        self.fetcher = fetcher
        self.reader = reader
        self.log = structlog.get_logger("monitor.pipeline")
        # Feeds between fetch and store at once. Fetching outruns parsing, so without
        # this bound a cycle holds every fetched body in memory while it waits its turn.
        self._in_flight = asyncio.Semaphore(app.config.fetch.concurrency)

    # -- feeds ----------------------------------------------------------------

    async def run_cycle(self, *, force: bool = False) -> CycleReport:
        """Check every configured feed (concurrently, within the fetch limits)."""
        await asyncio.to_thread(
            self.store.sync_feeds,
            [(f.name, f.url) for f in self.config.feeds],
            tiers=self.config.tiers,
        )
        # One query for every feed's state rather than one per feed.
        states = {row.name: row for row in await asyncio.to_thread(self.store.feeds)}
        reports = await asyncio.gather(
            *(
                self.check_feed(feed, force=force, state=states.get(feed.name))
                for feed in self.config.feeds
            )
        )
        return CycleReport(feeds=list(reports))

    async def check_feed(
        self, feed: FeedConfig, *, force: bool = False, state: FeedView | None = None
    ) -> FeedReport:
        """Fetch, parse, match and store one feed; never raises for the feed's own faults.

        `state` is the feed's stored row when the caller has just read it. A feed whose
        result the store could not record is reported `unrecorded` (and not backed off:
        nothing about it was written); what that means is the caller's to decide.
        """
        try:
            return await self._checked(feed, force, state)
        except StoreError as exc:
            self.log.error("feed.unrecorded", feed=feed.name, error=str(exc))
            return FeedReport(feed.name, UNRECORDED, error=str(exc))

    async def _checked(self, feed: FeedConfig, force: bool, state: FeedView | None) -> FeedReport:
        log = self.log.bind(feed=feed.name)
        if state is None:
            state = await asyncio.to_thread(self.store.feed, feed.name)
        now = self.clock()
        if state.gone and not force:
            return FeedReport(feed.name, "gone")
        waiting = state.consecutive_failures and state.next_check and state.next_check > now
        if waiting and not force:
            return FeedReport(feed.name, "backoff")
        try:
            async with self._in_flight:
                return await self._check(feed, state, log)
        except FeedError as exc:
            return await self._failed(feed, state, exc)
        except StoreError:
            raise  # the database's fault, not the feed's: no backoff
        except Exception as exc:
            # A fault no stage foresaw (a parser bug on odd input, say) stays this feed's.
            log.exception("feed.crashed")
            error = FeedError(f"internal error: {type(exc).__name__}: {exc}")
            return await self._failed(feed, state, error)

    async def _check(self, feed: FeedConfig, state: FeedView, log: Any) -> FeedReport:
        url = state.moved_to or feed.url
        started = self.clock()
        result = await self.fetcher.fetch(url, Validators(state.etag, state.last_modified))
        if result.moved_to:
            log.warning("feed.moved", old=url, new=result.moved_to)
        digest = None if result.not_modified else result.content_hash
        if digest is None or digest == state.content_hash:
            now = self.clock()
            await asyncio.to_thread(
                self.store.record_unchanged,
                feed.name,
                now,
                self.next_check(feed, started, now),
                result.moved_to,
                status=result.status,
                validators=(result.etag, result.last_modified) if result.status == 200 else None,
            )
            log.info("feed.checked", status=result.status, new=0, unchanged=True)
            return FeedReport(feed.name, "unchanged", status=result.status)
        source = source_of(feed)
        read = await self.reader.read(
            result.payload, result.url, result.content_type, feed.lang, source
        )
        if isinstance(source, TelegramSource) and state.baseline_done:
            read = await self._older_posts(feed, source, result.url, read, log)
        classified = [Classified(entry, verdict or _IRRELEVANT) for entry, verdict in read]
        ingest_at = self.clock()
        outcome = await asyncio.to_thread(
            ingest,
            self.store,
            feed.name,
            classified,
            now=ingest_at,
            next_check=self.next_check(feed, started, ingest_at),
            alert_after=ingest_at - self.config.alerts.max_age,
            route=lambda story, milestone: route(self.config, story, milestone),
            confirming=lambda story, milestone: confirming(self.config, story, milestone),
            validators=(result.etag, result.last_modified),
            content_hash=digest,
            moved_to=result.moved_to,
        )
        for skipped in outcome.skipped:
            log.warning(
                "item.skipped",
                key=skipped.key,
                title=skipped.title[:200],
                url=skipped.url,
                error=skipped.error,
            )
        log.info(
            "feed.checked",
            status=result.status,
            entries=len(classified),
            new=outcome.new,
            versions=outcome.versions,
            duplicates=outcome.duplicates,
            relevant=outcome.relevant,
            events=len(outcome.events),
            attached=outcome.attached,
            updates=outcome.updates,
            capped=outcome.capped,
            confirmed=outcome.confirmed,
            skipped=len(outcome.skipped),
        )
        for story, milestone in outcome.events:
            log.info("event.created", story=story, milestone=milestone)
        return FeedReport(
            feed.name,
            "ok",
            new=outcome.new,
            events=outcome.events,
            status=result.status,
            skipped=len(outcome.skipped),
            confirmed=outcome.confirmed,
        )

    async def _older_posts(
        self, feed: FeedConfig, source: TelegramSource, page_url: str, first: Read, log: Any
    ) -> Read:
        """The first page's posts and those of the older pages a burst pushed off it
        (`monitor.ingest.telegram_pages`), each page fetched as any feed is: through the
        fetcher's per-host and global limits, with its timeouts and size cap."""

        async def read_page(url: str) -> Read:
            page = await self.fetcher.fetch(url)
            return await self.reader.read(
                page.payload, page.url, page.content_type, feed.lang, source
            )

        async def stored(keys: list[str]) -> set[str]:
            return await asyncio.to_thread(self.store.known_keys, feed.name, keys)

        paged = await read_back(first, page_url, read_page=read_page, stored=stored)
        if paged.pages > 1 or not paged.complete:
            report = log.info if paged.complete else log.warning
            report(
                "feed.paged",
                pages=paged.pages,
                posts=len(paged.posts),
                complete=paged.complete,
                error=paged.error,
            )
        return paged.posts

    def next_check(self, feed: FeedConfig, started: datetime, now: datetime) -> datetime:
        """When a feed whose check began at `started` is due again: its interval plus a
        random part of `fetch.jitter` (so feeds added together drift apart rather than
        hit at once), counted from the start, so the time a check takes does not stretch
        the interval; `now` at the earliest."""
        jitter = self.rng.uniform(0, self.config.fetch.jitter.total_seconds())
        return max(started + self.config.feed_interval(feed) + timedelta(seconds=jitter), now)

    async def _failed(self, feed: FeedConfig, state: FeedView, exc: FeedError) -> FeedReport:
        failures = state.consecutive_failures + 1
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        interval = self.config.feed_interval(feed)
        delay = retry_delay(
            failures, interval, self.config.fetch.backoff_max, self.rng, retry_after
        )
        gone = isinstance(exc, FeedGone)
        now = self.clock()
        log = self.log.bind(feed=feed.name)
        log.warning(
            "feed.failed",
            error=str(exc),
            kind=type(exc).__name__,
            status=exc.status,
            failures=failures,
            retry_in=None if gone else round(delay.total_seconds()),
        )
        await asyncio.to_thread(
            self.store.record_failure,
            feed.name,
            str(exc),
            exc.status,
            now=now,
            next_check=now + delay,
            gone=gone,
        )
        return FeedReport(
            feed.name, "failed", error=str(exc), status=exc.status, kind=type(exc).__name__
        )


@asynccontextmanager
async def polling(app: App) -> AsyncIterator[Pipeline]:
    """A pipeline for `app` with a fetcher and a reader of its config, closed on exit.

    The reader is a parse child unless the config says `fetch.parse_worker: false`.
    """
    async with (
        Fetcher(app.config.fetch) as fetcher,
        open_reader(app.config.fetch.parse_worker, app.config.stories) as reader,
    ):
        yield Pipeline(app, fetcher, reader)
