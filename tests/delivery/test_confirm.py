"""Confirmation: a target with `confirm: N` hears of a milestone once N distinct outlets,
or one official or agency source, have reported it; other targets hear at once."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.cli import status as board
from monitor.config.settings import load_config
from monitor.delivery.messages import alert_context
from monitor.store.store import Store
from monitor.store.views import EventView, SourceView
from monitor.templates.render import Renderer
from tests.conftest import REPO
from tests.support.desk import Desk
from tests.support.events import STORY, alert_title
from tests.support.servers import AlertReceiver

SITE = "Site chosen for the Kursk monument to North Korean soldiers"
FEEDS = {
    "Kursk Pravda": "https://kp.example/rss",
    "Seoul Daily": "https://seoul.example/rss",
    "governor": {"telegram": "kursk_gov_test", "tier": "official"},
    "TASS": {"url": "https://tass.example/rss", "tier": "agency"},
}


def _desk(desk_for: Callable[..., Desk], at_once: AlertReceiver, careful: AlertReceiver) -> Desk:
    return desk_for(
        [
            {"name": "desk", "url": at_once.url},
            {"name": "careful", "url": careful.url, "confirm": 2},
        ],
        feeds=FEEDS,
    )


def test_a_press_report_alerts_at_once_and_waits_for_a_second_outlet(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """One press outlet: `desk` is told, `careful` waits; the same outlet again confirms
    nothing; a second outlet confirms it, and the alert lists both."""
    desk = _desk(desk_for, receiver, second)
    desk.news.report(SITE, "site_selection", feed="Kursk Pravda", lang="ru")
    assert desk.deliver().sent == 1
    assert [m["title"] for m in receiver.messages()] == [alert_title("site_selection")]
    assert second.messages() == []
    [waiting] = desk.rows("waiting")
    assert (waiting.target, waiting.confirm) == ("careful", 2)

    desk.clock.advance(minutes=20)
    again = desk.news.report(SITE + " (updated)", "site_selection", feed="Kursk Pravda", lang="ru")
    assert again.confirmed == 0
    assert desk.deliver().sent == 0

    desk.clock.advance(minutes=40)
    confirming = desk.news.report(SITE, "site_selection", feed="Seoul Daily", lang="ko")
    assert confirming.confirmed == 1
    assert desk.deliver().sent == 1
    [message] = second.messages()
    assert message["title"] == alert_title("site_selection")
    assert (
        "First: Kursk Pravda 09:00; Seoul Daily 10:00; 2 outlets, 2 languages"
        in (message["message"])
    )
    assert desk.statuses("careful") == [("alert", "sent")]
    assert len(receiver.messages()) == 1


def test_an_official_source_alone_confirms(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """A report from an `official` source is enough for `confirm: 2`: both targets are
    told at once, and the alert names the source's tier."""
    desk = _desk(desk_for, receiver, second)
    result = desk.news.report(SITE, "site_selection", feed="governor", lang="ru")
    assert result.confirmed == 1
    assert desk.deliver().sent == 2
    [message] = second.messages()
    assert "First: governor (official) 09:00; 1 outlet, 1 language" in message["message"]


def test_an_agency_joining_later_confirms(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """A press report waits; an agency's report of the same milestone confirms it."""
    desk = _desk(desk_for, receiver, second)
    desk.news.report(SITE, "site_selection", feed="Seoul Daily", lang="ko")
    desk.deliver()
    desk.clock.advance(minutes=5)
    desk.news.report(SITE, "site_selection", feed="TASS", lang="ru")
    assert desk.deliver().sent == 1
    [message] = second.messages()
    assert (
        "First: Seoul Daily 09:00; TASS (agency) 09:05; 2 outlets, 2 languages"
        in (message["message"])
    )


def test_a_wait_survives_a_restart(
    tmp_path: Path, desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """The waiting alert is in the store: another process, opened later on the same
    database, confirms it with its own ingest and sends it once."""
    first = _desk(desk_for, receiver, second)
    first.news.report(SITE, "site_selection", feed="Kursk Pravda")
    first.deliver()
    first.close()

    later = _desk(desk_for, receiver, second)
    assert [r.target for r in later.rows("waiting")] == ["careful"]
    # Its own link: the same link and text as a stored report would be a copy of it.
    later.news.report(SITE, "site_selection", feed="Seoul Daily", url="https://seoul.example/1")
    assert later.deliver().sent == 1
    assert later.deliver().sent == 0
    assert len(second.messages()) == 1
    assert later.statuses("careful") == [("alert", "sent")]


def test_status_and_history_show_a_waiting_alert(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """An alert never confirmed stays waiting: status counts and lists it with how many
    outlets reported so far; the event's history lists its reports with their tiers."""
    desk = _desk(desk_for, receiver, second)
    desk.news.report(SITE, "site_selection", feed="Kursk Pravda")
    desk.deliver()
    report = board.collect(desk.config, desk.store, desk.clock())
    assert report.counts.get("waiting") == 1
    [row] = report.pending
    assert (row.target, row.status, row.hold) == (
        "careful",
        "waiting",
        "confirmation: 1 of 2 outlets",
    )
    [event] = desk.store.events()
    assert [(s.feed, s.tier) for s in event.sources] == [("Kursk Pravda", "press")]
    assert [(d.target, d.status, d.confirm) for d in event.deliveries] == [
        ("desk", "sent", None),
        ("careful", "waiting", 2),
    ]


def test_a_silent_event_queues_no_waiting_alert(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """A milestone found on a feed's first fetch is recorded, never alerted: nothing waits."""
    desk = desk_for([{"name": "careful", "url": second.url, "confirm": 2}], feeds=FEEDS)
    store: Store = desk.store
    store.sync_feeds([("new", "https://new.example/rss")])
    desk.news.report(SITE, "site_selection", feed="new")
    assert desk.rows() == []
    assert store.events()[0].silent


def test_the_readme_alert_is_the_one_rendered() -> None:
    """README's plain-text alert is what the shipped template writes for its event: the
    post's lead (its first sentence after the headline it repeats), then the governor's
    post first, TASS and a press outlet, in Moscow time; no matched terms by default."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Alerts to Slack and email") :]
    [example] = re.findall(r"```text\n(.*?)```", section[: section.index("### Source tiers")], re.S)
    at = datetime(2026, 11, 30, 7, 2, tzinfo=UTC)
    post = "https://t.me/CHANNEL/107"
    headline = "В Курске открыли монумент бойцам КНДР"
    sources = [
        SourceView(post, headline, None, "Kursk governor", "ru", at, "official"),
        SourceView(
            "https://tass.ru/1", headline, None, "TASS", "ru", at + timedelta(minutes=38), "agency"
        ),
        SourceView(
            "https://seoul.example/1",
            "Monument unveiled",
            None,
            "Seoul Daily",
            "en",
            at + timedelta(minutes=63),
        ),
    ]
    event = EventView(
        id=1,
        story=STORY,
        milestone="unveiling",
        title=headline,
        url=post,
        outlet=None,
        created_at=at,
        silent=False,
        sources=sources,
        deliveries=[],
        terms={"watch": ["монумент", "КНДР"], "site": ["Курске"], "done": ["открыли"]},
        summary=(
            f"{headline}. Губернатор открыл памятник воинам КНДР, участвовавшим в "
            "освобождении Курской области. На церемонии были ветераны."
        ),
    )
    config = load_config(REPO / "config.yaml", env={})
    story = next(s for s in config.stories if s.id == STORY)
    context = alert_context(event, story, ZoneInfo("Europe/Moscow"))
    assert Renderer().render("alert", "text", context).body == example
