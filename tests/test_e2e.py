"""The whole service through its command line, against loopback feeds and targets."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, write_config
from tests.support.feeds import FILLER, UNVEILING_EN, UNVEILING_RU, Item, rss
from tests.support.servers import AlertReceiver, FeedServer, MailSink


def _once(config: Path) -> None:
    result = run_cli(config, "once")
    assert result.returncode == 0, result.stderr + result.stdout


def _history(config: Path) -> list[dict[str, object]]:
    result = run_cli(config, "history", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_one_unveiling_two_outlets_one_alert(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """An unveiling reported in English and Russian alerts once; repeats send nothing."""
    en = feed_server.serve("/en.xml", rss(FILLER, lang="en"))
    ru = feed_server.serve("/ru.xml", rss(FILLER[:2], lang="ru"))
    config = write_config(
        tmp_path, {"English outlet": en, "Russian outlet": ru}, [{"url": receiver.url}]
    )

    _once(config)  # first fetch: recorded, never alerted
    assert receiver.messages() == []

    feed_server.serve("/en.xml", rss([UNVEILING_EN, *FILLER], lang="en"))
    feed_server.serve("/ru.xml", rss([UNVEILING_RU, *FILLER[:2]], lang="ru"))
    _once(config)

    messages = receiver.messages()
    assert len(messages) == 1, messages
    assert "Kursk" in messages[0]["message"] or "Курск" in messages[0]["message"]

    events = _history(config)
    assert len(events) == 1
    event = events[0]
    assert event["story"] == "kursk-kpa-monument"
    assert event["milestone"] == "unveiling"
    assert event["url"] in {
        "https://en.example/world/kursk-monument-unveiled",
        "https://ru.example/society/kursk-pamyatnik-kndr",
    }
    assert set(event["sources"]) == {  # type: ignore[arg-type]
        "https://en.example/world/kursk-monument-unveiled",
        "https://ru.example/society/kursk-pamyatnik-kndr",
    }
    assert event["deliveries"] == [
        {
            "target": event["deliveries"][0]["target"],
            "status": "sent",
            "attempts": 1,
            "last_error": None,
        }  # type: ignore[index]
    ]

    for _ in range(2):  # more cycles, each a fresh process: nothing more is sent
        _once(config)
    assert len(receiver.messages()) == 1
    assert len(_history(config)) == 1


def test_irrelevant_items_send_nothing(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """New items about other things, and look-alikes, never alert."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"feed": url}, [{"url": receiver.url}])
    _once(config)
    lookalikes = [
        Item(
            "Kim Jong Un opens memorial museum in Pyongyang for soldiers killed in Kursk",
            "https://x.example/pyongyang-museum",
        ),
        Item("Stock markets rally on rate cut hopes", "https://x.example/markets"),
    ]
    feed_server.serve("/feed.xml", rss([*lookalikes, *FILLER]))
    _once(config)
    assert receiver.messages() == []
    assert _history(config) == []


def test_first_run_does_not_flood(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """A milestone already in a feed at its first fetch is recorded silently."""
    url = feed_server.serve("/feed.xml", rss([UNVEILING_EN, *FILLER]))
    config = write_config(tmp_path, {"feed": url}, [{"url": receiver.url}])
    _once(config)
    _once(config)
    assert receiver.messages() == []
    events = _history(config)
    assert [e["silent"] for e in events] == [True]
    assert events[0]["deliveries"] == []


def test_alert_by_email(tmp_path: Path, feed_server: FeedServer, mail_sink: MailSink) -> None:
    """An alert reaches a real SMTP server through apprise's mailto://."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"feed": url}, [{"name": "desk", "url": mail_sink.url()}])
    _once(config)
    feed_server.serve("/feed.xml", rss([UNVEILING_RU, *FILLER]))
    _once(config)
    messages = mail_sink.wait_for(1)
    assert len(messages) == 1
    assert messages[0]["To"] == "desk@example.org"
    body = messages[0].get_payload(decode=True) if not messages[0].is_multipart() else None
    text = body.decode() if isinstance(body, bytes) else str(messages[0])
    assert "Курск" in text or "ru.example" in text
    assert _history(config)[0]["deliveries"][0]["status"] == "sent"  # type: ignore[index]


def test_no_targets_prints_alerts(tmp_path: Path, feed_server: FeedServer) -> None:
    """With no targets configured, an alert is printed on stdout."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"feed": url})
    _once(config)
    feed_server.serve("/feed.xml", rss([UNVEILING_EN, *FILLER]))
    result = run_cli(config, "once")
    assert result.returncode == 0
    assert "unveiled in Kursk region" in result.stdout
    assert _history(config)[0]["deliveries"][0]["target"] == "stdout"  # type: ignore[index]
