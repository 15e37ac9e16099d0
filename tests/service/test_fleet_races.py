"""A fleet of `monitor run` processes on one PostgreSQL database: started together on
a fresh database, and reloading one edited config together."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.support.daemon import Daemon
from tests.support.feeds import FILLER, rss
from tests.support.postgres import schema_url
from tests.support.servers import FeedServer

INSTANCES = 3


@pytest.mark.slow
@pytest.mark.postgres
def test_a_fleet_starts_and_reloads_together(tmp_path: Path, feed_server: FeedServer) -> None:
    """Three instances started at once on a fresh database all run (one migrates, the
    others wait for it), and an edit adding feeds is applied by all three (the same
    new feed rows inserted by each, none failing on the others')."""
    urls = {f"f{i:02d}": feed_server.serve(f"/f{i:02d}.xml", rss(FILLER)) for i in range(40)}
    before = dict(list(urls.items())[:10])
    with schema_url() as database, ExitStack() as stack:
        config = write_config(tmp_path, before, fetch={"interval": "1h"}, database=database)
        fleet = [Daemon(config, run_args=("--reload-check", "0.2s")) for _ in range(INSTANCES)]
        for daemon in fleet:
            stack.enter_context(daemon)
        for daemon in fleet:
            assert daemon.wait_for_log("service.started", timeout=60)["feeds"] == 10
        write_config(tmp_path, urls, fetch={"interval": "1h"}, database=database)
        for daemon in fleet:
            applied = daemon.wait_for_log("config.reloaded", timeout=60)
            assert (applied["feeds"], len(applied["added"])) == (40, 30)
        stack.close()
        assert [daemon.returncode for daemon in fleet] == [0] * INSTANCES
        for daemon in fleet:
            assert daemon.events("config.reload_failed") == []
