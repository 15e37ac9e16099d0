"""A fleet: three `monitor run` processes with one config on one PostgreSQL database
share 200 feeds. Each feed is fetched once per interval across the fleet, each
milestone alert reaches each target once, and when one process is killed its feeds
are checked again within two intervals and nothing is lost."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import write_config
from tests.support.daemon import Daemon
from tests.support.feeds import FILLER, THREE_MILESTONES, Item, rss
from tests.support.postgres import schema_url
from tests.support.servers import AlertReceiver, FeedServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

INSTANCES = 3
FEEDS = 200
INTERVAL = 4.0
"""Seconds; no jitter, so "once per interval" is exact up to the claim's own delay."""
WINDOW = 4
"""Intervals over which the sharing is counted."""
SLOW = 2.0
"""Seconds the slow feed takes to answer: long enough to kill its fetcher mid-check."""
SITE, DESIGN, UNVEILING = THREE_MILESTONES


class SlowFeed:
    """A feed that answers after `SLOW` seconds with whatever it carries then."""

    def __init__(self) -> None:
        self.items: list[Item] = list(FILLER)
        self.lock = threading.Lock()

    def __call__(self, request: BaseHTTPRequestHandler) -> None:
        time.sleep(SLOW)
        with self.lock:
            body = rss(self.items).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


@pytest.fixture
def receivers() -> Iterator[list[AlertReceiver]]:
    started = [AlertReceiver().start() for _ in range(2)]
    yield started
    for receiver in started:
        receiver.stop()


def _told(receiver: AlertReceiver, item: Item) -> int:
    return sum(
        1
        for m in receiver.messages()
        if item.title in f"{m.get('title', '')}\n{m.get('message', '')}"
    )


def _fetches(server: FeedServer, path: str, start: float, end: float) -> list[float]:
    with server._lock:
        return [t for p, t in server.arrivals if p == path and start <= t < end]


def test_a_fleet_shares_the_feeds_and_survives_losing_one(
    tmp_path: Path, feed_server: FeedServer, receivers: list[AlertReceiver]
) -> None:
    names = [f"f{n:03d}" for n in range(FEEDS)]
    urls = {name: feed_server.serve(f"/{name}.xml", rss(FILLER)) for name in names}
    slow = SlowFeed()
    urls["slow"] = feed_server.serve("/slow.xml", b"", handler=slow)
    targets = [{"name": f"t{n}", "url": r.url} for n, r in enumerate(receivers)]
    with schema_url() as database, ExitStack() as stack:
        config = write_config(
            tmp_path,
            urls,
            targets,
            fetch={"interval": f"{INTERVAL}s", "jitter": "0s", "timeout": "10s"},
            database=database,
        )
        fleet = [stack.enter_context(Daemon(config)) for _ in range(INSTANCES)]
        first = fleet[0]
        first.wait_until(
            lambda: all(feed_server.hits(f"/{name}.xml") for name in urls),
            timeout=90,
            what="every feed's first check",
        )

        # Sharing: over a few intervals, each feed fetched once per interval in all.
        start = time.monotonic()
        time.sleep(WINDOW * INTERVAL)
        end = time.monotonic()
        counts = {name: len(_fetches(feed_server, f"/{name}.xml", start, end)) for name in names}
        gaps = [
            later - earlier
            for name in names
            for earlier, later in itertools.pairwise(
                _fetches(feed_server, f"/{name}.xml", start - INTERVAL, end)
            )
        ]
        assert set(counts.values()) <= {WINDOW - 1, WINDOW, WINDOW + 1}, counts
        assert sum(counts.values()) >= FEEDS * (WINDOW - 1)
        # Two instances holding one feed at once would fetch it twice in a moment; a
        # loaded machine only moves a fetch by a fraction of the interval.
        assert min(gaps) >= INTERVAL / 2, "a feed was fetched twice in one interval"
        assert all(d.events("feed.checked") for d in fleet), "an instance did no work"

        feed_server.serve("/f010.xml", rss([SITE, *FILLER]))
        first.wait_until(
            lambda: all(_told(r, SITE) for r in receivers), timeout=30, what="the first alert"
        )

        # Kill the instance that is fetching the slow feed, once it carries a milestone.
        with slow.lock:
            slow.items = [DESIGN, *FILLER]
            asked = feed_server.hits("/slow.xml")
        first.wait_until(lambda: feed_server.hits("/slow.xml") > asked, what="a slow fetch")
        engine = create_engine(database)
        with engine.connect() as connection:
            owner = connection.execute(
                text("select lease_owner from feed where name = 'slow'")
            ).scalar_one()
        engine.dispose()
        pid = int(owner.split(":")[1])
        [victim] = [d for d in fleet if d.process is not None and d.process.pid == pid]
        victim.signal(signal.SIGKILL)
        killed = time.monotonic()
        survivors = [d for d in fleet if d is not victim]
        feed_server.serve("/f020.xml", rss([UNVEILING, *FILLER]))
        survivors[0].wait_until(
            lambda: all(_told(r, DESIGN) and _told(r, UNVEILING) for r in receivers),
            timeout=30,
            what="the alerts after the kill",
        )
        time.sleep(2 * INTERVAL)
        settled = time.monotonic()
        for daemon in survivors:
            assert daemon.terminate() == 0

    # The slow feed its killer held was checked again within two intervals.
    again = _fetches(feed_server, "/slow.xml", killed, settled)
    assert again
    assert again[0] - killed <= 2 * INTERVAL
    # No feed waited longer than two intervals after the kill.
    longest: dict[str, float] = defaultdict(float)
    for name in names:
        times = [killed, *_fetches(feed_server, f"/{name}.xml", killed, settled)]
        longest[name] = max(b - a for a, b in itertools.pairwise(times))
    assert max(longest.values()) <= 2 * INTERVAL, max(longest.items(), key=lambda kv: kv[1])
    # Every milestone reached every target once: none lost, none twice.
    for receiver in receivers:
        assert [_told(receiver, item) for item in (SITE, DESIGN, UNVEILING)] == [1, 1, 1]
