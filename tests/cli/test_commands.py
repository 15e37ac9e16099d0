"""The command table, and what each command loads: only `once` and `run` poll feeds."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli.main import COMMANDS, _parser
from tests.conftest import REPO, write_config
from tests.support.feeds import FILLER, UNVEILING_EN, rss
from tests.support.servers import AlertReceiver, FeedServer

# Runs `monitor ARGS...` in this process, then writes the names of every module it loaded.
_PROBE = """
import json, sys
from monitor.cli.main import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump(sorted(sys.modules), out)
raise SystemExit(code)
"""

POLLING = ("httpx", "aiohttp", "monitor.ingest.fetch", "monitor.ingest.worker")
"""What polling needs: the HTTP client, the fetcher and the parse worker."""


def _probe(
    tmp_path: Path, config: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run one command as `monitor` would; return its result and the modules it loaded."""
    loaded = tmp_path / "modules.json"
    loaded.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(loaded), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        check=False,
    )
    return result, set(json.loads(loaded.read_text(encoding="utf-8")))


def test_every_command_has_its_code() -> None:
    """Each subcommand of the parser names a function that exists in its module."""
    subcommands = next(
        action.choices
        for action in _parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    assert set(subcommands) == set(COMMANDS)
    for name, command in COMMANDS.items():
        assert callable(command.load()), name


def test_deliver_sends_without_polling(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """`deliver` sends a failed alert and loads no HTTP client, fetcher or parse worker."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"wire": url}, [{"name": "desk", "url": receiver.url}])
    result, modules = _probe(tmp_path, config, "once")
    assert result.returncode == 0, result.stderr + result.stdout
    assert set(POLLING) <= modules  # the probe sees what a polling command loads
    receiver.down = True
    feed_server.serve("/feed.xml", rss([UNVEILING_EN, *FILLER]))
    result, _ = _probe(tmp_path, config, "once")
    assert result.returncode == 0, result.stderr + result.stdout
    assert receiver.messages() == []

    receiver.down = False
    result, modules = _probe(tmp_path, config, "deliver", "--retry-dead")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "sent 1, failed 0" in result.stdout
    assert len(receiver.messages()) == 1
    assert modules.isdisjoint(POLLING), sorted(modules.intersection(POLLING))


def test_apprise_loads_only_for_a_config_with_targets(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """`once` on a config that names no target never imports apprise (a tenth of a
    second of start-up); one that names a target loads it and sends through it."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"wire": url})
    result, modules = _probe(tmp_path, config, "once")
    assert result.returncode == 0, result.stderr + result.stdout
    assert set(POLLING) <= modules
    assert "apprise" not in modules

    config = write_config(tmp_path, {"wire": url}, [{"name": "desk", "url": receiver.url}])
    result, modules = _probe(tmp_path, config, "test-notify")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "apprise" in modules
    assert len(receiver.messages()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("digest",),
        ("digest", "--dry-run"),
        ("test-notify",),
        ("history",),
        ("status", "--json"),
        ("replay",),
        ("prune", "--dry-run"),
        ("prune",),
        ("feeds", "export"),
    ],
    ids=" ".join,
)
def test_commands_that_do_not_poll_load_no_fetcher(
    tmp_path: Path, receiver: AlertReceiver, args: tuple[str, ...]
) -> None:
    """Sending digests and tests, and reading the store, load nothing polling needs."""
    target = {"name": "desk", "url": receiver.url, "receive": ["alerts", "digest"]}
    config = write_config(tmp_path, {"wire": "http://127.0.0.1:9/feed.xml"}, [target])
    result, modules = _probe(tmp_path, config, *args)
    assert result.returncode == 0, result.stderr + result.stdout
    assert modules.isdisjoint(POLLING), sorted(modules.intersection(POLLING))


@pytest.mark.parametrize(
    ("listen", "says"),
    [
        pytest.param("10.1.2.3:9108", "10.1.2.3 is not a loopback address", id="not-loopback"),
        pytest.param("127.0.0.1", "not host:port", id="no-port"),
    ],
)
def test_serve_listens_on_loopback_only(tmp_path: Path, listen: str, says: str) -> None:
    """`serve --listen` takes what `http.listen` takes, and refuses the rest (exit 2)."""
    config = write_config(tmp_path, {"wire": "http://127.0.0.1:9/feed.xml"})
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "serve", "--listen", listen],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert says in result.stderr


def test_serve_on_a_taken_port_exits_2(tmp_path: Path) -> None:
    """An address already in use is said in one line, exit 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, {"wire": "http://127.0.0.1:9/feed.xml"})
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "monitor",
                "--config",
                str(config),
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert f"monitor: cannot listen on 127.0.0.1:{port}:" in result.stderr
