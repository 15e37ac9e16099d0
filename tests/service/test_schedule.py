"""`monitor run` keeps its schedule in the database: a restart resumes it, and a feed
told to wait is not woken before its time."""

from __future__ import annotations

import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.store.store import Store
from tests.conftest import write_config
from tests.support.daemon import Daemon
from tests.support.feeds import FILLER, rss
from tests.support.servers import FeedServer, free_port

pytestmark = pytest.mark.slow


def _metrics(port: int) -> dict[str, float]:
    """Every sample, keyed by its name and labels as Prometheus writes them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def _checked(daemon: Daemon, feed: str) -> int:
    return sum(1 for e in daemon.events("feed.checked") if e.get("feed") == feed)


def _with_interval(config: Path, url: str, interval: str) -> None:
    """Give the feed at `url` its own interval in the config file."""
    text = config.read_text(encoding="utf-8")
    line = f"  url: {url}\n"
    assert line in text
    config.write_text(text.replace(line, f"{line}  interval: {interval}\n"), encoding="utf-8")


def test_a_restart_fetches_only_the_feeds_that_are_due(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Restarted mid-interval, the service checks the feed whose time has come and the
    one added while it was down, and leaves the others to their stored next check."""
    urls = {name: feed_server.serve(f"/{name}.xml", rss(FILLER)) for name in ("a", "b", "c", "due")}
    feeds = {name: urls[name] for name in ("a", "b", "due")}
    config = write_config(tmp_path, feeds, fetch={"interval": "1h"})
    _with_interval(config, urls["due"], "2s")
    with Daemon(config) as first:
        first.wait_until(lambda: all(_checked(first, name) == 1 for name in feeds), what="3 checks")
        assert first.terminate() == 0
    time.sleep(2)  # the short-interval feed comes due while the service is down
    config = write_config(tmp_path, {**feeds, "c": urls["c"]}, fetch={"interval": "1h"})
    _with_interval(config, urls["due"], "2s")
    with Daemon(config) as second:
        second.wait_until(lambda: _checked(second, "c") == 1, what="the added feed checked")
        second.wait_until(lambda: _checked(second, "due") >= 2, what="the due feed, twice")
        assert second.terminate() == 0
    assert [feed_server.hits(f"/{name}.xml") for name in ("a", "b")] == [1, 1]
    assert _checked(second, "a") == _checked(second, "b") == 0


def test_a_feed_told_to_wait_a_day_is_not_woken_before(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A 429 with Retry-After of a day: the feed's next check is a day away, and the
    service does not fetch it while a one-second feed beside it is checked again and
    again."""
    limited = feed_server.serve(
        "/limited.xml", b"slow down", status=429, headers={"Retry-After": "86400"}
    )
    busy = feed_server.serve("/busy.xml", rss(FILLER))
    port = free_port()
    config = write_config(
        tmp_path,
        {"limited": limited, "busy": busy},
        fetch={"interval": "1s", "timeout": "5s"},
        http={"listen": f"127.0.0.1:{port}"},
    )
    with Daemon(config) as daemon:
        daemon.wait_until(lambda: _checked(daemon, "busy") >= 5, what="five checks of busy")
        metrics = _metrics(port)
        assert daemon.terminate() == 0
    # Not even woken to be skipped: no check ended in "backoff".
    assert metrics['monitor_feed_checks_total{outcome="backoff"}'] == 0
    assert metrics['monitor_feed_schedule{state="backoff"}'] == 1
    assert feed_server.hits("/limited.xml") == 1
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        row = store.feed("limited")
    finally:
        store.close()
    assert row.next_check is not None
    assert row.next_check - datetime.now(UTC) > timedelta(hours=23)
