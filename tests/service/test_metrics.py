"""Metrics: what is counted, and the loopback endpoint Prometheus scrapes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config.settings import HttpSettings
from monitor.delivery.outbox import DeliveryReport
from monitor.ingest.decide import Classified
from monitor.ingest.entry import Entry
from monitor.ingest.record import ingest
from monitor.match.classify import Verdict
from monitor.service.http import HttpServer
from monitor.service.metrics import STALL_AFTER, STORAGE_FAILURES, Metrics, wsgi_app
from monitor.service.pipeline import UNRECORDED, FeedReport
from monitor.store.store import Store


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    yield opened
    opened.close()


@pytest.fixture
def served(store: Store) -> Iterator[tuple[Metrics, str, Ticks]]:
    ticks = Ticks()
    metrics = Metrics(store, clock=lambda: 1_790_000_000.0, monotonic=ticks)
    server = HttpServer(wsgi_app(metrics), "127.0.0.1", 0).start()
    yield metrics, f"http://127.0.0.1:{server.port}", ticks
    server.stop()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _families(base: str) -> dict[str, Any]:
    status, text = _get(f"{base}/metrics")
    assert status == 200
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(family: Any, suffix: str = "_total", **labels: str) -> float:
    return sum(
        s.value
        for s in family.samples
        if s.name.endswith(suffix) and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_parse_and_count(served: tuple[Metrics, str, Ticks], store: Store) -> None:
    """Feed checks, fetch statuses, errors, items (stored and skipped), events and sends,
    in Prometheus text."""
    metrics, base, _ = served
    metrics.feed_checked(
        FeedReport("a", "ok", new=3, events=[("s", "unveiling")], status=200, skipped=2), 0.2
    )
    metrics.feed_checked(FeedReport("a", "unchanged", status=304), 0.01)
    metrics.feed_checked(FeedReport("b", "failed", error="x", status=503, kind="RateLimited"), 3)
    metrics.feed_checked(FeedReport("c", "failed", error="timeout", kind="TransientFeedError"), 30)
    metrics.feed_checked(FeedReport("d", "backoff"), 0)
    metrics.delivered(DeliveryReport(sent=2, failed=1, dead=0))

    families = _families(base)
    checks = families["monitor_feed_checks"]
    assert {o: _value(checks, outcome=o) for o in ("ok", "unchanged", "failed", "backoff")} == {
        "ok": 1,
        "unchanged": 1,
        "failed": 2,
        "backoff": 1,
    }
    fetches = families["monitor_fetches"]
    assert {s: _value(fetches, status=s) for s in ("200", "304", "503", "error")} == {
        "200": 1,
        "304": 1,
        "503": 1,
        "error": 1,
    }
    assert _value(families["monitor_fetch_errors"], feed="b", kind="RateLimited") == 1
    assert _value(families["monitor_items_seen"], feed="a") == 3
    assert _value(families["monitor_items_skipped"], feed="a") == 2
    assert _value(families["monitor_events"], milestone="unveiling") == 1
    assert _value(families["monitor_delivery_attempts"], result="sent") == 2
    cycle = families["monitor_cycle_duration_seconds"]
    assert _value(cycle, "_count") == 4
    assert _value(cycle, "_bucket", le="0.25") == 2
    assert families["monitor_last_success_timestamp_seconds"].samples[0].value == 1_790_000_000
    assert {s.labels["state"]: s.value for s in families["monitor_alerts"].samples} == {
        "waiting": 0,
        "pending": 0,
        "failed": 0,
        "sent": 0,
        "dead": 0,
    }


def test_alerts_gauge_reads_the_outbox(served: tuple[Metrics, str, Ticks], store: Store) -> None:
    """`monitor_alerts` is what the store holds at scrape time, not what this process sent."""
    _, base, _ = served
    now = datetime.now(UTC)
    store.sync_feeds([("a", "https://a.example/rss")])
    quiet = Verdict(story=None, milestone=None, terms={}, why="no story")
    unveiled = Verdict(story="s", milestone="unveiling", terms={"watch": ("monument",)}, why="t")
    for key, verdict in (("old", quiet), ("new", unveiled)):
        entry = Entry(key=key, url=f"https://a.example/{key}", title=key, summary="", published=now)
        ingest(
            store,
            "a",
            [Classified(entry, verdict)],
            now=now,
            next_check=now,
            alert_after=now - timedelta(days=1),
            route=lambda story, milestone: ["desk", "slack", "mail", "pager"],
        )
    desk, slack, *_ = store.claim_due(now, timedelta(minutes=5), targets={"desk", "slack"})
    store.finish(desk, now=now)
    store.finish(slack, now=now, error="gone for good")
    alerts = {s.labels["state"]: s.value for s in _families(base)["monitor_alerts"].samples}
    assert alerts == {"waiting": 0, "pending": 2, "failed": 0, "sent": 1, "dead": 1}


@pytest.mark.parametrize(
    ("silent_for", "stopping", "code", "state"),
    [
        pytest.param(0, False, 200, "ok", id="beating"),
        pytest.param(STALL_AFTER + 1, False, 503, "stalled", id="loop-stalled"),
        pytest.param(0, True, 503, "stopping", id="stopping"),
    ],
)
def test_healthz(
    served: tuple[Metrics, str, Ticks], silent_for: float, stopping: bool, code: int, state: str
) -> None:
    """/healthz is 200 while the event loop beats, 503 when it stalls or stops."""
    metrics, base, ticks = served
    metrics.beat()
    ticks.now += silent_for
    metrics.stopping = stopping
    status, body = _get(f"{base}/healthz")
    assert (status, json.loads(body)["status"]) == (code, state)


def test_healthz_follows_storage(served: tuple[Metrics, str, Ticks]) -> None:
    """/healthz is 503 after STORAGE_FAILURES checks in a row went unrecorded, 200 after one
    recorded; skipped checks change nothing, and delivery runs count on their own."""
    metrics, base, _ = served
    metrics.beat()
    unrecorded = FeedReport("a", UNRECORDED, error="disk I/O error")
    for _ in range(STORAGE_FAILURES - 1):
        metrics.feed_checked(unrecorded, 0.1)
    assert _get(f"{base}/healthz")[0] == 200
    metrics.feed_checked(unrecorded, 0.1)
    metrics.feed_checked(FeedReport("b", "backoff"), 0)
    metrics.delivered(DeliveryReport(sent=1))
    status, body = _get(f"{base}/healthz")
    assert (status, json.loads(body)["status"]) == (503, "storage failing")
    assert json.loads(body)["storage_failures"] == {"feed": STORAGE_FAILURES, "delivery": 0}
    assert _value(_families(base)["monitor_storage_failures"], "", job="feed") == STORAGE_FAILURES
    metrics.feed_checked(FeedReport("a", "unchanged", status=304), 0.1)
    assert _get(f"{base}/healthz")[0] == 200
    for _ in range(STORAGE_FAILURES):
        metrics.stored("delivery", ok=False)
    assert _get(f"{base}/healthz")[0] == 503


def test_unknown_path_is_404(served: tuple[Metrics, str, Ticks]) -> None:
    """Only /metrics and /healthz are served."""
    assert _get(f"{served[1]}/admin")[0] == 404


def test_registry_is_private() -> None:
    """Two Metrics never share counters (no global registry)."""
    first, second = Metrics(), Metrics()
    first.feed_checked(FeedReport("a", "ok", status=200), 0.1)
    assert first.registry.get_sample_value("monitor_feed_checks_total", {"outcome": "ok"}) == 1
    assert second.registry.get_sample_value("monitor_feed_checks_total", {"outcome": "ok"}) == 0


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        pytest.param("127.0.0.1:9108", "127.0.0.1", 9108, id="ipv4"),
        pytest.param("[::1]:9108", "::1", 9108, id="ipv6"),
        pytest.param("localhost:9200", "localhost", 9200, id="localhost"),
        pytest.param("127.0.0.2:9108", "127.0.0.2", 9108, id="any-of-127/8"),
    ],
)
def test_listen_accepts_loopback(listen: str, host: str, port: int) -> None:
    """`http.listen` takes a loopback host and a port."""
    settings = HttpSettings(listen=listen)
    assert (settings.host, settings.port) == (host, port)


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        pytest.param("0.0.0.0:9108", "not a loopback address", id="all-interfaces"),
        pytest.param("192.168.1.5:9108", "not a loopback address", id="lan"),
        pytest.param("example.org:9108", "not a loopback address", id="hostname"),
        pytest.param("127.0.0.1", "not host:port", id="no-port"),
        pytest.param("127.0.0.1:99999", "not host:port", id="port-out-of-range"),
        pytest.param("127.0.0.1:0", "not host:port", id="port-zero"),
    ],
)
def test_listen_rejects_the_rest(listen: str, message: str) -> None:
    """Anything but loopback host:port is refused at load time."""
    with pytest.raises(ValueError, match=message):
        HttpSettings(listen=listen)
