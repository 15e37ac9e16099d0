"""What `monitor run` counts, and the optional loopback HTTP endpoint that shows it.

`Metrics` owns its own prometheus `CollectorRegistry` (never the global one, so two
services in one process, or tests, never share counters). The service records each
feed check and delivery run into it; the outbox is read from the store at scrape time,
so `monitor_alerts` is the database's truth rather than this process's memory, and so
is the schedule (`monitor_feed_schedule{state}`, `monitor_schedule_lag_seconds`): the
same rows every instance of a fleet claims its checks from.

`wsgi_app` answers `/metrics` (Prometheus text format) and `/healthz`; the daemon serves
it with the page (`monitor.service.http`), on a loopback address only (`http.listen` in
the config; off by default).
`/healthz` answers 200 while the event loop keeps beating, 503 once it stalls, the
service is stopping, or the store has failed `STORAGE_FAILURES` feed checks (or delivery
runs) in a row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.core.errors import StoreError
from monitor.delivery.outbox import DeliveryReport
from monitor.service.pipeline import UNRECORDED, FeedReport
from monitor.store.store import Store
from monitor.store.views import DEAD, FAILED, PENDING, SENT, WAITING

CHECK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STALL_AFTER = 30.0
"""Seconds without a heartbeat from the event loop after which /healthz fails."""
STORAGE_FAILURES = 3
"""Feed checks whose result the store could not record, or delivery runs it failed, in a
row, after which /healthz fails; the next one that succeeds clears it."""
JOBS = ("feed", "delivery")

WallClock = Callable[[], float]


class Metrics:
    """The service's counters, in a registry of their own."""

    def __init__(
        self,
        store: Store | None = None,
        clock: WallClock = time.time,
        monotonic: WallClock = time.monotonic,
    ) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        self.monotonic = monotonic
        registry = self.registry
        self.checks = Counter(
            "monitor_feed_checks",
            "Feed checks by outcome (ok, unchanged, failed; backoff and gone are skips)",
            ["outcome"],
            registry=registry,
        )
        self.fetches = Counter(
            "monitor_fetches",
            "HTTP fetches by status code ('error' when no response came back)",
            ["status"],
            registry=registry,
        )
        self.errors = Counter(
            "monitor_fetch_errors",
            "Failed feed checks by feed and error kind",
            ["feed", "kind"],
            registry=registry,
        )
        self.items = Counter(
            "monitor_items_seen", "New items stored, by feed", ["feed"], registry=registry
        )
        self.skipped = Counter(
            "monitor_items_skipped",
            "Items the store could not write (left out, the rest of the feed stored), by feed",
            ["feed"],
            registry=registry,
        )
        self.events = Counter(
            "monitor_events",
            "Milestone events created, by story and milestone",
            ["story", "milestone"],
            registry=registry,
        )
        self.sends = Counter(
            "monitor_delivery_attempts",
            "Delivery attempts by result (sent, failed, dead)",
            ["result"],
            registry=registry,
        )
        self.cycle = Histogram(
            "monitor_cycle_duration_seconds",
            "Duration of one feed's cycle: fetch, parse, match, store",
            buckets=CHECK_BUCKETS,
            registry=registry,
        )
        self.last_success = Gauge(
            "monitor_last_success_timestamp_seconds",
            "When a feed's cycle last succeeded (Unix time; 0 before the first)",
            registry=registry,
        )
        self.reloads = Counter(
            "monitor_config_reloads",
            "Config reloads by result (applied, rejected)",
            ["result"],
            registry=registry,
        )
        self.feeds = Gauge("monitor_feeds", "Feeds in the running config", registry=registry)
        self.storage = Gauge(
            "monitor_storage_failures",
            "Jobs in a row whose store work failed, by job (feed checks, delivery runs)",
            ["job"],
            registry=registry,
        )
        self.storage_failures = dict.fromkeys(JOBS, 0)
        for job in JOBS:
            self.storage.labels(job)
        for outcome in ("ok", "unchanged", "failed", UNRECORDED, "backoff", "gone"):
            self.checks.labels(outcome)
        for result in (SENT, FAILED, DEAD):
            self.sends.labels(result)
        for result in ("applied", "rejected"):
            self.reloads.labels(result)
        self.watched: Collection[str] = ()
        """The feeds of the running config, whose schedule the metrics show."""
        if store is not None:
            registry.register(OutboxCollector(store))
            registry.register(ScheduleCollector(store, lambda: self.watched))
        self._beat = monotonic()
        self.last_success_at: float | None = None
        self.stopping = False

    def feed_checked(self, report: FeedReport, seconds: float) -> None:
        """Record one feed's check (and whether the store recorded it)."""
        self.checks.labels(report.outcome).inc()
        if report.outcome in ("backoff", "gone"):
            return
        self.stored("feed", ok=report.outcome != UNRECORDED)
        if report.outcome == UNRECORDED:
            return
        self.fetches.labels(str(report.status) if report.status else "error").inc()
        self.cycle.observe(seconds)
        if report.outcome == "failed":
            self.errors.labels(report.feed, report.kind or "FeedError").inc()
            return
        self.last_success_at = self.clock()
        self.last_success.set(self.last_success_at)
        if report.new:
            self.items.labels(report.feed).inc(report.new)
        if report.skipped:
            self.skipped.labels(report.feed).inc(report.skipped)
        for story, milestone in report.events:
            self.events.labels(story, milestone).inc()

    def delivered(self, report: DeliveryReport) -> None:
        """Record one run of the delivery job (that ran: the store did its part)."""
        self.stored("delivery", ok=True)
        self.sends.labels(SENT).inc(report.sent)
        self.sends.labels(FAILED).inc(report.failed)
        self.sends.labels(DEAD).inc(report.dead)

    def stored(self, job: str, *, ok: bool) -> None:
        """Whether a `job` (feed, delivery) got its store work done; failures in a row count."""
        failures = 0 if ok else self.storage_failures.get(job, 0) + 1
        self.storage_failures[job] = failures
        self.storage.labels(job).set(failures)

    def beat(self) -> None:
        """Called from the event loop: it is alive."""
        self._beat = self.monotonic()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service is healthy, and why."""
        silent = self.monotonic() - self._beat
        body: dict[str, Any] = {
            "status": "ok",
            "loop_silent_seconds": round(silent, 1),
            "last_success": self.last_success_at,
            "storage_failures": dict(self.storage_failures),
        }
        if self.stopping:
            body["status"] = "stopping"
        elif silent > STALL_AFTER:
            body["status"] = "stalled"
        elif max(self.storage_failures.values()) >= STORAGE_FAILURES:
            body["status"] = "storage failing"
        return body["status"] == "ok", body


class OutboxCollector(Collector):
    """`monitor_alerts{state}`: deliveries in the outbox, read from the store at scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self.store.delivery_counts()
        except StoreError as exc:
            structlog.get_logger("monitor.metrics").warning("metrics.outbox_failed", error=str(exc))
            return
        family = self._family()
        for state in (WAITING, PENDING, FAILED, SENT, DEAD):
            family.add_metric([state], counts.get(state, 0))
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "monitor_alerts", "Alert deliveries in the outbox, by state", labels=["state"]
        )


SCHEDULE_STATES = ("due", "checking", "waiting", "backoff", "gone")


class ScheduleCollector(Collector):
    """`monitor_feed_schedule{state}` and `monitor_schedule_lag_seconds`, read from the
    feeds' rows at scrape: due (waiting to be claimed), checking (claimed by an instance),
    waiting (for their next check), backoff, gone; and how long the longest-overdue feed
    has waited. A lag that keeps growing means the fleet cannot keep up."""

    def __init__(self, store: Store, names: Callable[[], Collection[str]]) -> None:
        self.store = store
        self.names = names

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self.store.schedule_counts(self.names(), datetime.now(UTC))
        except StoreError as exc:
            log = structlog.get_logger("monitor.metrics")
            log.warning("metrics.schedule_failed", error=str(exc))
            return
        feeds, lag = self._families()
        for state in SCHEDULE_STATES:
            feeds.add_metric([state], counts[state])
        lag.add_metric([], counts["lag"])
        yield from (feeds, lag)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "monitor_feed_schedule",
                "Configured feeds by schedule state (due, checking, waiting, backoff, gone)",
                labels=["state"],
            ),
            GaugeMetricFamily(
                "monitor_schedule_lag_seconds",
                "How long the longest-overdue feed has waited to be claimed",
            ),
        )


def wsgi_app(metrics: Metrics) -> Callable[..., Iterable[bytes]]:
    """/metrics, /healthz, and 404 for anything else (`monitor.service.http` serves it)."""
    export = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return export(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            healthy, body = metrics.health()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]

    return app
