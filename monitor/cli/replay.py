"""`monitor replay`: what the current rules would make of what was already seen.

A user who edits keywords wants to see the effect at once, on real items, without
sending anything. This re-classifies stored items (pure: items and rules in, a report
out) and says which milestones would alert now, which are already recorded events,
and which items changed verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from monitor.match.classify import Verdict, classify
from monitor.match.rules import Story
from monitor.store.views import StoredItem


@dataclass(slots=True)
class MilestoneGroup:
    """Every stored report the current rules give one (story, milestone)."""

    story: str
    milestone: str
    reports: list[tuple[StoredItem, Verdict]] = field(default_factory=list)
    recorded_at: datetime | None = None
    """When the event was created, if it already exists: then nothing new would alert."""

    @property
    def first(self) -> StoredItem:
        return self.reports[0][0]

    @property
    def would_alert(self) -> bool:
        """Whether replaying would create a new, alerting event."""
        return self.recorded_at is None and not self.first.silent


@dataclass(slots=True)
class Change:
    """An item whose verdict under the current rules differs from the stored one."""

    item: StoredItem
    verdict: Verdict


@dataclass(slots=True)
class ReplayReport:
    items: int = 0
    relevant: int = 0
    milestones: list[MilestoneGroup] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


def replay(
    items: Iterable[StoredItem],
    stories: Sequence[Story],
    events: Mapping[tuple[str, str], datetime],
) -> ReplayReport:
    """Classify `items` (oldest first) with `stories`, against the `events` recorded."""
    report = ReplayReport()
    groups: dict[tuple[str, str], MilestoneGroup] = {}
    for item in items:
        report.items += 1
        verdict = classify(item.title, item.summary, stories)
        if verdict.story is not None:
            report.relevant += 1
        if (verdict.story, verdict.milestone) != (item.story, item.milestone):
            report.changes.append(Change(item, verdict))
        if verdict.story is None or verdict.milestone is None:
            continue
        key = (verdict.story, verdict.milestone)
        group = groups.get(key)
        if group is None:
            group = groups[key] = MilestoneGroup(*key, recorded_at=events.get(key))
            report.milestones.append(group)
        group.reports.append((item, verdict))
    return report
