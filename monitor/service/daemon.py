"""`monitor run`: the long-running service.

The database is the schedule. Each feed's next check is a column of its row; one
APScheduler job (`claim`, every second) leases the feeds that are due, as many as the
instance has room for (`FeedStore.claim_feeds`), and checks them; each check writes the
feed's next time (interval plus jitter, or backoff, or Retry-After) and ends the lease.
So a restart resumes the schedule rather than polling everything, a feed told to wait a
day is not woken before, and any number of instances on one database share the feeds:
each check is claimed by one of them, and a dead instance's claims lapse with their
lease (at most one and a half of the feed's intervals). The other periodic jobs are
APScheduler's too: the delivery job, and a daily prune (`retention`). A check that
creates an event pulls the delivery job forward, so an alert leaves within seconds
rather than at the next delivery tick.

Under systemd (`Type=notify`) the service says READY=1 once scheduling has started,
pings WATCHDOG=1 from the event loop (every 5 s, or at half of `WATCHDOG_USEC` if that
is shorter), and says RELOADING=1 / STOPPING=1 around reloads and shutdown. Outside
systemd all of that is silent.

SIGHUP, or a change of the config file on disk, reloads: the new config is validated
first, and only a valid one is applied (feeds added, removed and rescheduled, rules
recompiled, targets replaced); an invalid one is logged with its key and the running
config stays. A reload the database failed (unreachable, busy, full) is tried again at
each file check until it applies, so no instance of a fleet stays on its old config.
SIGTERM/SIGINT stop scheduling and claiming deliveries, let work in flight finish
within a deadline (a send that completes is recorded), and exit 0 within ten seconds,
even when a worker thread is stuck.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config.settings import Config, FeedConfig, load_config
from monitor.core.errors import ConfigError, StoreError
from monitor.ingest.fetch import Fetcher
from monitor.ingest.worker import InlineReader, ReadWorker, open_reader
from monitor.service.app import App
from monitor.service.http import HttpServer, routes
from monitor.service.metrics import Metrics, wsgi_app
from monitor.service.page import Page
from monitor.service.pipeline import UNRECORDED, Pipeline
from monitor.service.redact import Redactor
from monitor.store.store import Store
from monitor.store.views import FeedView

DRAIN_DEADLINE = timedelta(seconds=6)
"""How long work in flight may take to finish after SIGTERM before it is abandoned."""
EXIT_DEADLINE = timedelta(seconds=8)
"""From SIGTERM to exit, whatever is still running in worker threads."""
RELOAD_CHECK = timedelta(seconds=5)
"""How often the config file is checked for changes."""
HEARTBEAT = timedelta(seconds=5)
"""The event loop's heartbeat: /healthz freshness, and the watchdog ping at most this far apart."""
CLAIM_JOB = "claim"
CLAIM_EVERY = timedelta(seconds=1)
"""How often an instance looks for due feeds (and at once when checks free room)."""
CLAIM_GAP = timedelta(seconds=0.1)
"""The least time between two claims of one instance."""
LEASE_SLACK = timedelta(seconds=30)
DELIVERY_JOB = "deliver"
PRUNE_JOB = "prune"
PRUNE_EVERY = timedelta(days=1)
PRUNE_DELAY = timedelta(minutes=10)
"""The first prune waits past the start's burst of fetches."""
WORKER_PREFIX = "monitor-worker"
T = TypeVar("T")


class Notifier(Protocol):
    """Where service state goes: systemd's notify socket, or nowhere."""

    def notify(self, state: str) -> None: ...


class SilentNotifier:
    """Outside systemd: no one to tell."""

    def notify(self, state: str) -> None:
        pass


class SocketNotifier:
    """sd_notify(3): one datagram per state to systemd's notify socket.

    Like libsystemd, a socket per message: nothing to keep open or close. A failure
    is logged and otherwise ignored; the service works the same without systemd.
    """

    def __init__(self, address: str) -> None:
        # "@name" is an abstract socket: its real name starts with a NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address

    def notify(self, state: str) -> None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(state.encode(), self.address)
        except OSError as exc:
            structlog.get_logger("monitor.daemon").warning(
                "systemd.notify_failed", state=state.split("\n", maxsplit=1)[0], error=str(exc)
            )


def systemd_notifier(environ: Mapping[str, str] = os.environ) -> Notifier:
    """The notifier for `$NOTIFY_SOCKET` when systemd set it; silent otherwise."""
    address = environ.get("NOTIFY_SOCKET", "")
    return SocketNotifier(address) if address else SilentNotifier()


def watchdog_period(
    environ: Mapping[str, str] = os.environ, pid: int | None = None
) -> timedelta | None:
    """How often to ping the watchdog: half of `$WATCHDOG_USEC`, when it is meant for us."""
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if owner.isdigit() and int(owner) != (pid if pid is not None else os.getpid()):
        return None
    return timedelta(microseconds=int(usec)) / 2


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What applying a new config changes in a running service."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    rescheduled: tuple[str, ...] = ()
    """Feeds whose interval or jitter changed."""
    fetch_changed: bool = False
    delivery_changed: bool = False
    """The delivery job's interval changed."""
    http_changed: bool = False
    database_changed: bool = False
    """Needs a restart: the running service keeps its database."""


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """Compare two configs and say what a running service must change."""
    before = {f.name: f for f in old.feeds}
    after = {f.name: f for f in new.feeds}
    jitter_changed = old.fetch.jitter != new.fetch.jitter
    rescheduled = tuple(
        name
        for name, feed in after.items()
        if name in before
        and (jitter_changed or old.feed_interval(before[name]) != new.feed_interval(feed))
    )
    return ReloadPlan(
        added=tuple(name for name in after if name not in before),
        removed=tuple(name for name in before if name not in after),
        rescheduled=rescheduled,
        fetch_changed=old.fetch != new.fetch,
        delivery_changed=old.delivery.interval != new.delivery.interval,
        http_changed=old.http != new.http,
        database_changed=old.database_url() != new.database_url(),
    )


def feed_lease(config: Config, feed: FeedConfig) -> timedelta:
    """How long a claimed feed is held: what a slow check may take (connecting and
    reading twice over, plus parse and store), but never longer than one and a half of
    the feed's intervals, so a feed whose instance died is checked again within two
    intervals. The lease runs from the claim, while the feed may still wait its turn to
    be fetched: half an interval beyond one leaves a busy instance that room. A check
    that outlives its lease may be repeated by another instance: the store's identity
    rules make that a wasted fetch, never a second alert."""
    fetch = config.fetch
    budget = 2 * (fetch.connect_timeout + fetch.timeout) + LEASE_SLACK
    return min(config.feed_interval(feed) * 1.5, budget)


def instance_name() -> str:
    """Who holds a lease: host and pid to find the process, and a random part so a
    restarted process with a recycled pid is not taken for its predecessor."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def file_fingerprint(path: Path) -> str | None:
    """A digest of the file's bytes; None when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Service:
    """Schedules the pipeline for one config at a time until told to stop.

    Each config is assembled once into an `App` (`app`, or built here from `config` and
    `store`); a reload assembles the new config on the same store. The fetcher and the
    parse worker are the service's own: a fetcher lives until the fetch settings change,
    a parse worker until the rules do, and each is closed once the jobs using it end.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        load: Callable[[], Config] | None = None,
        notifier: Notifier | None = None,
        watchdog: timedelta | None = None,
        metrics: Metrics | None = None,
        redactor: Redactor | None = None,
        reload_check: timedelta | None = RELOAD_CHECK,
        drain_deadline: timedelta = DRAIN_DEADLINE,
        app: App | None = None,
    ) -> None:
        if app is not None and (app.config is not config or app.store is not store):
            raise ValueError("app must be assembled from this config and store")
        self.config = config
        self.store = store
        self.app = app or App.build(config, store)
        self._load = load or (lambda: load_config(config.path))
        self.notifier = notifier or SilentNotifier()
        self.watchdog = watchdog
        self.metrics = metrics or Metrics(store)
        self.redactor = redactor
        self.reload_check = reload_check
        self.drain_deadline = drain_deadline
        self.owner = instance_name()
        """This instance, as the feeds' leases name it."""
        self._checking: set[str] = set()
        """Feeds this instance has claimed and not yet finished checking."""
        self._backlog = False
        """The last claim filled the room: more feeds may be due."""
        self.log = structlog.get_logger("monitor.daemon")
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.fetcher: Fetcher | None = None
        self.pipeline: Pipeline | None = None
        self.http: HttpServer | None = None
        self.stop_requested_at: float | None = None
        """`time.monotonic()` when stop was requested."""
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._fetchers: set[Fetcher] = set()
        self.reader: ReadWorker | InlineReader | None = None
        self._readers: set[ReadWorker | InlineReader] = set()
        self._reload_lock = asyncio.Lock()
        self._fingerprint = file_fingerprint(config.path)
        """The config file's content last settled: applied, or refused as invalid."""
        self._retry_reload = False
        """The last reload failed for a reason of the moment (the database): the file
        watcher tries again even though the file has not changed."""

    # -- lifecycle ------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            await self._start()
            await self._stop.wait()
        finally:
            self.notifier.notify("STOPPING=1")
            await self._drain()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        return 0

    async def _start(self) -> None:
        config = self.config
        self.fetcher = self._open_fetcher(config)
        self.reader = self._open_reader(config)
        self.pipeline = Pipeline(self.app, self.fetcher, self.reader)
        await asyncio.to_thread(
            self.store.sync_feeds, [(f.name, f.url) for f in config.feeds], tiers=config.tiers
        )
        if config.http is not None:
            try:
                server = self._http_server(config.http.host, config.http.port)
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {config.http.listen}: {exc}", "http.listen"
                ) from None
            self.http = server.start()
        now = datetime.now(UTC)
        self._add_claim_job(now)
        self._add_delivery_job(now)
        self._add_prune_job(now + PRUNE_DELAY)
        self.scheduler.start()
        self._watch(config)
        self._spawn(self._tick())
        if self.reload_check:
            self._spawn(self._watch_config(self.reload_check))
        self.log.info(
            "service.started", feeds=len(config.feeds), config=str(config.path), **active(config)
        )
        self.notifier.notify(f"READY=1\nSTATUS={self._status_line()}")

    def stop(self, signum: int | None = None) -> None:
        if not self._stop.is_set():
            self.stop_requested_at = time.monotonic()
            self.log.info(
                "service.stopping", signal=signal.Signals(signum).name if signum else None
            )
            self._stop.set()

    def request_reload(self) -> None:
        """SIGHUP: reload the config file soon (signal handlers must not wait)."""
        self._spawn(self.reload("signal"))

    async def _release(self) -> None:
        """Give back the feeds claimed and not checked (abandoned at the deadline, or
        never started): due again at once, for the next instance or this one restarted."""
        try:
            released = await asyncio.wait_for(
                asyncio.to_thread(self.store.release_feeds, self.owner), timeout=1
            )
        except (StoreError, TimeoutError) as exc:
            self.log.warning("feeds.release_failed", error=str(exc) or type(exc).__name__)
            return
        if released:
            self.log.info("feeds.released", feeds=released)

    def _status_line(self) -> str:
        return f"watching {len(self.config.feeds)} feeds, {len(self.config.notify)} targets"

    # -- scheduling -----------------------------------------------------------

    def _add_claim_job(self, first_run: datetime) -> None:
        self.scheduler.add_job(
            self._claim,
            IntervalTrigger(seconds=CLAIM_EVERY.total_seconds(), timezone=UTC),
            id=CLAIM_JOB,
            name="claim due feeds",
            replace_existing=True,
            next_run_time=first_run,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(CLAIM_EVERY.total_seconds())),
        )

    def _room(self) -> int:
        """Feeds this instance may hold at once: twice what it fetches at once, so the
        fetches stay busy while the claimed feeds before them are parsed and stored."""
        return 2 * self.config.fetch.concurrency - len(self._checking)

    async def _claim(self) -> None:
        """Lease the due feeds this instance has room for, and check each."""
        config, room = self.config, self._room()
        if self.pipeline is None or self._stop.is_set() or room <= 0:
            self._backlog = room <= 0
            return
        leases = {
            f.name: feed_lease(config, f) for f in config.feeds if f.name not in self._checking
        }
        work = asyncio.to_thread(self._claim_and_peek, leases, self.app.clock(), room)
        claimed, due = await self._tracked(work, job="feed") or ([], None)
        self._backlog = len(claimed) == room
        for state in claimed:
            self._checking.add(state.name)
            self._spawn(self._check_feed(state))
        if due is not None and not self._backlog:
            self._claim_at(due)

    def _claim_and_peek(
        self, leases: dict[str, timedelta], now: datetime, room: int
    ) -> tuple[list[FeedView], datetime | None]:
        """Claim what is due, and say when the next feed comes due (so that it is claimed
        then, not at the next tick)."""
        claimed = self.store.claim_feeds(leases, now=now, owner=self.owner, limit=room)
        return claimed, self.store.next_due(leases.keys(), now)

    def _claim_at(self, due: datetime) -> None:
        """Run the claim job at `due` if that comes before its next tick (never sooner
        than CLAIM_GAP from now: many feeds due a moment apart are claimed together)."""
        job = self.scheduler.get_job(CLAIM_JOB)
        if job is None or self._stop.is_set():
            return
        at = max(due, datetime.now(UTC) + CLAIM_GAP)
        if job.next_run_time is None or at < job.next_run_time:
            job.modify(next_run_time=at)

    def _claim_soon(self) -> None:
        job = self.scheduler.get_job(CLAIM_JOB)
        if job is not None and not self._stop.is_set():
            job.modify(next_run_time=datetime.now(UTC))

    def _add_delivery_job(self, first_run: datetime) -> None:
        self.scheduler.add_job(
            self._deliver,
            IntervalTrigger(seconds=self.config.delivery.interval.total_seconds(), timezone=UTC),
            id=DELIVERY_JOB,
            name="delivery",
            replace_existing=True,
            next_run_time=first_run,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=60,
        )

    def _add_prune_job(self, first_run: datetime) -> None:
        self.scheduler.add_job(
            self._prune,
            IntervalTrigger(seconds=PRUNE_EVERY.total_seconds(), timezone=UTC),
            id=PRUNE_JOB,
            name="prune",
            replace_existing=True,
            next_run_time=first_run,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(PRUNE_EVERY.total_seconds()),
        )

    async def _prune(self) -> None:
        """Forget what is older than the retention (read at run time: a reload applies)."""
        retention = self.config.retention
        if retention is None or self._stop.is_set():
            return
        before = datetime.now(UTC) - retention
        report = await self._tracked(asyncio.to_thread(self.store.prune, before), job="prune")
        if report is not None:
            self.metrics.stored("prune", ok=True)
            self.log.info(
                "store.pruned",
                before=report.before.isoformat(),
                items=report.items,
                bands=report.bands,
                deliveries=report.deliveries,
                kept=report.kept,
            )

    async def _check_feed(self, state: FeedView) -> None:
        """Check a feed this instance claimed; its outcome ends the lease."""
        name = state.name
        try:
            pipeline = self.pipeline
            feed = next((f for f in self.config.feeds if f.name == name), None)
            if pipeline is None or feed is None or self._stop.is_set():
                return  # the lease lapses, or is released at shutdown
            started = time.monotonic()
            report = await self._tracked(pipeline.check_feed(feed, state=state), job="feed")
            if report is None:
                return
            self.metrics.feed_checked(report, time.monotonic() - started)
            if report.outcome == UNRECORDED:
                return  # the lease lapses and the feed is tried again
            if not self._stop.is_set():
                await self._tracked(pipeline.app.check_health([name]), job="feed")
            if report.events or report.confirmed:
                self._deliver_soon()
        finally:
            self._checking.discard(name)
            if self._backlog and self._room() >= max(1, self.config.fetch.concurrency // 2):
                self._backlog = False
                self._claim_soon()

    async def _deliver(self) -> None:
        # Delivery needs no pipeline: the application alone sends what is stored.
        app = self.app
        if self._stop.is_set():
            return
        await self._tracked(app.prepare(), job="delivery")
        report = await self._tracked(app.outbox.deliver(stopping=self._stop.is_set), job="delivery")
        if report is not None:
            self.metrics.delivered(report)

    def _deliver_soon(self) -> None:
        job = self.scheduler.get_job(DELIVERY_JOB)
        if job is not None and not self._stop.is_set():
            job.modify(next_run_time=datetime.now(UTC))

    async def _tracked(self, work: Coroutine[Any, Any, T], *, job: str) -> T | None:
        """Run a job's work as a task that shutdown can wait for.

        A storage failure is logged in one line and counted against `job` (for /healthz);
        the service keeps going, and the job runs again on its schedule.
        """
        task = asyncio.ensure_future(work)
        self._running.add(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            return None
        except StoreError as exc:
            self.log.error("store.failed", job=job, error=str(exc))
            self.metrics.stored(job, ok=False)
            return None
        except Exception:
            self.log.exception("job.crashed")
            return None
        finally:
            self._running.discard(task)

    # -- reload ---------------------------------------------------------------

    async def reload(self, reason: str) -> bool:
        """Load the config file again and apply it if valid; say whether it was applied."""
        async with self._reload_lock:
            if self._stop.is_set():
                return False
            self.notifier.notify("RELOADING=1")
            # Read before the load: an edit made while it runs is seen at the next check.
            seen = file_fingerprint(self.config.path)
            try:
                try:
                    new = await asyncio.to_thread(self._load)
                except ConfigError as exc:
                    self._settled(seen)  # refused until the file changes again
                    self.metrics.reloads.labels("rejected").inc()
                    self.log.error(
                        "config.rejected",
                        reason=reason,
                        path=str(self.config.path),
                        key=exc.key,
                        line=exc.line,
                        error=exc.message,
                        kept="running config",
                    )
                    return False
                if self._stop.is_set():
                    return False
                await self._apply(new, reason)
                self._settled(seen)
                return True
            except StoreError as exc:  # before anything changed: _apply syncs feeds first
                self._retry_reload = True
                self.metrics.reloads.labels("rejected").inc()
                self.log.error(
                    "config.reload_failed",
                    reason=reason,
                    error=str(exc),
                    kept="running config",
                    retry="at the next file check",
                )
                return False
            except Exception:
                self._settled(seen)  # a bug would fail the same way again
                self.metrics.reloads.labels("rejected").inc()
                self.log.exception("config.reload_failed", reason=reason, kept="running config")
                return False
            finally:
                self.notifier.notify(f"READY=1\nSTATUS={self._status_line()}")

    def _settled(self, fingerprint: str | None) -> None:
        """The file with this content was applied or refused for good: no retry."""
        self._fingerprint = fingerprint
        self._retry_reload = False

    async def _apply(self, new: Config, reason: str) -> None:
        old = self.config
        plan = plan_reload(old, new)
        if self.redactor is not None:
            self.redactor.learn(new)
        await asyncio.to_thread(
            self.store.sync_feeds, [(f.name, f.url) for f in new.feeds], tiers=new.tiers
        )
        if plan.http_changed:
            self._restart_http(new)
        fetcher = self.fetcher
        if plan.fetch_changed or fetcher is None:
            fetcher = self._open_fetcher(new)
            if self.fetcher is not None:
                self._spawn(self._retire(self.fetcher, {t for t in self._running if not t.done()}))
        self.fetcher = fetcher
        # The parse worker holds the compiled rules: a new config gets a new one.
        reader, self.reader = self.reader, self._open_reader(new)
        if reader is not None:
            self._spawn(self._retire(reader, {t for t in self._running if not t.done()}))
        self.app = App.build(new, self.store)
        self.pipeline = Pipeline(self.app, fetcher, self.reader)
        self.config = new
        if plan.rescheduled:
            intervals = {f.name: new.feed_interval(f) for f in new.feeds}
            await asyncio.to_thread(
                self.store.reschedule, {name: intervals[name] for name in plan.rescheduled}
            )
        if plan.delivery_changed:
            self.scheduler.reschedule_job(
                DELIVERY_JOB,
                trigger=IntervalTrigger(
                    seconds=new.delivery.interval.total_seconds(), timezone=UTC
                ),
            )
        if plan.database_changed:
            self.log.warning(
                "config.restart_needed",
                key="database",
                error="the database cannot change while running; restart to use the new one",
            )
        self._watch(new)
        self.metrics.reloads.labels("applied").inc()
        self.log.info(
            "config.reloaded",
            reason=reason,
            feeds=len(new.feeds),
            **active(new),
            added=list(plan.added),
            removed=list(plan.removed),
            rescheduled=list(plan.rescheduled),
            fetch_changed=plan.fetch_changed,
        )

    def _watch(self, config: Config) -> None:
        """The metrics show the schedule of this config's feeds."""
        self.metrics.feeds.set(len(config.feeds))
        self.metrics.watched = frozenset(f.name for f in config.feeds)
        if config.feeds:
            self._claim_soon()  # a feed added is due at once

    def _http_server(self, host: str, port: int) -> HttpServer:
        """The page, the Atom feed of events, /metrics and /healthz; the page reads the
        config of the moment (a reload renames stories and feeds at once)."""
        page = Page(self.store, lambda: self.config, redact=self.redactor or str)
        return HttpServer(routes(page, wsgi_app(self.metrics)), host, port)

    def _restart_http(self, new: Config) -> None:
        if new.http is not None:
            try:
                server = self._http_server(new.http.host, new.http.port)
            except OSError as exc:
                self.log.error("http.failed", key="http.listen", error=str(exc))
                return
        if self.http is not None:
            self.http.stop()
            self.http = None
        if new.http is not None:
            self.http = server.start()

    def _open_fetcher(self, config: Config) -> Fetcher:
        fetcher = Fetcher(config.fetch)
        self._fetchers.add(fetcher)
        return fetcher

    def _open_reader(self, config: Config) -> ReadWorker | InlineReader:
        reader = open_reader(config.fetch.parse_worker, config.stories)
        self._readers.add(reader)
        return reader

    async def _retire(
        self, closable: Fetcher | ReadWorker | InlineReader, users: set[asyncio.Task[Any]]
    ) -> None:
        """Close a replaced fetcher or reader once the jobs that were using it are done."""
        if users:
            await asyncio.wait(users)
        if isinstance(closable, Fetcher):
            if closable in self._fetchers:
                await closable.aclose()
                self._fetchers.discard(closable)
        elif closable in self._readers:
            await closable.aclose()
            self._readers.discard(closable)

    async def _watch_config(self, every: timedelta) -> None:
        """Reload when the config file's content changes, and again after a reload that
        failed for a reason of the moment (a database briefly unreachable or busy), so no
        instance of a fleet is left on its old config."""
        while not await self._stopped_within(every):
            current = await asyncio.to_thread(file_fingerprint, self.config.path)
            if self._retry_reload:
                await self.reload("retry")
            elif current != self._fingerprint:
                self.log.info("config.changed", path=str(self.config.path))
                await self.reload("file")

    async def _tick(self) -> None:
        """The event loop's heartbeat: for /healthz, and systemd's watchdog."""
        # Often enough for /healthz (STALL_AFTER) whatever the watchdog's timeout.
        period = min(self.watchdog or HEARTBEAT, HEARTBEAT)
        while True:
            self.metrics.beat()
            if self.watchdog is not None:
                self.notifier.notify("WATCHDOG=1")
            if await self._stopped_within(period):
                return

    async def _stopped_within(self, period: timedelta) -> bool:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=period.total_seconds())
        except TimeoutError:
            return False
        return True

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- shutdown -------------------------------------------------------------

    async def _drain(self) -> None:
        """Stop scheduling, give running jobs a deadline to finish, then close."""
        self.metrics.stopping = True
        if self.scheduler.running:
            self.scheduler.pause()
        pending = {t for t in self._running if not t.done()}
        if pending:
            self.log.info("service.draining", jobs=len(pending))
            _, late = await asyncio.wait(pending, timeout=self.drain_deadline.total_seconds())
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)
                self.log.warning("service.abandoned", jobs=len(late))
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self._release()
        # The heartbeat and the file watcher end by themselves once stopped, and a
        # retired fetcher closes once its jobs are done: give them a moment first.
        if self._background:
            _, late = await asyncio.wait(set(self._background), timeout=1)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)
        if self.http is not None:
            await asyncio.to_thread(self.http.stop)
        for fetcher in list(self._fetchers):
            await fetcher.aclose()
        self._fetchers.clear()
        for reader in list(self._readers):
            await reader.aclose()
        self._readers.clear()
        self.log.info("service.stopped")


def serve(service: Service, exit_deadline: timedelta = EXIT_DEADLINE) -> int:
    """Run `service` on a fresh event loop and return its exit code, within a deadline.

    Store writes and sends run in worker threads, which cannot be cancelled. A thread
    still busy at the deadline is abandoned by exiting at once: SQLite transactions
    are atomic, and an unrecorded send is retried once its lease ends.
    """
    executor = ThreadPoolExecutor(thread_name_prefix=WORKER_PREFIX)
    loop = asyncio.new_event_loop()
    loop.set_default_executor(executor)
    try:
        code = loop.run_until_complete(service.run())
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.wait(leftover, timeout=1))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        loop.close()
    stopped_at = service.stop_requested_at or time.monotonic()
    for thread in threading.enumerate():
        if thread.name.startswith(WORKER_PREFIX):
            left = exit_deadline.total_seconds() - (time.monotonic() - stopped_at)
            thread.join(timeout=max(left, 0))
    busy = [t.name for t in threading.enumerate() if t.name.startswith(WORKER_PREFIX)]
    if busy:
        structlog.get_logger("monitor.daemon").warning("service.exit_forced", threads=len(busy))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def active(config: Config) -> dict[str, Any]:
    """What a start or a reload puts to work, for its log line: the stories followed,
    the targets told (their masked labels), and whether alerts go to stdout (no target)."""
    fields: dict[str, Any] = {
        "stories": [story.id for story in config.stories],
        "targets": [target.label for target in config.notify],
    }
    if not config.notify:
        fields["alerts_to"] = "stdout"
    return fields
