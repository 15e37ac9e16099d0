"""Updates end to end: `monitor once` processes against loopback feeds and receivers.

The tests bring their own tiny story, so their verdicts do not hang on the details of
the shipped rules: any item mentioning a monument is about it, and "unveiled" is the
one milestone word.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import run_cli, write_config
from tests.support.feeds import FILLER, Item, rss
from tests.support.servers import AlertReceiver, FeedServer

STORY_NAME = "Kursk monument to North Korean soldiers"


def _story(event: str) -> str:
    return f"""\
stories:
  - id: kursk-monument
    name: {STORY_NAME}
    watch:
      all: [[monument*, memorial*]]
    milestones:
      unveiling:
        label: Monument unveiled
        event: [{event}]
"""


FUNDRAISING = Item(
    "Kursk region starts fundraising for monument to North Korean soldiers",
    "https://wire.example/fundraising",
    "The regional government opened a fund to collect donations for the memorial to DPRK "
    "servicemen, officials said.",
)
FUNDRAISING_REWRITE = Item(
    "Kursk region launches fundraising for monument to North Korean soldiers",
    "https://agency.example/news/4411",
    "The regional government opened a fund to collect donations for the memorial to DPRK "
    "servicemen, officials said on Monday.",
)
UNVEILING = Item(
    "Monument to North Korean soldiers unveiled in Kursk",
    "https://wire.example/unveiled",
    "A monument honouring Korean People's Army soldiers was unveiled in Kursk on Sunday.",
)


def _once(config: Path) -> None:
    result = run_cli(config, "once")
    assert result.returncode == 0, result.stderr + result.stdout


def _json_lines(config: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli(config, *args, "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_updates_reach_opted_in_targets_once_per_development(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """A new development is one update; its rewrite nothing; a milestone only its alert."""
    wire = feed_server.serve("/wire.xml", rss(FILLER))
    agency = feed_server.serve("/agency.xml", rss(FILLER[:1]))
    now = datetime.now(UTC)
    night = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    targets = [
        {"name": "desk", "url": receiver.url, "receive": ["alerts", "updates"]},
        {"name": "alerts", "url": second.url},
        {"name": "night", "url": receiver.url, "receive": ["updates"], "quiet_hours": night},
    ]
    config = write_config(
        tmp_path, {"wire": wire, "agency": agency}, targets, stories=_story("unveiled")
    )
    _once(config)  # the first fetch of each feed: recorded, never sent

    feed_server.serve("/wire.xml", rss([FUNDRAISING, *FILLER]))
    _once(config)
    [update] = receiver.messages()
    assert update["title"] == f"Update: {STORY_NAME}"
    assert FUNDRAISING.title in update["message"]
    assert FUNDRAISING.link in update["message"]
    assert second.messages() == []

    feed_server.serve("/agency.xml", rss([FUNDRAISING_REWRITE, *FILLER[:1]]))
    _once(config)  # the same development from another outlet: nothing new
    assert len(receiver.messages()) == 1

    feed_server.serve("/wire.xml", rss([UNVEILING, FUNDRAISING, *FILLER]))
    _once(config)
    assert [m["title"] for m in receiver.messages()[1:]] == [f"Monument unveiled: {STORY_NAME}"]
    assert [m["title"] for m in second.messages()] == [f"Monument unveiled: {STORY_NAME}"]

    milestone, development = _json_lines(config, "history")
    assert (milestone["kind"], milestone["milestone"]) == ("milestone", "unveiling")
    assert [d["target"] for d in milestone["deliveries"]] == ["desk", "alerts"]
    assert development["kind"] == "update"
    assert (development["milestone"], development["label"]) == (None, "Update")
    assert development["title"] == FUNDRAISING.title
    assert development["sources"] == [FUNDRAISING.link, FUNDRAISING_REWRITE.link]
    assert [(d["target"], d["status"]) for d in development["deliveries"]] == [
        ("desk", "sent"),
        ("night", "pending"),
    ]
    text = run_cli(config, "history").stdout
    assert f"Update — kursk-monument\n    {FUNDRAISING.title}" in text

    held = [r for r in _json_lines(config, "status", "--deliveries") if r["type"] == "delivery"]
    assert [(r["target"], r["kind"], r["hold"], r["title"]) for r in held] == [
        ("night", "update", "quiet", FUNDRAISING.title)
    ]
    wide = run_cli(config, "status", "--wide", env={"COLUMNS": "300"}).stdout
    assert "update: Kursk region" in wide


def test_replay_shows_an_update_that_corrected_rules_make_a_milestone(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """A milestone the rules missed went out as an update; replay shows the corrected verdict."""
    wire = feed_server.serve("/wire.xml", rss(FILLER))
    target = [{"name": "desk", "url": receiver.url, "receive": ["alerts", "updates"]}]
    config = write_config(tmp_path, {"wire": wire}, target, stories=_story("inaugurated"))
    _once(config)
    feed_server.serve("/wire.xml", rss([UNVEILING, *FILLER]))
    _once(config)
    assert [m["title"] for m in receiver.messages()] == [f"Update: {STORY_NAME}"]

    config = write_config(tmp_path, {"wire": wire}, target, stories=_story("unveiled"))
    records = _json_lines(config, "replay")
    changed = [r for r in records if r["type"] == "changed"]
    assert [(r["title"], r["was"], r["now"]) for r in changed] == [
        (
            UNVEILING.title,
            {"story": "kursk-monument", "milestone": None},
            {"story": "kursk-monument", "milestone": "unveiling"},
        )
    ]
    [group] = [r for r in records if r["type"] == "milestone"]
    assert (group["milestone"], group["would_alert"]) == ("unveiling", True)
    text = run_cli(config, "replay").stdout
    assert f"kursk-monument → unveiling: [wire] {UNVEILING.title}" in text
    assert len(receiver.messages()) == 1  # replay sends nothing
