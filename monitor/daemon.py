"""`monitor run`: the long-running service.

APScheduler runs one job per feed (its interval, with jitter) and one delivery job.
A feed job that creates an event pulls the delivery job forward, so an alert leaves
within seconds rather than at the next delivery tick. SIGTERM/SIGINT stop scheduling,
let in-flight jobs finish within a deadline, and exit 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config
from monitor.fetch import Fetcher
from monitor.notify import AppriseSender
from monitor.pipeline import Pipeline
from monitor.store import Store
from monitor.worker import InlineReader, ReadWorker, open_reader

DRAIN_DEADLINE = timedelta(seconds=8)
DELIVERY_JOB = "deliver"
T = TypeVar("T")


class Service:
    """Schedules the pipeline for one config until told to stop."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.log = structlog.get_logger("monitor.daemon")
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[Any]] = set()
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.fetcher: Fetcher | None = None
        self.pipeline: Pipeline | None = None
        self.reader: ReadWorker | InlineReader | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signum)
        self.fetcher = Fetcher(self.config.fetch)
        self.reader = open_reader(self.config.fetch.parse_worker, self.config.stories)
        self.pipeline = Pipeline(
            self.config,
            self.store,
            self.fetcher,
            AppriseSender(self.config.notify),
            reader=self.reader,
        )
        await asyncio.to_thread(self.store.sync_feeds, [(f.name, f.url) for f in self.config.feeds])
        self._schedule()
        self.scheduler.start()
        self.log.info("service.started", feeds=len(self.config.feeds))
        await self._stop.wait()
        await self._drain()
        return 0

    def stop(self, signum: int | None = None) -> None:
        if not self._stop.is_set():
            self.log.info(
                "service.stopping", signal=signal.Signals(signum).name if signum else None
            )
            self._stop.set()

    def _schedule(self) -> None:
        now = datetime.now(UTC)
        for feed in self.config.feeds:
            interval = self.config.feed_interval(feed)
            self.scheduler.add_job(
                self._check_feed,
                IntervalTrigger(
                    seconds=interval.total_seconds(),
                    jitter=self.config.fetch.jitter.total_seconds() or None,
                    timezone=UTC,
                ),
                args=[feed.name],
                id=f"feed:{feed.name}",
                name=f"feed {feed.name}",
                replace_existing=True,
                next_run_time=now,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(interval.total_seconds()),
            )
        self.scheduler.add_job(
            self._deliver,
            IntervalTrigger(seconds=self.config.delivery.interval.total_seconds(), timezone=UTC),
            id=DELIVERY_JOB,
            name="delivery",
            replace_existing=True,
            next_run_time=now,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=60,
        )

    async def _check_feed(self, name: str) -> None:
        pipeline = self.pipeline
        feed = next((f for f in self.config.feeds if f.name == name), None)
        if pipeline is None or feed is None or self._stop.is_set():
            return
        report = await self._tracked(pipeline.check_feed(feed))
        await self._tracked(pipeline.check_health([name]))
        if report is not None and report.events:
            self._deliver_soon()

    async def _deliver(self) -> None:
        if self.pipeline is not None and not self._stop.is_set():
            await self._tracked(self.pipeline.prepare())
            await self._tracked(self.pipeline.deliver())

    def _deliver_soon(self) -> None:
        job = self.scheduler.get_job(DELIVERY_JOB)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    async def _tracked(self, work: Coroutine[Any, Any, T]) -> T | None:
        """Run a job's work as a task that shutdown can wait for."""
        task = asyncio.ensure_future(work)
        self._running.add(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            return None
        except Exception:
            self.log.exception("job.crashed")
            return None
        finally:
            self._running.discard(task)

    async def _drain(self) -> None:
        """Stop scheduling, give running jobs a deadline to finish, then close."""
        self.scheduler.pause()
        pending = {t for t in self._running if not t.done()}
        if pending:
            self.log.info("service.draining", jobs=len(pending))
            _, late = await asyncio.wait(pending, timeout=DRAIN_DEADLINE.total_seconds())
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)
                self.log.warning("service.abandoned", jobs=len(late))
        self.scheduler.shutdown(wait=False)
        if self.fetcher is not None:
            await self.fetcher.aclose()
        if self.reader is not None:
            await self.reader.aclose()
        self.log.info("service.stopped")
