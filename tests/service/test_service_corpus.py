"""Every file of feedparser's test corpus, served as a feed through the whole service.

One `monitor once` (a subprocess, the real service path) polls all 2,106 files from one
loopback server, each with the HTTP headers its test declares. The cycle must end
cleanly, and every feed must be stored or carry a recorded error in `status`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED, run_cli, write_config
from tests.support.servers import FeedServer

CORPUS = SHARED / "corpus" / "feedparser-tests"
_HEADER = re.compile(rb"^Header:\s*([^:\r\n]+):\s*(.*?)\s*$", re.MULTILINE)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not beside this clone"),
]


def _serve(server: FeedServer, path: Path) -> str:
    """Serve one corpus file with the headers its `Header:` lines declare."""
    data = path.read_bytes()
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in _HEADER.findall(data[:4000])
    }
    content_type = next(
        (headers.pop(k) for k in list(headers) if k.lower() == "content-type"), "application/xml"
    )
    route = "/" + path.relative_to(CORPUS).as_posix()
    return server.serve(route, data, content_type=content_type, headers=headers)


def _events(output: str, name: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [e for e in events if e["event"] == name]


def test_every_corpus_file_is_stored_or_a_recorded_error(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """One cycle over the corpus ends cleanly; each feed is stored or has its error."""
    files = sorted(CORPUS.rglob("*.xml"))
    assert len(files) == 2106
    feeds = {path.relative_to(CORPUS).as_posix(): _serve(feed_server, path) for path in files}
    config = write_config(tmp_path, feeds, fetch={"timeout": "20s"})

    result = run_cli(config, "once", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    [done] = _events(result.stdout, "cycle.done")
    assert done["feeds"] == len(files)
    assert done["ok"] + done["failed"] == len(files)
    crashed = [e["feed"] for e in _events(result.stdout, "feed.crashed")]
    assert crashed == [], f"{len(crashed)} feeds hit an unforeseen exception: {crashed[:20]}"

    status = run_cli(config, "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = [json.loads(line) for line in status.stdout.splitlines() if line.strip()]
    assert len(rows) == len(files)
    stored = [r for r in rows if r["last_ok"] and r["last_error"] is None]
    failed = [r for r in rows if r["last_error"]]
    neither = [r["name"] for r in rows if not r["last_ok"] and not r["last_error"]]
    assert neither == []
    assert len(stored) + len(failed) == len(files)
    assert len(stored) == done["ok"]
    assert sum(r["items_seen"] for r in stored) == done["new"]

    again = run_cli(config, "once", timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    [done] = _events(again.stdout, "cycle.done")
    assert done["unchanged"] == len(stored)  # every stored feed answers 304 now
    assert done["skipped"] == len(failed)  # every failed one waits out its backoff
