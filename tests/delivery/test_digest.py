"""The daily digest: what it holds, when it is due, who gets it; on a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.delivery import messages
from tests.support.desk import START, Desk
from tests.support.events import STORY_NAME, label
from tests.support.servers import AlertReceiver

DIGEST_AT = {"time": "08:00", "timezone": "UTC"}
UPDATE = "Kursk governor says the monument to North Korean soldiers is a priority"
REWRITE = "Kursk governor says the monument to North Korean soldiers is a priority, TASS"
OTHER = "North Korean delegation visits Kursk, discusses monument plans"
UNVEILED = "Monument to North Korean soldiers unveiled in Kursk"


@pytest.fixture
def desk_for(tmp_path: Path) -> Iterator[Callable[..., Desk]]:
    made: list[Desk] = []

    def build(targets: list[dict[str, Any]], **options: Any) -> Desk:
        options.setdefault("digest", DIGEST_AT)
        desk = Desk(tmp_path, targets, **options)
        made.append(desk)
        return desk

    yield build
    for desk in made:
        desk.close()


def a_day_of_news(desk: Desk) -> None:
    """Day one: a milestone, a later report of it, an update with a rewrite, another update."""
    desk.news.report(UNVEILED, "unveiling", outlet="TASS")
    desk.clock.advance(hours=1)
    desk.news.report(
        "В Курске открыли монумент бойцам КНДР", "unveiling", feed="agency", outlet="RIA", lang="ru"
    )
    desk.news.report(UPDATE, outlet="Interfax")
    desk.news.report(REWRITE, feed="agency", outlet="TASS")
    desk.news.report(OTHER, outlet="Yonhap")


def test_digest_holds_updates_later_reports_and_the_timeline(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A digest lists the non-milestone updates, later reports and the milestones so far."""
    desk = desk_for([{"name": "digest", "url": receiver.url, "receive": ["digest"]}])
    a_day_of_news(desk)
    assert desk.deliver().sent == 0  # a digest-only target gets no alerts
    desk.clock.now = START.replace(hour=8) + timedelta(days=1)
    assert desk.digests.queue_due() == 1
    assert desk.deliver().sent == 1
    [digest] = receiver.messages()
    assert digest["title"] == f"Daily digest: {STORY_NAME} (2026-11-28)"
    text = digest["message"]
    updates = text[text.index("UPDATES") : text.index("LATER REPORTS")]
    assert UPDATE in updates
    assert "+1 more" in updates  # the rewrite is shown once
    assert REWRITE not in updates
    assert OTHER in updates
    later = text[text.index("LATER REPORTS") : text.index("MILESTONES SO FAR")]
    assert f"{label('unveiling')}: 1 new report" in later
    assert "В Курске открыли монумент бойцам КНДР (RIA)" in later
    timeline = text[text.index("MILESTONES SO FAR") :]
    assert f"2026-11-27 09:00 UTC  {label('unveiling')}: {UNVEILED} (TASS)" in timeline


def digest_text(desk: Desk, receiver: AlertReceiver) -> str:
    """The digest of the day so far, as the target got it."""
    desk.clock.now = START.replace(hour=8) + timedelta(days=1)
    assert desk.digests.queue_due() == 1
    assert desk.deliver().sent == 1
    text: str = receiver.messages()[-1]["message"]
    return text


def test_later_reports_of_one_text_are_listed_once(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A milestone's later reports that carry one text (a wire story under several links)
    are one line with "+N more", and every one of them is counted."""
    desk = desk_for([{"url": receiver.url, "receive": ["digest"]}])
    desk.news.report(UNVEILED, "unveiling", outlet="TASS")
    desk.clock.advance(hours=1)
    wire = "Kursk governor opens memorial to KPA troops at a ceremony"
    for outlet in ("RIA", "Interfax", "Yonhap"):
        desk.news.report(
            wire, "unveiling", url=f"https://{outlet.lower()}.example/1", outlet=outlet
        )
    text = digest_text(desk, receiver)
    later = text[text.index("LATER REPORTS") : text.index("MILESTONES SO FAR")]
    assert f"{label('unveiling')}: 3 new reports" in later
    assert later.count(wire) == 1
    assert f"{wire} (RIA, +2 more)" in later
    assert "more report" not in later  # nothing left unlisted


def test_a_long_digest_lists_the_widest_carried_and_counts_the_rest(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over `DIGEST_SHOWN` reports in a list, the digest lists those the most links carried,
    in the order they came, and says how many more there were."""
    monkeypatch.setattr(messages, "DIGEST_SHOWN", 3)
    desk = desk_for([{"url": receiver.url, "receive": ["digest"]}])
    titles = [
        UPDATE,
        OTHER,
        "Sculptors from Pyongyang arrive to work on the memorial",
        "Regional duma approves the budget for the KPA memorial",
        "Veterans welcome plans for a memorial to Korean soldiers",
    ]
    for n, title in enumerate(titles):
        desk.news.report(title, url=f"https://outlet.example/{n}", outlet=f"Outlet {n}")
    for n in range(2):  # the fourth carried by two more outlets
        desk.news.report(titles[3], url=f"https://copy{n}.example/1", outlet=f"Copy {n}")
    text = digest_text(desk, receiver)
    updates = text[text.index("UPDATES") : text.index("MILESTONES SO FAR")]
    listed = [t for t in titles if t in updates]
    assert listed == [titles[0], titles[1], titles[3]]
    assert f"{titles[3]} (Outlet 3, +2 more)" in updates
    assert "- and 2 more updates" in updates  # the third and the fifth


def test_digest_is_due_once_a_day_and_only_with_news(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """Before its time nothing is queued; at its time once; an empty day sends nothing."""
    desk = desk_for([{"url": receiver.url, "receive": ["digest"]}])
    a_day_of_news(desk)
    desk.clock.now = START.replace(hour=7, minute=59) + timedelta(days=1)
    assert desk.digests.queue_due() == 0  # today's 08:00 digest covers up to 08:00 yesterday
    desk.clock.advance(minutes=1)
    assert desk.digests.queue_due() == 1
    assert desk.digests.queue_due() == 0
    desk.deliver()
    desk.clock.advance(days=1)
    assert desk.digests.queue_due() == 0  # nothing new since: no digest
    desk.news.report(OTHER + " again", outlet="Yonhap")
    desk.clock.advance(days=1)
    assert desk.digests.queue_due() == 1
    desk.deliver()
    assert len(receiver.messages()) == 2
    second = receiver.messages()[1]["message"]
    assert OTHER + " again" in second
    assert UPDATE not in second  # the period starts where the last digest ended


def test_first_fetch_items_stay_out_of_the_digest(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """Items recorded silently (a feed's first fetch) never reach a digest."""
    desk = desk_for([{"url": receiver.url, "receive": ["digest"]}])
    desk.clock.advance(days=1)
    assert desk.digests.queue_due() == 0


def test_manual_digest_is_sent_now_and_moves_the_period(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """`queue_now` sends a digest up to now; the next scheduled one starts there."""
    desk = desk_for([{"url": receiver.url, "receive": ["alerts", "digest"]}])
    a_day_of_news(desk)
    desk.deliver()
    desk.clock.advance(minutes=1)
    assert desk.digests.queue_now() == 1
    assert desk.deliver(kinds={"digest"}).sent == 1
    assert "Daily digest" in receiver.messages()[-1]["title"]
    desk.clock.advance(days=1)
    assert desk.digests.queue_due() == 0  # everything was in the manual digest


def test_digest_follows_the_target_stories(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A target limited to other stories gets no digest of this one."""
    desk = desk_for([{"url": receiver.url, "receive": ["digest"], "stories": []}])
    a_day_of_news(desk)
    desk.clock.advance(days=1)
    assert desk.digests.queue_due() == 0


def test_digest_waits_for_quiet_hours(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """A digest due in a target's quiet hours is sent when they end."""
    desk = desk_for(
        [
            {
                "url": receiver.url,
                "receive": ["digest"],
                "quiet_hours": "07:00-09:00",
                "timezone": "UTC",
            }
        ]
    )
    a_day_of_news(desk)
    desk.clock.now = START.replace(hour=8) + timedelta(days=1)
    desk.digests.queue_due()
    assert desk.deliver().held == 1
    desk.clock.advance(hours=1)
    assert desk.deliver().sent == 1


def test_digest_email_is_html_with_plain_text(
    desk_for: Callable[..., Desk], mail_sink: Any, tmp_path: Path
) -> None:
    """The digest by email is multipart: a plain-text part, and HTML with a timeline table."""
    desk = desk_for([{"name": "desk", "url": mail_sink.url(), "receive": ["digest"]}])
    a_day_of_news(desk)
    desk.news.report("<script>alert(1)</script> Kursk monument update", outlet="<b>X</b>")
    desk.clock.now = START.replace(hour=8) + timedelta(days=1)
    desk.digests.queue_due()
    assert desk.deliver().sent == 1
    [mail] = mail_sink.wait_for(1)
    assert mail.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in mail.walk() if p.get_content_maintype() == "text"]
    assert kinds == ["text/plain", "text/html"]
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    plain = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    html_text = html.get_payload(decode=True).decode()  # type: ignore[union-attr]
    plain_text = plain.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "<table" in html_text
    assert "<script>" not in html_text
    assert "&lt;script&gt;" in html_text
    assert "&lt;b&gt;X&lt;/b&gt;" in html_text
    assert "Milestones so far" in plain_text
    assert UPDATE in plain_text
    (tmp_path / "digest.eml").write_bytes(mail.as_bytes())
