"""The assembled application: one config's parts, shared by the pipeline and the daemon."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config.settings import load_config
from monitor.service.app import App
from monitor.service.daemon import Service
from monitor.service.pipeline import polling
from monitor.store.store import Store
from tests.conftest import write_config
from tests.support.clock import FakeClock
from tests.support.feeds import FILLER, rss
from tests.support.servers import AlertReceiver, FeedServer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    yield opened
    opened.close()


def test_parts_share_one_sender_clock_and_renderer(tmp_path: Path, store: Store) -> None:
    """The outbox, the digests and the health notices use the app's own parts."""
    config = load_config(write_config(tmp_path, {"a": "http://127.0.0.1:9/a.xml"}))
    clock, rng = FakeClock(), random.Random(3)
    app = App.build(config, store, clock=clock, rng=rng)
    assert (app.clock, app.rng) == (clock, rng)
    assert app.outbox.sender is app.sender
    assert app.outbox.renderer is app.renderer
    assert (app.outbox.clock, app.outbox.rng) == (clock, rng)
    assert (app.digests.store, app.digests.clock) == (store, clock)
    assert (app.health.store, app.health.clock) == (store, clock)


def test_polling_checks_feeds_with_the_apps_parts(
    tmp_path: Path, store: Store, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """`polling(app)` opens a fetcher and a reader for one cycle and closes the fetcher."""
    url = feed_server.serve("/a.xml", rss(FILLER))
    config = load_config(
        write_config(tmp_path, {"a": url}, [{"url": receiver.url}], fetch={"parse_worker": False})
    )
    app = App.build(config, store)

    async def cycle() -> None:
        async with polling(app) as pipeline:
            assert (pipeline.app, pipeline.store, pipeline.clock) == (app, store, app.clock)
            report = await pipeline.run_cycle()
            assert [f.outcome for f in report.feeds] == ["ok"]
            fetcher = pipeline.fetcher
        assert fetcher._http is None  # closed with the block

    asyncio.run(cycle())
    assert store.feed("a").items_seen == len(FILLER)


def test_service_assembles_each_config_once(tmp_path: Path, store: Store) -> None:
    """The daemon runs on the app it is given; a reload assembles the new config."""
    path = write_config(tmp_path, {"a": "http://127.0.0.1:9/a.xml"}, fetch={"interval": "1h"})
    app = App.build(load_config(path), store)
    with pytest.raises(ValueError, match="this config and store"):
        Service(load_config(path), store, app=app)

    async def scenario() -> None:
        service = Service(app.config, store, app=app, reload_check=None)
        running = asyncio.create_task(service.run())
        while not service.scheduler.running:
            await asyncio.sleep(0.01)
        assert service.app is app
        assert service.pipeline is not None
        assert service.pipeline.app is app

        write_config(tmp_path, {"b": "http://127.0.0.1:9/b.xml"}, fetch={"interval": "1h"})
        assert await service.reload("test") is True
        assert service.app is not app
        assert (service.app.config, service.app.store) == (service.config, store)
        assert service.pipeline.app is service.app
        service.stop()
        assert await running == 0

    asyncio.run(scenario())
