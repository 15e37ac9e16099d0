"""Health notices and dead-letter warnings: their own templates, the texts of before,
overridable from the config like alerts."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config.settings import load_config
from monitor.core.errors import ConfigError
from monitor.delivery.messages import (
    HealthChange,
    dead_letter_context,
    health_context,
    notice_context,
    notice_message,
    queued_notice,
)
from monitor.store.views import OutboxRow
from monitor.templates.render import FORMATS, Format, Renderer
from tests.conftest import REPO, write_config
from tests.delivery.test_outbox import MILESTONES
from tests.support.desk import Desk
from tests.support.servers import AlertReceiver

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TZ = UTC
FEED = "wire (Reuters) [main]"
URL = "https://wire.example/rss?a=1&b=<2>"
STORY = "Monument in the Kursk region to North Korean (KPA) soldiers"
ERROR = "HTTP 503 <html> @channel [retry](later) #1!"


def shown(moment: datetime) -> str:
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M %Z").strip()


# The titles and bodies health.py and outbox.py wrote as prose before they had templates.
PREVIOUS: dict[HealthChange, tuple[str, list[str]]] = {
    "failing": (
        f"feed {FEED} is failing",
        [
            f"{FEED} ({URL}) has failed every check since {shown(NOW - timedelta(hours=7))} "
            "(9 failures).",
            f"Last error: {ERROR}",
            "It is still retried with backoff; `monitor status` shows it.",
        ],
    ),
    "gone": (
        f"feed {FEED} is gone (HTTP 410)",
        [
            f"{FEED} ({URL}) answered 410 Gone at {shown(NOW)}; monitor has stopped polling it.",
            "Remove it from the config or give it a new URL to resume; "
            "`monitor once --force` checks it again.",
        ],
    ),
    "silent": (
        f"feed {FEED} has gone silent",
        [
            f"{FEED} ({URL}) answers but has brought no new items "
            f"since {shown(NOW - timedelta(days=3))}.",
            "It usually brings new items every 3.5 hours.",
        ],
    ),
    "recovered": (
        f"feed {FEED} recovered",
        [
            f"{FEED} ({URL}) is back to normal at {shown(NOW)}.",
            f"It was silent from {shown(NOW - timedelta(days=2))}.",
        ],
    ),
}
CONTEXTS: dict[HealthChange, dict[str, Any]] = {
    "failing": health_context(
        "failing",
        FEED,
        URL,
        at=NOW,
        tz=TZ,
        since=NOW - timedelta(hours=7),
        failures=9,
        error=ERROR,
    ),
    "gone": health_context("gone", FEED, URL, at=NOW, tz=TZ, failures=1, error="HTTP 410"),
    "silent": health_context(
        "silent", FEED, URL, at=NOW, tz=TZ, since=NOW - timedelta(days=3), usual="3.5 hours"
    ),
    "recovered": health_context(
        "recovered", FEED, URL, at=NOW, tz=TZ, since=NOW - timedelta(days=2), was="silent"
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("change", list(PREVIOUS))
def test_health_templates_say_what_the_prose_said(change: HealthChange, fmt: Format) -> None:
    """The shipped health templates give the message the prose notice gave, in each format."""
    renderer = Renderer()
    title, lines = PREVIOUS[change]
    notice = queued_notice(
        renderer, "health", CONTEXTS[change], dedup_key="health:x", targets=["ops"]
    )
    before = renderer.render("notice", fmt, notice_context(title, "\n".join(lines)))
    assert notice_message(renderer, fmt, notice.title, notice.body) == before
    assert notice.title == before.title


def dead_row(i: int) -> OutboxRow:
    alert = bool(i % 3)
    return OutboxRow(
        id=i,
        kind="alert" if alert else "digest",
        dedup_key=f"event:{i}",
        target="desk (main)",
        status="dead",
        attempts=12,
        created_at=NOW + timedelta(minutes=i),
        next_attempt_at=NOW,
        hold=None,
        last_error=ERROR,
        title=f"Monument <{i}> unveiled" if alert else None,
        event_id=i if alert else None,
        story="kursk-kpa-monument" if alert else None,
        milestone="unveiling" if alert else None,
    )


def expected_dead_warning(rows: list[OutboxRow], attempts: int) -> tuple[str, str]:
    """What the dead-letter warning says: each event by its story, milestone and title."""
    many = len(rows) != 1
    messages = f"{len(rows)} message{'s' if many else ''}"
    lines = [
        f"{messages} to desk (main) {'were' if many else 'was'} given up after {attempts} "
        f"attempt{'s' if attempts != 1 else ''} or 2 days without success.",
        f"Last error: {rows[-1].last_error or 'unknown'}",
    ]
    for row in rows[:10]:
        label = f"{STORY}: Monument unveiled: " if row.story else ""
        what = row.title or row.kind
        lines.append(f"- {label}{what} ({row.kind}, queued {shown(row.created_at)})")
    if len(rows) > 10:
        lines.append(f"- and {len(rows) - 10} more")
    lines.append(
        "Once the target works again, `monitor deliver --retry-dead` sends them; "
        "`monitor history` lists the alerts."
    )
    return f"{messages} to desk (main) could not be delivered", "\n".join(lines)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("count", "attempts"),
    [(1, 1), (4, 12), (13, 12)],
    ids=["one-after-one-attempt", "some", "more-than-listed"],
)
def test_dead_letter_template_names_events_as_users_see_them(
    count: int, attempts: int, fmt: Format
) -> None:
    """The dead_letter warning names each event by its story, milestone and title (no
    id), in plural-correct words, in each format."""
    renderer = Renderer()
    rows = [dead_row(i) for i in range(1, count + 1)]
    stories = load_config(REPO / "config.yaml", env={}).stories
    context = dead_letter_context(
        "desk (main)", rows, max_attempts=attempts, max_age="2 days", tz=TZ, stories=stories
    )
    notice = queued_notice(renderer, "dead_letter", context, dedup_key="dead:x", targets=["ops"])
    title, body = expected_dead_warning(rows, attempts)
    expected = renderer.render("notice", fmt, notice_context(title, body))
    assert notice_message(renderer, fmt, notice.title, notice.body) == expected
    assert "event 1" not in notice.body


def test_notice_queued_as_prose_still_renders() -> None:
    """A notice queued with a prose body (by an older version) goes through `notice`."""
    message = notice_message(Renderer(), "text", "feed x is failing", "line one\n{not json}")
    assert message.title == "monitor: feed x is failing"
    assert message.body == "line one\n{not json}\n"


def test_health_override_changes_the_notice_sent(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """`templates.health` replaces what a failing feed's notice says."""
    desk = desk_for(
        [{"name": "ops", "url": receiver.url, "receive": ["health"]}],
        health={"failing_after": "1h"},
        templates={
            "health": {
                "title": "{{ change | upper }}: {{ feed }}",
                "text": "{{ feed }} {{ change }} after {{ failures }} tries: {{ error }}",
            }
        },
    )
    for _ in range(6):
        now = desk.clock()
        desk.store.record_failure(
            "wire", "HTTP 503", 503, now=now, next_check=now + timedelta(minutes=15)
        )
        desk.health.check()
        desk.deliver()
        desk.clock.advance(minutes=15)
    [notice] = receiver.messages()
    assert notice["title"] == "FAILING: wire"
    assert notice["message"].strip() == "wire failing after 5 tries: HTTP 503"


def test_dead_letter_override_changes_the_warning_sent(
    desk_for: Callable[..., Desk], receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """`templates.dead_letter` replaces what the warning about dead deliveries says."""
    desk = desk_for(
        [{"name": "desk", "url": receiver.url}, {"name": "ops", "url": second.url}],
        delivery={"max_attempts": 2},
        templates={
            "dead_letter": {
                "title": "{{ count }} lost on {{ target }}",
                "text": "{% for r in rows %}{{ r.kind }} of event {{ r.event_id }}{% endfor %}",
            }
        },
    )
    receiver.down = True
    desk.news.report(*MILESTONES[2])
    desk.deliver(ignore_backoff=True)
    assert desk.deliver(ignore_backoff=True).dead == 1
    [warning] = second.messages()[1:]
    assert warning["title"] == "1 lost on desk"
    assert re.fullmatch(r"alert of event \d+", warning["message"].strip())


@pytest.mark.parametrize("kind", ["health", "dead_letter"])
def test_bad_override_of_a_new_kind_fails_at_load(tmp_path: Path, kind: str) -> None:
    """An override naming something its context lacks is a config error, naming the key."""
    path = write_config(
        tmp_path, {"wire": "https://wire.example/rss"}, templates={kind: {"text": "{{ nope }}"}}
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == f"templates.{kind}.text"


def test_notice_is_queued_even_when_its_title_template_fails() -> None:
    """An override that fails on real data does not lose the notice: it is queued under
    its kind, and the failure surfaces when it is sent (and retried like a failed send)."""
    renderer = Renderer({"health": {"title": "{{ 1 // failures }}"}})
    notice = queued_notice(
        renderer, "health", CONTEXTS["silent"], dedup_key="health:x", targets=["ops"]
    )
    assert notice.title == "health"
    with pytest.raises(ZeroDivisionError):
        notice_message(renderer, "text", notice.title, notice.body)
