"""The service: systemd notifications, live reload, clean shutdown, as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import feedparser
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from structlog.testing import capture_logs

from monitor.config.settings import Config, load_config, parse_config
from monitor.service.daemon import (
    ReloadPlan,
    Service,
    plan_reload,
    systemd_notifier,
    watchdog_period,
)
from monitor.service.metrics import Metrics
from monitor.store.store import Store
from tests.conftest import run_cli, shipped_stories, write_config
from tests.support.daemon import Daemon, NotifySocket, SilentServer
from tests.support.feeds import FILLER, UNVEILING_EN, rss
from tests.support.postgres import schema_url
from tests.support.rows import store_items
from tests.support.servers import FeedServer, free_port

BASE = """
database: sqlite:///monitor.db
fetch: {interval: 15m, jitter: 10s}
delivery: {interval: 30s}
feeds:
  - {name: a, url: "http://127.0.0.1:1/a.xml"}
  - {name: b, url: "http://127.0.0.1:1/b.xml", interval: 5m}
"""


def _config(text: str) -> Config:
    return parse_config(text + shipped_stories(), Path("/etc/monitor/config.yaml"), {})


@pytest.mark.parametrize(
    ("edit", "plan"),
    [
        pytest.param(lambda t: t, ReloadPlan(), id="unchanged"),
        pytest.param(
            lambda t: t + '  - {name: c, url: "http://127.0.0.1:1/c.xml"}\n',
            ReloadPlan(added=("c",)),
            id="feed-added",
        ),
        pytest.param(
            lambda t: t.replace(
                '  - {name: b, url: "http://127.0.0.1:1/b.xml", interval: 5m}\n', ""
            ),
            ReloadPlan(removed=("b",)),
            id="feed-removed",
        ),
        pytest.param(
            lambda t: t.replace("interval: 5m", "interval: 10m"),
            ReloadPlan(rescheduled=("b",)),
            id="feed-interval",
        ),
        pytest.param(
            lambda t: t.replace("interval: 15m", "interval: 20m"),
            ReloadPlan(rescheduled=("a",), fetch_changed=True),
            id="default-interval-moves-feeds-without-their-own",
        ),
        pytest.param(
            lambda t: t.replace("jitter: 10s", "jitter: 20s"),
            ReloadPlan(rescheduled=("a", "b"), fetch_changed=True),
            id="jitter-moves-every-feed",
        ),
        pytest.param(
            lambda t: t.replace("b.xml", "b2.xml"),
            ReloadPlan(),
            id="url-change-needs-no-new-job",
        ),
        pytest.param(
            lambda t: t.replace("interval: 30s}", "interval: 1m}"),
            ReloadPlan(delivery_changed=True),
            id="delivery-interval",
        ),
        pytest.param(
            lambda t: t + 'http: {listen: "127.0.0.1:9108"}\n',
            ReloadPlan(http_changed=True),
            id="http-endpoint",
        ),
        pytest.param(
            lambda t: t.replace("sqlite:///monitor.db", "sqlite:////var/lib/monitor/monitor.db"),
            ReloadPlan(database_changed=True),
            id="database-needs-restart",
        ),
    ],
)
def test_plan_reload(edit: Any, plan: ReloadPlan) -> None:
    """A reload changes exactly the jobs and parts whose settings changed."""
    assert plan_reload(_config(BASE), _config(edit(BASE))) == plan


@pytest.mark.parametrize(
    ("environ", "period"),
    [
        pytest.param({}, None, id="no-watchdog"),
        pytest.param({"WATCHDOG_USEC": "60000000"}, timedelta(seconds=30), id="half-of-usec"),
        pytest.param(
            {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "4242"},
            timedelta(seconds=30),
            id="meant-for-this-pid",
        ),
        pytest.param(
            {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None, id="meant-for-another-pid"
        ),
        pytest.param({"WATCHDOG_USEC": "0"}, None, id="zero-is-off"),
        pytest.param({"WATCHDOG_USEC": "soon"}, None, id="garbage-is-off"),
    ],
)
def test_watchdog_period(environ: dict[str, str], period: timedelta | None) -> None:
    """The watchdog is pinged at half its timeout, and only by the process it watches."""
    assert watchdog_period(environ, pid=4242) == period


def test_notifier_writes_to_notify_socket(tmp_path: Path) -> None:
    """With NOTIFY_SOCKET set, states reach the socket; without it, nothing happens."""
    with NotifySocket(tmp_path / "notify.sock") as sock:
        systemd_notifier({"NOTIFY_SOCKET": str(sock.path)}).notify("READY=1\nSTATUS=ok")
        sock.wait_for("READY=1")
        systemd_notifier({}).notify("READY=1")
        assert sock.messages == ["READY=1", "STATUS=ok"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    yield opened
    opened.close()


def test_reload_applies_a_valid_config_and_keeps_the_old_on_error(
    tmp_path: Path, feed_server: FeedServer, store: Store
) -> None:
    """The schedule follows the new config (a feed added is checked at once, one removed
    no more, a shortened interval brings the next check forward); a broken config is
    rejected by key and changes nothing."""
    urls = {name: feed_server.serve(f"/{name}.xml", rss(FILLER)) for name in "abc"}
    path = write_config(tmp_path, {"a": urls["a"], "b": urls["b"]}, fetch={"interval": "2h"})
    metrics = Metrics(store)

    async def scenario() -> None:
        service = Service(load_config(path), store, metrics=metrics, reload_check=None)
        running = asyncio.create_task(service.run())
        await _until(lambda: feed_server.hits("/b.xml") == 1, "feed b checked")
        assert {j.id for j in service.scheduler.get_jobs()} == {"claim", "deliver", "prune"}
        await _until(lambda: store.feed("a").next_check is not None, "feed a checked")
        checked = store.feed("a").last_checked
        assert checked is not None
        # Two hours from the check's start, which came a moment before `last_checked`.
        due = store.feed("a").next_check
        assert due is not None
        assert timedelta(0) <= checked + timedelta(hours=2) - due < timedelta(seconds=30)

        write_config(
            tmp_path,
            {"a": urls["a"], "c": urls["c"]},
            fetch={"interval": "1h"},
            delivery={"interval": "45s"},
        )
        assert await service.reload("test") is True
        await _until(lambda: feed_server.hits("/c.xml") == 1, "the added feed checked")
        assert store.feed("a").next_check == checked + timedelta(hours=1)
        jobs = {job.id: job for job in service.scheduler.get_jobs()}
        assert jobs["deliver"].trigger.interval == timedelta(seconds=45)
        assert [f.name for f in service.config.feeds] == ["a", "c"]
        assert service.pipeline is not None
        assert service.pipeline.config is service.config

        applied = service.config
        path.write_text(path.read_text().replace("name: c", "name: a"), encoding="utf-8")
        with capture_logs() as logs:
            assert await service.reload("test") is False
        assert service.config is applied
        rejected = [e for e in logs if e["event"] == "config.rejected"]
        assert [(e["key"], e["error"]) for e in rejected] == [
            ("feeds[1].name", "duplicate name 'a'")
        ]

        service.stop()
        assert await running == 0

    asyncio.run(scenario())
    assert (feed_server.hits("/a.xml"), feed_server.hits("/b.xml")) == (1, 1)
    assert metrics.reloads.labels("applied")._value.get() == 1
    assert metrics.reloads.labels("rejected")._value.get() == 1


FULL_DISK = {
    "sqlite": (
        "create trigger full_disk before insert on feed "
        "begin select raise(abort, 'database or disk is full'); end",
    ),
    "postgresql": (
        "create function full_disk() returns trigger language plpgsql as "
        "$$ begin raise exception 'no space left' using errcode = '53100'; end $$",
        "create trigger full_disk before insert on feed for each row execute function full_disk()",
    ),
}
DISK_FREED = {
    "sqlite": ("drop trigger full_disk",),
    "postgresql": ("drop trigger full_disk on feed", "drop function full_disk"),
}


def _execute(store: Store, statements: tuple[str, ...]) -> None:
    with store._write() as session:
        for statement in statements:
            session.execute(text(statement))


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition` (checked every few milliseconds; a guard, not a timing)."""
    for _ in range(1500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_reload_the_database_failed_is_tried_again(
    kind: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    """A reload that failed for a reason of the moment (the database's disk full while
    a new feed is added) keeps the running config, and the file watcher tries it again
    until it applies: no instance is left on its old config."""
    a = feed_server.serve("/a.xml", rss(FILLER))
    b = feed_server.serve("/b.xml", rss(FILLER))
    path = write_config(tmp_path, {"a": a}, fetch={"interval": "1h"})
    opened = (
        nullcontext(f"sqlite:///{tmp_path / 'monitor.db'}") if kind == "sqlite" else schema_url()
    )
    with opened as url:
        store = Store.open(url)

        async def scenario() -> list[dict[str, Any]]:
            service = Service(
                load_config(path),
                store,
                reload_check=timedelta(seconds=0.05),
                metrics=Metrics(store),
            )
            running = asyncio.create_task(service.run())
            await _until(lambda: service.scheduler.running, "the scheduler")
            _execute(store, FULL_DISK[kind])
            with capture_logs() as logs:
                write_config(tmp_path, {"a": a, "b": b}, fetch={"interval": "1h"})
                await _until(
                    lambda: any(e["event"] == "config.reload_failed" for e in logs),
                    "the failed reload",
                )
                assert [f.name for f in service.config.feeds] == ["a"]
                _execute(store, DISK_FREED[kind])
                await _until(lambda: len(service.config.feeds) == 2, "the retried reload")
            await _until(lambda: feed_server.hits("/b.xml") == 1, "the added feed checked")
            service.stop()
            assert await running == 0
            return logs

        try:
            logs = asyncio.run(scenario())
            assert [f.name for f in store.feeds()] == ["a", "b"]
        finally:
            store.close()
    failed = [e for e in logs if e["event"] == "config.reload_failed"]
    assert failed[0]["reason"] == "file"
    assert {e["reason"] for e in failed[1:]} <= {"retry"}
    assert [e["reason"] for e in logs if e["event"] == "config.reloaded"] == ["retry"]


def _hang_until(release: threading.Event) -> Any:
    def handler(request: BaseHTTPRequestHandler) -> None:
        release.wait(30)
        request.send_response(503)
        request.send_header("Content-Length", "0")
        request.end_headers()

    return handler


def test_shutdown_abandons_a_hung_fetch_at_the_deadline(
    tmp_path: Path, feed_server: FeedServer, store: Store
) -> None:
    """A fetch that never ends is abandoned at the drain deadline; nothing is recorded."""
    release = threading.Event()
    url = feed_server.serve("/slow.xml", b"", handler=_hang_until(release))
    path = write_config(tmp_path, {"slow": url}, fetch={"timeout": "60s"})

    async def scenario() -> None:
        service = Service(
            load_config(path), store, reload_check=None, drain_deadline=timedelta(seconds=0.3)
        )
        running = asyncio.create_task(service.run())
        while feed_server.hits("/slow.xml") == 0:
            await asyncio.sleep(0.01)
        with capture_logs() as logs:
            service.stop()
            assert await asyncio.wait_for(running, timeout=5) == 0
        assert {"event": "service.abandoned", "jobs": 1, "log_level": "warning"} in logs

    try:
        asyncio.run(scenario())
    finally:
        release.set()
    row = store.feed("slow")
    assert (row.last_checked, row.consecutive_failures) == (None, 0)


def _metrics(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _sample(family: Any, **labels: str) -> float:
    return sum(
        s.value
        for s in family.samples
        if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.slow
def test_service_under_signals(tmp_path: Path, feed_server: FeedServer) -> None:
    """READY and WATCHDOG; SIGHUP adds feeds; a broken config is refused; SIGTERM exits 0."""
    release = threading.Event()
    a = feed_server.serve("/a.xml", rss(FILLER))
    b = feed_server.serve("/b.xml", rss(FILLER[:2]))
    slow = feed_server.serve("/slow.xml", b"", handler=_hang_until(release))
    port = free_port()
    sections: dict[str, Any] = {
        "fetch": {"interval": "1s", "timeout": "30s"},
        "http": {"listen": f"127.0.0.1:{port}"},
    }
    config = write_config(tmp_path, {"a": a}, **sections)
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"}
    try:
        with NotifySocket(tmp_path / "notify.sock") as notify, Daemon(config, env=env) as daemon:
            notify.wait_for("READY=1")
            notify.wait_for("WATCHDOG=1", count=2)
            daemon.wait_until(lambda: feed_server.hits("/a.xml") >= 2, what="feed a polled")

            families = _metrics(port)
            assert _sample(families["monitor_fetches"], status="200") >= 1
            assert _sample(families["monitor_feed_checks"], outcome="ok") >= 1
            assert _sample(families["monitor_items_seen"], feed="a") == len(FILLER)
            assert families["monitor_cycle_duration_seconds"].type == "histogram"
            assert families["monitor_last_success_timestamp_seconds"].samples[0].value > 0
            alerts = {s.labels["state"]: s.value for s in families["monitor_alerts"].samples}
            assert alerts == {"waiting": 0, "pending": 0, "failed": 0, "sent": 0, "dead": 0}
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as health:
                assert json.loads(health.read())["status"] == "ok"

            write_config(tmp_path, {"a": a, "b": b, "slow": slow}, **sections)
            daemon.signal(signal.SIGHUP)
            reloaded = daemon.wait_for_log("config.reloaded")
            assert reloaded["added"] == ["b", "slow"]
            daemon.wait_until(lambda: feed_server.hits("/b.xml") >= 1, what="feed b polled")
            daemon.wait_until(lambda: feed_server.hits("/slow.xml") >= 1, what="slow feed polled")
            notify.wait_for("READY=1", count=2)
            assert notify.said("RELOADING=1") == 1

            text = config.read_text(encoding="utf-8")
            config.write_text(text.replace("interval: 1s", "interval: soon"), encoding="utf-8")
            daemon.signal(signal.SIGHUP)
            rejected = daemon.wait_for_log("config.rejected")
            assert (rejected["key"], rejected["line"]) == ("fetch.interval", 3)
            polled = feed_server.hits("/b.xml")
            daemon.wait_until(lambda: feed_server.hits("/b.xml") >= polled + 2, what="b polled")
            assert _sample(_metrics(port)["monitor_config_reloads"], result="rejected") == 1

            started = time.monotonic()
            assert daemon.terminate(timeout=10) == 0
            stopped_in = time.monotonic() - started
        assert notify.said("STOPPING=1") == 1
        assert daemon.events("service.abandoned")[0]["jobs"] == 1
        assert stopped_in < 10
    finally:
        release.set()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)


@pytest.mark.slow
def test_service_reloads_when_the_file_changes(tmp_path: Path, feed_server: FeedServer) -> None:
    """Editing the config file is enough: the service notices and applies it."""
    a = feed_server.serve("/a.xml", rss(FILLER))
    b = feed_server.serve("/b.xml", rss(FILLER))
    config = write_config(tmp_path, {"a": a}, fetch={"interval": "1h"})
    with Daemon(config, run_args=("--reload-check", "0.2s")) as daemon:
        daemon.wait_for_log("service.started")
        write_config(tmp_path, {"a": a, "b": b}, fetch={"interval": "1h"})
        daemon.wait_until(lambda: feed_server.hits("/b.xml") >= 1, what="feed b polled")
        assert daemon.wait_for_log("config.reloaded")["reason"] == "file"
    assert daemon.returncode == 0
    assert len(daemon.events("config.reloaded")) == 1


@pytest.mark.slow
def test_start_and_reload_logs_say_what_is_active(tmp_path: Path, feed_server: FeedServer) -> None:
    """The start and reload log lines name the stories and targets at work, and say when
    alerts go to stdout (no target)."""
    a = feed_server.serve("/a.xml", rss(FILLER))
    config = write_config(tmp_path, {"a": a}, fetch={"interval": "1h"})
    with Daemon(config, run_args=("--reload-check", "0.2s")) as daemon:
        started = daemon.wait_for_log("service.started")
        assert (started["stories"], started["targets"]) == (["kursk-kpa-monument"], [])
        assert started["alerts_to"] == "stdout"
        desk = {"name": "desk", "url": "json://127.0.0.1:9/alerts"}
        write_config(tmp_path, {"a": a}, [desk], fetch={"interval": "1h"})
        reloaded = daemon.wait_for_log("config.reloaded")
        assert (reloaded["stories"], reloaded["targets"]) == (["kursk-kpa-monument"], ["desk"])
        assert "alerts_to" not in reloaded
    assert daemon.returncode == 0


@pytest.mark.slow
def test_a_send_stuck_in_a_thread_does_not_hold_the_exit(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """SIGTERM during a send that hangs: exit 0 within 10 s; the alert stays to be sent."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    with SilentServer() as smtp:
        mail = f"mailto://127.0.0.1:{smtp.port}?from=a@x.example&to=b@x.example"
        # The service resumes the schedule `once` left: a short interval makes it due.
        config = write_config(
            tmp_path, {"feed": url}, [{"name": "mail", "url": mail}], fetch={"interval": "1s"}
        )
        assert run_cli(config, "once").returncode == 0
        feed_server.serve("/feed.xml", rss([UNVEILING_EN, *FILLER]))
        with Daemon(config) as daemon:
            daemon.wait_for_log("event.created")
            daemon.wait_until(lambda: len(smtp.connections) == 1, what="the send to start")
            started = time.monotonic()
            assert daemon.terminate(timeout=10) == 0
            stopped_in = time.monotonic() - started
    assert daemon.events("service.exit_forced")[0]["threads"] >= 1
    assert stopped_in < 10
    history = run_cli(config, "history", "--json")
    [delivery] = json.loads(history.stdout.splitlines()[0])["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)


def test_a_taken_metrics_port_is_a_config_error(tmp_path: Path, feed_server: FeedServer) -> None:
    """When http.listen cannot be bound, run exits 2 naming the key."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    with SilentServer() as taken:
        config = write_config(tmp_path, {"feed": url}, http={"listen": f"127.0.0.1:{taken.port}"})
        result = run_cli(config, "run", timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "config error: http.listen: cannot listen on" in result.stderr


def test_the_daily_prune_forgets_old_items_and_logs_what_went(tmp_path: Path, store: Store) -> None:
    """The prune job runs daily, reads `retention` from the running config, and logs
    `store.pruned` with its counts."""
    path = write_config(tmp_path, {"a": "http://127.0.0.1:9/a.xml"}, retention="30d")
    now = datetime.now(UTC)
    store.sync_feeds([("a", "http://127.0.0.1:9/a.xml")])
    store_items(store, "a", now - timedelta(days=40), "x1", "x2")
    store_items(store, "a", now - timedelta(days=1), "latest")

    async def scenario() -> list[Any]:
        service = Service(load_config(path), store, reload_check=None)
        service._add_prune_job(now + timedelta(minutes=10))
        assert service.scheduler.get_job("prune").trigger.interval == timedelta(days=1)
        with capture_logs() as logs:
            await service._prune()
        return logs

    logs = asyncio.run(scenario())
    [pruned] = [e for e in logs if e["event"] == "store.pruned"]
    assert (pruned["items"], pruned["deliveries"], pruned["kept"]) == (2, 0, 0)
    assert [i.title for i in store.items()] == ["latest"]


@pytest.mark.slow
def test_run_serves_the_page_beside_its_metrics(tmp_path: Path, feed_server: FeedServer) -> None:
    """With http.listen, `monitor run` serves the page and /events.atom as well as
    /metrics and /healthz; the page shows the feed's health from the store."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    port = free_port()
    config = write_config(tmp_path, {"wire": url}, http={"listen": f"127.0.0.1:{port}"})
    base = f"http://127.0.0.1:{port}/"

    def page() -> str:
        with urllib.request.urlopen(base, timeout=5) as response:
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            return str(response.read().decode())

    with Daemon(config) as daemon:
        daemon.wait_for_log("http.listening")
        daemon.wait_until(lambda: 'class="health-ok">ok' in page(), what="the feed shown ok")
        html = page()
        assert "<td>wire</td>" in html
        assert url not in html
        with urllib.request.urlopen(f"{base}events.atom", timeout=5) as response:
            feed = feedparser.parse(response.read())
        assert (feed.bozo, feed.feed.title, feed.entries) == (0, "monitor: events", [])
        assert (
            "monitor_feed_checks_total"
            in urllib.request.urlopen(f"{base}metrics", timeout=5).read().decode()
        )
        with urllib.request.urlopen(f"{base}healthz", timeout=5) as health:
            assert json.loads(health.read())["status"] == "ok"
