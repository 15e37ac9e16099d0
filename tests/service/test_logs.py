"""Logs: JSON lines, with journald priority prefixes when stdout is the journal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.service.logs import writes_to_journal
from tests.conftest import REPO, write_config
from tests.support.feeds import FILLER, rss
from tests.support.servers import FeedServer


def _identity(path: Path) -> str:
    info = os.stat(path)
    return f"{info.st_dev}:{info.st_ino}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("same", True, id="this-stream"),
        pytest.param("other", False, id="another-stream"),
        pytest.param("", False, id="unset"),
        pytest.param("garbage", False, id="garbage"),
    ],
)
def test_writes_to_journal(tmp_path: Path, value: str, expected: bool) -> None:
    """Only the stream systemd connected (JOURNAL_STREAM's device:inode) is the journal."""
    (tmp_path / "log").touch()
    (tmp_path / "other").touch()
    journal = {"same": _identity(tmp_path / "log"), "other": _identity(tmp_path / "other")}
    with open(tmp_path / "log", "w") as stream:
        environ = {"JOURNAL_STREAM": journal.get(value, value)}
        assert writes_to_journal(stream, environ) is expected


def test_service_lines_carry_journal_priorities(tmp_path: Path, feed_server: FeedServer) -> None:
    """Under journald every line is `<priority>` + one JSON object; warnings are <4>."""
    good = feed_server.serve("/good.xml", rss(FILLER))
    config = write_config(tmp_path, {"good": good, "broken": feed_server.url("/missing.xml")})
    read_end, write_end = os.pipe()
    info = os.fstat(write_end)
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}",
    }
    with os.fdopen(read_end, "r", encoding="utf-8") as reader:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "once"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=REPO,
        )
        os.close(write_end)
        output = reader.read()
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    lines = output.splitlines()
    assert lines
    priorities = {}
    for line in lines:
        match = re.fullmatch(r"<([0-7])>(\{.*\})", line)
        assert match, line
        event = json.loads(match.group(2))
        priorities[event["event"]] = int(match.group(1))
    assert priorities["feed.checked"] == 6
    assert priorities["feed.failed"] == 4
