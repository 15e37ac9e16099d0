"""What each message says: contexts for the templates, built from what the store knows.

Alerts, updates and summaries are rendered at send time from the store, so a late send
carries the reports that came in while it waited. Times are shown in the target's time
zone.

Health notices and dead-letter warnings are decided when they happen and queued with
their context (`queued_notice`), so each is rendered at send time through its own
template kind (`health`, `dead_letter`) in its target's format, overridable like the
others. Their times are written when they are queued, in `digest.timezone`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Literal

from monitor.core.safetext import cap, cleaned
from monitor.match.rules import Story
from monitor.store.views import (
    DEFAULT_TIER,
    DigestMaterial,
    EventView,
    Notice,
    OutboxRow,
    SourceView,
    UpdateAlertView,
    UpdateView,
)
from monitor.templates.render import Format, Message, Renderer, plural

__all__ = [
    "LEAD_MAX_CHARS",
    "UPDATE_LABEL",
    "Message",
    "alert_context",
    "alert_data",
    "corroboration",
    "corroboration_line",
    "dead_letter_context",
    "digest_context",
    "first_reports",
    "health_context",
    "lead_of",
    "local_time",
    "milestone_label",
    "notice_context",
    "notice_message",
    "queued_notice",
    "render_test",
    "summary_context",
    "summary_shown",
    "update_context",
]

UPDATE_LABEL = "Update"


def milestone_label(story: Story | None, milestone: str) -> str:
    found = story.milestone(milestone) if story else None
    return found.label if found else milestone.replace("_", " ").capitalize()


def local_time(moment: datetime, tz: tzinfo) -> str:
    """`2026-11-27 14:05 MSK`: minutes are enough for people."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z").strip()


def alert_context(
    event: EventView, story: Story | None, tz: tzinfo, *, explain: bool = False
) -> dict[str, Any]:
    """The names an alert template can use (see render.SAMPLES["alert"]); `explain`
    is the target's wish to see the matched terms."""
    return {
        "label": milestone_label(story, event.milestone),
        "milestone": event.milestone,
        **_report_context(event, story, tz, explain),
    }


def update_context(
    update: UpdateAlertView, story: Story | None, tz: tzinfo, *, explain: bool = False
) -> dict[str, Any]:
    """The names an update template can use (see render.SAMPLES["update"]): an alert's,
    labelled as an update, with no milestone."""
    return {
        "label": UPDATE_LABEL,
        "milestone": None,
        **_report_context(update, story, tz, explain),
    }


LEAD_MAX_CHARS = 200
"""The longest lead an alert shows: a first sentence longer than this is cut."""

# A sentence ends at . ! ? or … (and any closing quotes or brackets), before a space and
# a capital letter, a digit or an opening quote: "1.5 million" and "e.g. the" go on.
_SENTENCE_END = re.compile(r"[.!?…][\"'»”’)\]]*\s+(?=[\"'«“‘(\[]?[^\W_a-zа-яё])")
_INITIAL = re.compile(r"(?:^|\s)\w\.$")
_LEAD_SPACES = re.compile(r"\s+")
_LEAD_TRIM = " \t\n.,;:!?-–—|·•"


def lead_of(title: str, text: str, limit: int = LEAD_MAX_CHARS) -> str | None:
    """What a report says first, for an alert under its headline: the first sentence
    of its text, or its first `limit` characters cut at a word with an ellipsis.

    A text that starts with the headline (feeds often repeat it) is read from after it,
    so the lead never repeats the title; None when nothing is left, or no text at all.
    """
    flat = _LEAD_SPACES.sub(" ", text).strip()
    heading = _LEAD_SPACES.sub(" ", title).strip()
    if heading and flat[: len(heading)].casefold() == heading.casefold():
        flat = flat[len(heading) :].lstrip(_LEAD_TRIM)
    if not flat or flat.casefold() == heading.casefold():
        return None
    for end in _SENTENCE_END.finditer(flat):
        sentence = flat[: end.start() + 1]
        if len(sentence) > limit:
            break
        if _INITIAL.search(sentence):  # "V. Putin": an initial, not a sentence's end
            continue
        return flat[: end.end()].rstrip()
    return cap(flat, limit)


def _report_context(
    event: EventView | UpdateAlertView, story: Story | None, tz: tzinfo, explain: bool
) -> dict[str, Any]:
    first = event.sources[0] if event.sources else None
    outlet = event.outlet or (first.outlet or first.feed if first else None)
    others = len(event.outlets) - 1
    languages = len(event.languages)
    return {
        "story": story.name if story else event.story,
        "story_id": event.story,
        "title": event.title,
        "lead": lead_of(event.title, event.summary),
        "outlet": outlet,
        "url": event.url,
        "created_at": local_time(event.created_at, tz),
        "published": local_time(event.published, tz) if event.published else None,
        "explain": explain,
        "terms": sorted({term for found in event.terms.values() for term in found}),
        "also": {"outlets": others, "languages": languages} if others > 0 else None,
        "sources": [_source(s, tz) for s in event.sources[1:]],
        "corroboration": corroboration(event.sources, tz),
    }


def alert_data(event: EventView | UpdateAlertView, story: Story | None) -> dict[str, Any]:
    """The alert or update as one object for a system to route on: what a json:// or
    form:// target receives under `alert`, beside apprise's title and message. Times
    are ISO 8601 in UTC; `sources` are all its reports, first first."""
    context = _report_context(event, story, UTC, explain=False)
    data: dict[str, Any] = cleaned(
        {
            "kind": "milestone" if event.milestone is not None else "update",
            "story": event.story,
            "story_name": context["story"],
            "milestone": event.milestone,
            "label": (
                milestone_label(story, event.milestone)
                if event.milestone is not None
                else UPDATE_LABEL
            ),
            "title": event.title,
            "url": event.url,
            "lead": context["lead"],
            "outlet": context["outlet"],
            "published": _iso(event.published),
            "first_seen": _iso(event.created_at),
            "sources": [
                {
                    "outlet": source.outlet or source.feed,
                    "url": source.url,
                    "lang": source.lang,
                    "tier": source.tier,
                    "seen_at": _iso(source.seen_at),
                }
                for source in event.sources
            ],
        }
    )
    return data


def _iso(moment: datetime | None) -> str | None:
    """`2026-11-30T07:02:00Z`, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def corroboration(sources: Sequence[SourceView], tz: tzinfo) -> dict[str, Any] | None:
    """Who reported first and when, then each other outlet in order of arrival (its
    first report; the first `SHOWN_OUTLETS`, `more` counting the rest), with the count
    of outlets and languages: "First: Kursk governor (official) 10:02; TASS (agency)
    10:40, RIA Novosti (agency) 11:05; 3 outlets, 2 languages". An outlet is the one a
    report names, else its feed. None without reports."""
    if not sources:
        return None
    day = sources[0].seen_at.astimezone(tz).date()
    reporters = [
        {
            "outlet": source.outlet or source.feed,
            "feed": source.feed,
            "url": source.url,
            "lang": source.lang,
            "tier": source.tier,
            "at": _clock_time(source.seen_at, tz, day),
            "seen_at": local_time(source.seen_at, tz),
        }
        for source in first_reports(sources)
    ]
    languages = dict.fromkeys(s.lang.split("-")[0] for s in sources if s.lang)
    return {
        "first": reporters[0],
        "others": reporters[1 : 1 + SHOWN_OUTLETS],
        "more": max(len(reporters) - 1 - SHOWN_OUTLETS, 0),
        "outlets": len(reporters),
        "languages": len(languages),
    }


SHOWN_OUTLETS = 10
"""Outlets a corroboration line names after the first; `more` counts the rest. The day
a story breaks big, hundreds carry a milestone before an alert held for confirmation
(or folded into a summary, or sent by `monitor once` after its cycle) is written: the
surge farm's alerts named 400, 25 KB of Markdown each."""


def first_reports(sources: Sequence[SourceView]) -> list[SourceView]:
    """Each outlet's first report, in order of arrival: the outlet a report names, else
    its feed (as `EventView.outlets` counts them)."""
    firsts: dict[str, SourceView] = {}
    for source in sources:
        firsts.setdefault(source.outlet or source.feed, source)
    return list(firsts.values())


def corroboration_line(found: dict[str, Any]) -> str:
    """A `corroboration` as one plain line, as the text template writes it."""

    def named(reporter: dict[str, Any]) -> str:
        tier = f" ({reporter['tier']})" if reporter["tier"] != DEFAULT_TIER else ""
        return f"{reporter['outlet']}{tier} {reporter['at']}"

    line = f"First: {named(found['first'])}"
    if found["others"]:
        line += "; " + ", ".join(named(other) for other in found["others"])
    if found["more"]:
        line += f", +{found['more']} more"
    line += f"; {plural(found['outlets'], 'outlet')}"
    if found["languages"]:
        line += f", {plural(found['languages'], 'language')}"
    return line


def _clock_time(moment: datetime, tz: tzinfo, day: date) -> str:
    """`10:40` on the first report's day, `28 Nov 10:40` on another."""
    local = moment.astimezone(tz)
    return local.strftime("%H:%M" if local.date() == day else "%d %b %H:%M")


def digest_context(
    story: Story | None,
    story_id: str,
    material: DigestMaterial,
    *,
    since: datetime,
    until: datetime,
    tz: tzinfo,
) -> dict[str, Any]:
    """The names a digest template can use (see render.SAMPLES["digest"])."""
    updates, update_count, updates_hidden = _listed(material.updates, tz)
    # Each event's context once: a milestone's later reports are listed under its event,
    # which the timeline has too, and a context reads every report of the event.
    timeline = {event.id: alert_context(event, story, tz) for event in material.timeline}
    return {
        "story": story.name if story else story_id,
        "story_id": story_id,
        "since": local_time(since, tz),
        "until": local_time(until, tz),
        "date": until.astimezone(tz).date().isoformat(),
        "updates": updates,
        "update_count": update_count,
        "updates_hidden": updates_hidden,
        "reports": [_later(timeline[event.id], reports, tz) for event, reports in material.reports],
        "timeline": list(timeline.values()),
    }


DIGEST_SHOWN = 20
"""Reports a digest lists in each of its lists (the updates, each milestone's later
reports); the rest are counted. On the day a story breaks big a milestone has
thousands of later reports: listed one by one, the farm's surge made a digest of 1.4 MB
of text, which no one reads and no chat message holds."""


def _later(event: dict[str, Any], reports: Sequence[UpdateView], tz: tzinfo) -> dict[str, Any]:
    """An event's context (`alert_context`) with the later reports a digest lists."""
    listed, count, hidden = _listed(reports, tz)
    return {**event, "reports": listed, "count": count, "hidden": hidden}


def _listed(reports: Sequence[UpdateView], tz: tzinfo) -> tuple[list[dict[str, Any]], int, int]:
    """The reports a digest lists, at most `DIGEST_SHOWN`, in the order they came: all
    of them, or else those the most links carried; the reports in all, rewrites
    included; and how many of them are not listed (a listed report's rewrites are its
    "+N more", not among these)."""
    shown = list(reports)
    if len(shown) > DIGEST_SHOWN:
        widest = sorted(range(len(shown)), key=lambda i: -shown[i].more)[:DIGEST_SHOWN]
        shown = [shown[i] for i in sorted(widest)]
    count = sum(1 + r.more for r in reports)
    return [_update(r, tz) for r in shown], count, count - sum(1 + r.more for r in shown)


def summary_context(
    target: str, limit: int, alerts: Sequence[dict[str, Any]], count: int
) -> dict[str, Any]:
    """The names a summary template can use (see render.SAMPLES["summary"]); `alerts`
    are the contexts of the alerts and updates it lists (`summary_shown`), `count` how
    many it carries."""
    return {
        "target": target,
        "count": count,
        "limit": limit,
        "alerts": list(alerts),
        "hidden": count - len(alerts),
    }


SUMMARY_SHOWN = 20
"""Alerts and updates a summary lists; the rest are counted. Every milestone alert is
listed: a story has a handful of milestones, and a surge of updates must not hide one."""


Folded = tuple[int | None, int | None]
"""What a summary carries: (event id, None) for a milestone alert, (None, item id) for
an update (`Store.folded`)."""


def summary_shown(folded: Sequence[Folded]) -> list[Folded]:
    """Of what a summary carries (oldest first), what it lists, in the same order: every
    milestone alert, and the oldest updates up to `SUMMARY_SHOWN` in all."""
    room = max(SUMMARY_SHOWN - sum(1 for e, _ in folded if e is not None), 0)
    shown: list[Folded] = []
    for entry in folded:
        if entry[0] is not None:
            shown.append(entry)
        elif room:
            shown.append(entry)
            room -= 1
    return shown


def notice_context(title: str, body: str) -> dict[str, Any]:
    return {"title": title, "lines": [line for line in body.splitlines() if line.strip()]}


HealthChange = Literal["failing", "gone", "silent", "unmatched", "recovered"]
NoticeKind = Literal["health", "dead_letter"]
_NOTICE_KINDS: dict[str, NoticeKind] = {"health": "health", "dead_letter": "dead_letter"}
SHOWN_DEAD = 10
"""Dead deliveries listed one by one in a warning; the rest are counted."""


def health_context(
    change: HealthChange,
    feed: str,
    url: str,
    *,
    at: datetime,
    tz: tzinfo,
    since: datetime | None = None,
    failures: int = 0,
    error: str | None = None,
    usual: str | None = None,
    was: str | None = None,
) -> dict[str, Any]:
    """The names a health template can use (see render.SAMPLES["health"]); every name is
    always there (None where it does not apply), so an override is checked against all."""
    return {
        "change": change,
        "feed": feed,
        "url": url,
        "at": local_time(at, tz),
        "since": local_time(since, tz) if since is not None else None,
        "failures": failures,
        "error": error or "unknown",
        "usual": usual,
        "was": was,
    }


def dead_letter_context(
    target: str,
    rows: Sequence[OutboxRow],
    *,
    max_attempts: int,
    max_age: str,
    tz: tzinfo,
    stories: Sequence[Story] = (),
) -> dict[str, Any]:
    """The names a dead_letter template can use (see render.SAMPLES["dead_letter"]):
    `rows` are the dead deliveries worth telling, oldest first; each is named by what a
    user sees of its event (`label`: the story and milestone, as alerts name them)."""
    return {
        "target": target,
        "count": len(rows),
        "max_attempts": max_attempts,
        "max_age": max_age,
        "error": (rows[-1].last_error if rows else None) or "unknown",
        "rows": [
            {
                "kind": row.kind,
                "queued": local_time(row.created_at, tz),
                "title": row.title,
                "label": event_label(stories, row.story, row.milestone),
                "event_id": row.event_id,
            }
            for row in rows[:SHOWN_DEAD]
        ],
        "more": max(len(rows) - SHOWN_DEAD, 0),
    }


def event_label(stories: Sequence[Story], story: str | None, milestone: str | None) -> str | None:
    """`Kursk monument: Monument unveiled`, the names an event goes by in alerts; the
    story's name alone for an update; None for no event (a digest, a notice)."""
    found = next((s for s in stories if s.id == story), None)
    if found is None:
        return story
    label = next((m.label for m in found.milestones if m.key == milestone), None)
    return f"{found.name}: {label}" if label else found.name


def queued_notice(
    renderer: Renderer,
    kind: NoticeKind,
    context: dict[str, Any],
    *,
    dedup_key: str,
    targets: Sequence[str],
) -> Notice:
    """A notice to queue: listed (in status, history) under its rendered title, its
    context kept in the body so it is rendered for each target when sent."""
    try:
        title = renderer.title(kind, context)
    except Exception:  # an override's fault must not lose the notice: the send reports it
        title = kind.replace("_", " ")
    return Notice(
        dedup_key=dedup_key,
        targets=targets,
        title=title,
        body=json.dumps({"template": kind, "context": context}, ensure_ascii=False),
    )


def notice_message(renderer: Renderer, fmt: Format, title: str | None, body: str | None) -> Message:
    """A queued notice rendered for a target: through its own template kind when it was
    queued with its context, else (queued by an older version) through `notice`."""
    queued = _queued(body or "")
    if queued is not None:
        kind, context = queued
        return renderer.render(kind, fmt, context)
    return renderer.render("notice", fmt, notice_context(title or "message", body or ""))


def _queued(body: str) -> tuple[NoticeKind, dict[str, Any]] | None:
    if not body.startswith("{"):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("context"), dict):
        return None
    kind = _NOTICE_KINDS.get(str(data.get("template")))
    return (kind, data["context"]) if kind is not None else None


def render_test(renderer: Renderer, target: str, fmt: Format) -> Message:
    body = f"This is a test from monitor to {target}. If you can read it, alerts will reach you."
    return renderer.render("notice", fmt, notice_context("test notification", body))


def _source(source: SourceView | UpdateView, tz: tzinfo) -> dict[str, Any]:
    return {
        "title": source.title,
        "outlet": source.outlet or source.feed,
        "url": source.url,
        "lang": source.lang,
        "seen_at": local_time(source.seen_at, tz),
    }


def _update(update: UpdateView, tz: tzinfo) -> dict[str, Any]:
    return {**_source(update, tz), "more": update.more}
