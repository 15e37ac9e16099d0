"""What an alert says: rendered from an event at send time, so late sends are current."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.rules import Story
from monitor.store import EventView


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered notification: a title and a plain-text body."""

    title: str
    body: str


def milestone_label(story: Story | None, milestone: str) -> str:
    found = story.milestone(milestone) if story else None
    return found.label if found else milestone.replace("_", " ").capitalize()


def render_alert(event: EventView, story: Story | None) -> Message:
    """The alert for an event: milestone, story, headline, outlet, link, matched terms."""
    label = milestone_label(story, event.milestone)
    story_name = story.name if story else event.story
    first = event.sources[0] if event.sources else None
    outlet = event.outlet or (first.outlet or first.feed if first else None)
    lines = [event.title]
    if outlet:
        lines.append(f"Outlet: {outlet}")
    if event.url:
        lines.append(f"Link: {event.url}")
    terms = sorted({term for found in event.terms.values() for term in found})
    if terms:
        lines.append("Matched: " + ", ".join(terms))
    others = len(event.outlets) - 1
    if others > 0:
        languages = len(event.languages)
        lines.append(
            f"Also reported by {others} other outlet{'s' if others != 1 else ''}"
            + (f" in {languages} language{'s' if languages != 1 else ''}" if languages else "")
        )
    return Message(title=f"{label}: {story_name}", body="\n".join(lines))


def render_feed_gone(feed: str, url: str) -> Message:
    """The notice that a feed answered 410 Gone and is no longer polled."""
    return Message(
        title=f"Feed gone: {feed}",
        body=(
            f"{url} answered 410 Gone, so monitor has stopped polling the feed {feed!r}.\n"
            "Remove it from the config or give it a new URL to resume; "
            "`monitor once --force` checks it again."
        ),
    )


def render_test(target: str) -> Message:
    return Message(
        title="monitor: test notification",
        body=f"This is a test from monitor to {target}. If you can read it, alerts will reach you.",
    )
