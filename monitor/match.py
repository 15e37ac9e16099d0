"""Interim matcher; replaced by the matching work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor.rules import Group, Story


@dataclass(frozen=True)
class Verdict:
    story: str | None = None
    milestone: str | None = None
    terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    why: str = ""

    @property
    def relevant(self) -> bool:
        return self.story is not None


def normalize(text: str) -> str:
    return text.casefold().replace("ё", "е")


def _hits(group: Group, text: str) -> tuple[str, ...] | None:
    if group.none is not None and group.none.search(text):
        return None
    found: list[str] = []
    for pattern in group.all:
        m = pattern.search(text)
        if m is None:
            return None
        found.append(m.group(0))
    return tuple(found)


def prefilter(title: str, summary: str, stories: Sequence[Story]) -> bool:
    return True


def classify(title: str, summary: str, stories: Sequence[Story]) -> Verdict:
    text = normalize(f"{title}\n{summary}")
    for story in stories:
        watch = _hits(story.watch, text)
        if watch is None:
            continue
        for m in story.milestones:
            hits = _hits(m.group, text)
            if hits is not None:
                return Verdict(story.id, m.key, {"watch": watch, m.key: hits}, "milestone")
        return Verdict(story.id, None, {"watch": watch}, "story")
    return Verdict()
