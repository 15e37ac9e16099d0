"""Updates: the first report of each new development, to the targets that receive them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from monitor.delivery import messages
from monitor.templates.render import SAMPLES, Renderer
from tests.support.desk import Desk
from tests.support.events import STORY_NAME, label
from tests.support.servers import AlertReceiver

FUNDRAISING = "Kursk region starts fundraising for monument to North Korean soldiers"
BUILDING = "Builders start work on the Kursk monument to North Korean soldiers"
UNVEILED = "Monument to North Korean soldiers unveiled in Kursk"


def test_an_update_goes_to_the_targets_that_receive_updates(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """`receive: [updates]` gets the update at once; an alerts-only target gets nothing."""
    desk = desk_for(
        [
            {"name": "updates", "url": receiver.url, "receive": ["alerts", "updates"]},
            {"name": "alerts", "url": second.url},
        ]
    )
    desk.news.report(FUNDRAISING, outlet="Interfax", url="https://interfax.example/funds")
    assert desk.deliver().sent == 1
    [message] = receiver.messages()
    assert message["title"] == f"Update: {STORY_NAME}"
    for needle in (FUNDRAISING, "Interfax", "https://interfax.example/funds", "not a milestone"):
        assert needle in message["message"]
    assert second.messages() == []
    assert desk.statuses() == [("update", "sent")]


def test_update_targets_keep_to_their_stories(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A target's `stories` limits its updates as it limits its alerts."""
    desk = desk_for([{"url": receiver.url, "receive": ["updates"], "stories": []}])
    desk.news.report(FUNDRAISING)
    assert desk.deliver().sent == 0
    assert desk.statuses() == []


def test_a_rewrite_sends_nothing_and_later_reports_show_in_the_update(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A rewrite joins its development silently; the update, if still unsent, counts it."""
    desk = desk_for([{"url": receiver.url, "receive": ["updates"]}])
    receiver.down = True
    desk.news.report(FUNDRAISING, outlet="Interfax", lang="en")
    desk.news.report(FUNDRAISING.replace("starts", "launches"), outlet="TASS", lang="ru")
    assert desk.deliver().failed == 1
    receiver.down = False
    assert desk.deliver(ignore_backoff=True).sent == 1
    [message] = receiver.messages()
    assert "; TASS " in message["message"]
    assert "; 2 outlets, 2 languages" in message["message"]
    assert desk.statuses() == [("update", "sent")]


def test_a_milestone_is_sent_once_as_the_milestone(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """To a target receiving both, a milestone report is an alert and not also an update."""
    desk = desk_for([{"url": receiver.url, "receive": ["alerts", "updates"]}])
    desk.news.report(UNVEILED, "unveiling")
    assert desk.deliver().sent == 1
    assert [m["title"] for m in receiver.messages()] == [f"{label('unveiling')}: {STORY_NAME}"]


def test_updates_wait_out_quiet_hours_whatever_breaks_through(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """`break_through` is for milestones: an update in quiet hours waits for their end."""
    desk = desk_for(
        [
            {
                "url": receiver.url,
                "receive": ["alerts", "updates"],
                "quiet_hours": "00:00-23:59",
                "timezone": "UTC",
                "break_through": True,
            }
        ]
    )
    desk.news.report(FUNDRAISING)
    desk.news.report(UNVEILED, "unveiling")
    report = desk.deliver()
    assert (report.sent, report.held) == (1, 1)
    [held] = desk.rows("pending")
    assert (held.kind, held.hold) == ("update", "quiet")


def test_updates_over_the_hourly_cap_are_folded_into_the_summary(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """Updates count towards `max_per_hour`; the excess goes into the one summary."""
    desk = desk_for([{"url": receiver.url, "receive": ["alerts", "updates"], "max_per_hour": 1}])
    desk.news.report(UNVEILED, "unveiling")
    desk.news.report(FUNDRAISING, outlet="Interfax")
    desk.news.report(BUILDING, outlet="TASS")
    assert (desk.deliver().sent, desk.statuses()[-1]) == (1, ("summary", "pending"))
    desk.clock.advance(hours=1)
    assert desk.deliver().sent == 1
    summary = receiver.messages()[-1]
    assert summary["title"] == "2 more alerts (over the limit of 1 an hour)"
    assert summary["message"].count("Update:") == 2
    assert FUNDRAISING in summary["message"]
    assert BUILDING in summary["message"]
    assert [s for _, s in desk.statuses()] == ["sent", "sent", "sent", "sent"]


def test_a_long_summary_lists_every_milestone_and_counts_the_rest(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over `SUMMARY_SHOWN`, a summary lists every milestone alert it carries and the
    oldest updates, and counts the updates it leaves out."""
    monkeypatch.setattr(messages, "SUMMARY_SHOWN", 3)
    desk = desk_for([{"url": receiver.url, "receive": ["alerts", "updates"], "max_per_hour": 1}])
    desk.news.report(FUNDRAISING, outlet="Interfax")  # sent: the hour's one message
    updates = [
        "Builders start work on the Kursk monument to North Korean soldiers",
        "Sculptors from Pyongyang arrive to work on the memorial",
        "Regional duma approves the budget for the KPA memorial",
        "Veterans welcome plans for a memorial to Korean soldiers",
    ]
    for n, title in enumerate(updates[:2]):
        desk.news.report(title, url=f"https://outlet.example/{n}")
    desk.news.report(UNVEILED, "unveiling")  # folded after two updates, listed all the same
    for n, title in enumerate(updates[2:], start=2):
        desk.news.report(title, url=f"https://outlet.example/{n}")
    assert desk.deliver().folded == 5
    desk.clock.advance(hours=1)
    assert desk.deliver().sent == 1
    summary = receiver.messages()[-1]
    assert summary["title"] == "5 more alerts (over the limit of 1 an hour)"
    text = summary["message"]
    assert [t for t in [*updates, UNVEILED] if t in text] == [updates[0], updates[1], UNVEILED]
    assert text.index(updates[1]) < text.index(UNVEILED)  # in the order they came
    assert "- and 2 more updates" in text


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_update_message_says_what_it_is(fmt: str) -> None:
    """An update names itself, the story, the headline, the outlet and the link."""
    context = {**SAMPLES["update"], "explain": False}
    message = Renderer().render("update", fmt, context)  # type: ignore[arg-type]
    assert message.title == f"Update: {SAMPLES['update']['story']}"
    for needle in ("Update", "Kursk region starts fundraising", "Interfax", "interfax.example/3"):
        assert needle in message.body, needle
    assert "Matched" not in message.body  # only for a target with `explain: true`
