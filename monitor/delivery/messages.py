"""What each message says: contexts for the templates, built from what the store knows.

Alerts, updates and summaries are rendered at send time from the store, so a late send
carries the reports that came in while it waited. Times are shown in the target's time
zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from monitor.match.rules import Story
from monitor.store.views import DigestMaterial, EventView, SourceView, UpdateAlertView, UpdateView
from monitor.templates.render import Format, Message, Renderer

__all__ = [
    "UPDATE_LABEL",
    "Message",
    "alert_context",
    "digest_context",
    "local_time",
    "milestone_label",
    "notice_context",
    "render_test",
    "summary_context",
    "update_context",
]

UPDATE_LABEL = "Update"


def milestone_label(story: Story | None, milestone: str) -> str:
    found = story.milestone(milestone) if story else None
    return found.label if found else milestone.replace("_", " ").capitalize()


def local_time(moment: datetime, tz: tzinfo) -> str:
    """`2026-11-27 14:05 MSK`: minutes are enough for people."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z").strip()


def alert_context(event: EventView, story: Story | None, tz: tzinfo) -> dict[str, Any]:
    """The names an alert template can use (see render.SAMPLES["alert"])."""
    return {
        "label": milestone_label(story, event.milestone),
        "milestone": event.milestone,
        **_report_context(event, story, tz),
    }


def update_context(update: UpdateAlertView, story: Story | None, tz: tzinfo) -> dict[str, Any]:
    """The names an update template can use (see render.SAMPLES["update"]): an alert's,
    labelled as an update, with no milestone."""
    return {"label": UPDATE_LABEL, "milestone": None, **_report_context(update, story, tz)}


def _report_context(
    event: EventView | UpdateAlertView, story: Story | None, tz: tzinfo
) -> dict[str, Any]:
    first = event.sources[0] if event.sources else None
    outlet = event.outlet or (first.outlet or first.feed if first else None)
    others = len(event.outlets) - 1
    languages = len(event.languages)
    return {
        "story": story.name if story else event.story,
        "story_id": event.story,
        "title": event.title,
        "outlet": outlet,
        "url": event.url,
        "created_at": local_time(event.created_at, tz),
        "terms": sorted({term for found in event.terms.values() for term in found}),
        "also": {"outlets": others, "languages": languages} if others > 0 else None,
        "sources": [_source(s, tz) for s in event.sources[1:]],
    }


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
    return {
        "story": story.name if story else story_id,
        "story_id": story_id,
        "since": local_time(since, tz),
        "until": local_time(until, tz),
        "date": until.astimezone(tz).date().isoformat(),
        "updates": [_update(u, tz) for u in material.updates],
        "reports": [
            {**alert_context(event, story, tz), "reports": [_source(s, tz) for s in sources]}
            for event, sources in material.reports
        ],
        "timeline": [alert_context(event, story, tz) for event in material.timeline],
    }


def summary_context(target: str, limit: int, alerts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The names a summary template can use (see render.SAMPLES["summary"]); `alerts`
    are the contexts of the alerts and updates it carries."""
    return {"target": target, "count": len(alerts), "limit": limit, "alerts": list(alerts)}


def notice_context(title: str, body: str) -> dict[str, Any]:
    return {"title": title, "lines": [line for line in body.splitlines() if line.strip()]}


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
