"""The whole service through its command line, against loopback feeds and targets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import run_cli, write_config
from tests.support.events import STORY_NAME, alert_title, label
from tests.support.feeds import FILLER, THREE_MILESTONES, UNVEILING_EN, UNVEILING_RU, Item, rss
from tests.support.servers import AlertReceiver, FeedServer, MailSink


def _once(config: Path) -> None:
    result = run_cli(config, "once")
    assert result.returncode == 0, result.stderr + result.stdout


def _status_deliveries(config: Path) -> list[dict[str, Any]]:
    result = run_cli(config, "status", "--json", "--deliveries")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


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
            "confirm": None,
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


def test_deliver_fails_when_deliveries_die(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """Deliveries that die in `deliver` exit 1, and the warning names the event as alerts
    do (story, milestone, headline), in plural-correct words."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    targets = [{"name": "desk", "url": receiver.url}, {"name": "ops", "url": second.url}]
    config = write_config(tmp_path, {"wire": url}, targets, delivery={"max_attempts": 2})
    _once(config)
    receiver.down = True
    feed_server.serve("/feed.xml", rss([UNVEILING_EN, *FILLER]))
    _once(config)  # the first attempt fails
    died = run_cli(config, "deliver")
    assert died.returncode == 1, died.stdout + died.stderr
    assert "1 delivery given up after the last attempt" in died.stderr
    assert "Traceback" not in died.stderr
    warning = next(m for m in second.messages() if "given up" in m["message"])
    assert warning["title"] == "monitor: 1 message to desk could not be delivered"
    body = warning["message"]
    assert "1 message to desk was given up after 2 attempts" in body
    assert "Monument unveiled: " in body  # the milestone, as alerts call it
    assert "unveiled in Kursk region" in body  # the headline
    assert "event " not in body


def test_down_target_gets_three_alerts_after_deliver(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """Three milestones while the target is down: `deliver` sends exactly three, once."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"wire": url}, [{"name": "desk", "url": receiver.url}])
    _once(config)
    receiver.down = True
    feed_server.serve("/feed.xml", rss([*THREE_MILESTONES, *FILLER]))
    _once(config)  # a down target fails the alerts, not the cycle
    assert receiver.messages() == []

    outbox = _status_deliveries(config)
    [desk] = [r["counts"] for r in outbox if r["type"] == "target" and r["target"] == "desk"]
    assert (desk["failed"], desk["pending"]) == (1, 2)

    still_down = run_cli(config, "deliver")
    assert still_down.returncode == 1
    assert "3 deliveries remain undelivered" in still_down.stderr

    receiver.down = False
    result = run_cli(config, "deliver")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "sent 3, failed 0" in result.stdout
    titles = sorted(m["title"] for m in receiver.messages())
    assert titles == sorted(
        alert_title(m) for m in ("site_selection", "design_reveal", "unveiling")
    )
    events = _history(config)
    assert sorted(e["milestone"] for e in events) == [
        "design_reveal",
        "site_selection",
        "unveiling",
    ]
    assert [d["status"] for e in events for d in e["deliveries"]] == ["sent"] * 3  # type: ignore[union-attr]

    for _ in range(2):
        _once(config)
    assert len(receiver.messages()) == 3
    assert run_cli(config, "deliver").returncode == 0
    assert len(receiver.messages()) == 3


def test_digest_command_prints_or_sends(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """`digest --dry-run` prints the digest and records nothing; `digest` sends it now."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    target = {"name": "digest", "url": receiver.url, "receive": ["digest"]}
    config = write_config(tmp_path, {"wire": url}, [target])
    _once(config)
    update = Item(
        "Kursk governor says monument to North Korean soldiers is a priority",
        "https://wire.example/governor",
    )
    feed_server.serve("/feed.xml", rss([update, THREE_MILESTONES[2], *FILLER]))
    _once(config)
    assert receiver.messages() == []  # digest-only target, and no digest due yet

    dry = run_cli(config, "digest", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"Subject: Daily digest: {STORY_NAME}" in dry.stdout
    assert "Kursk governor says monument" in dry.stdout
    assert (
        f"{label('unveiling')}: Monument to North Korean soldiers unveiled in Kursk" in dry.stdout
    )
    html = run_cli(config, "digest", "--dry-run", "--format", "html")
    assert "<h2" in html.stdout
    assert receiver.messages() == []

    sent = run_cli(config, "digest")
    assert sent.returncode == 0, sent.stderr + sent.stdout
    [digest] = receiver.messages()
    assert digest["title"].startswith(f"Daily digest: {STORY_NAME}")
    assert "Kursk governor says monument" in digest["message"]
    _once(config)
    assert len(receiver.messages()) == 1  # an ordinary cycle sends no digest before it is due


def test_deliver_leaves_quiet_hours_alone(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """`deliver` does not break quiet hours, and held alerts are no failure (exit 0)."""
    now = datetime.now(UTC)
    window = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    url = feed_server.serve("/feed.xml", rss(FILLER))
    target = {"name": "night", "url": receiver.url, "quiet_hours": window, "timezone": "UTC"}
    config = write_config(tmp_path, {"wire": url}, [target])
    _once(config)
    feed_server.serve("/feed.xml", rss([THREE_MILESTONES[2], *FILLER]))
    _once(config)
    result = run_cli(config, "deliver")
    assert result.returncode == 0, result.stderr
    assert "1 delivery waits for quiet hours" in result.stdout
    assert receiver.messages() == []
    waiting = [r for r in _status_deliveries(config) if r["type"] == "delivery"]
    assert [(d["target"], d["kind"], d["hold"], d["status"]) for d in waiting] == [
        ("night", "alert", "quiet", "pending")
    ]
