"""Tiers and confirmation through the command line: loopback feeds, a Telegram channel
and json:// receivers, each cycle a fresh process."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.conftest import run_cli, write_config
from tests.e2e.test_e2e_sources import DATA, HTML, NEW_POST
from tests.support.feeds import FILLER, UNVEILING_EN, UNVEILING_RU, rss
from tests.support.servers import AlertReceiver, FeedServer

AT = r"(\d\d \w{3} )?\d\d:\d\d"
"""A time in a corroboration line (with its day when not the first report's)."""


def _once(config: Path) -> None:
    result = run_cli(config, "once")
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]


def _json_lines(config: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli(config, *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _targets(desk: AlertReceiver, careful: AlertReceiver) -> list[dict[str, Any]]:
    return [
        {"name": "desk", "url": desk.url},
        {"name": "careful", "url": careful.url, "confirm": 2},
    ]


def test_confirm_waits_for_a_second_outlet(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """One press feed reports the unveiling: the unconfirmed target is told at once and
    the `confirm: 2` target waits (history and status say so); a second outlet's report,
    read by a later process, sends it the alert once, listing both outlets."""
    pravda = feed_server.serve("/pravda.xml", rss(FILLER, lang="ru"))
    seoul = feed_server.serve("/seoul.xml", rss(FILLER[:2], lang="en"))
    config = write_config(
        tmp_path,
        {"Kursk Pravda": pravda, "Seoul Daily": seoul},
        _targets(receiver, second),
    )
    _once(config)  # the baseline

    feed_server.serve("/pravda.xml", rss([UNVEILING_RU, *FILLER], lang="ru"))
    _once(config)
    [first] = receiver.messages()
    assert re.search(rf"First: Kursk Pravda {AT}; 1 outlet, 1 language", first["message"])
    assert second.messages() == []
    [event] = _json_lines(config, "history", "--json")
    assert [(d["target"], d["status"], d["confirm"]) for d in event["deliveries"]] == [
        ("desk", "sent", None),
        ("careful", "waiting", 2),
    ]
    assert [(c["outlet"], c["tier"], c["lang"]) for c in event["corroboration"]] == [
        ("Kursk Pravda", "press", "ru")
    ]
    waiting = [
        row
        for row in _json_lines(config, "status", "--json", "--deliveries")
        if row.get("status") == "waiting"
    ]
    assert [(row["target"], row["hold"]) for row in waiting] == [
        ("careful", "confirmation: 1 of 2 outlets")
    ]
    history = run_cli(config, "history")
    assert re.search(
        rf"^    First: Kursk Pravda {AT}; 1 outlet, 1 language \(UTC\)$", history.stdout, re.M
    )
    assert (
        "    → careful: waiting for 2 outlets or one official or agency source (1 so far)"
        in history.stdout.splitlines()
    )

    _once(config)  # nothing new: still waiting
    assert second.messages() == []

    feed_server.serve("/seoul.xml", rss([UNVEILING_EN, *FILLER[:2]], lang="en"))
    _once(config)
    [confirmed] = second.messages()
    assert confirmed["title"] == first["title"]
    assert re.search(
        rf"First: Kursk Pravda {AT}; Seoul Daily {AT}; 2 outlets, 2 languages",
        confirmed["message"],
    ), confirmed["message"]
    assert len(receiver.messages()) == 1  # the other target was told once, at first

    _once(config)
    assert len(second.messages()) == 1
    [event] = _json_lines(config, "history", "--json")
    assert [(d["target"], d["status"]) for d in event["deliveries"]] == [
        ("desk", "sent"),
        ("careful", "sent"),
    ]
    assert [c["outlet"] for c in event["corroboration"]] == ["Kursk Pravda", "Seoul Daily"]


def test_an_official_channel_alone_confirms(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """The governor's Telegram channel, tier `official`, reports the unveiling: both
    targets are told in the same cycle, and the alert names the source and its tier."""
    channel = (DATA / "telegram_channel.html").read_text(encoding="utf-8")
    feed_server.serve("/s/kursk_gov_test", channel, content_type=HTML)
    config = write_config(
        tmp_path,
        {
            "Kursk governor": {
                "telegram": "kursk_gov_test",
                "url": feed_server.url("/s/kursk_gov_test"),
                "tier": "official",
                "lang": "ru",
            }
        },
        _targets(receiver, second),
    )
    _once(config)  # the baseline

    when = datetime.now(UTC).isoformat(timespec="seconds")
    post = NEW_POST.format(title=UNVEILING_RU.title, summary=UNVEILING_RU.summary, when=when)
    feed_server.serve(
        "/s/kursk_gov_test",
        channel.replace("      </section>", post + "</section>"),
        content_type=HTML,
    )
    _once(config)
    [at_once], [confirmed] = receiver.messages(), second.messages()
    assert at_once["message"] == confirmed["message"]
    assert re.search(
        rf"First: Kursk governor \(official\) {AT}; 1 outlet, 1 language", confirmed["message"]
    ), confirmed["message"]
