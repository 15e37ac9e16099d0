"""Interim rule compiler (any/all/none with trailing wildcards); replaced by the matching work."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from monitor.errors import ConfigError


@dataclass(frozen=True)
class Group:
    all: tuple[re.Pattern[str], ...]
    none: re.Pattern[str] | None


@dataclass(frozen=True)
class Milestone:
    key: str
    label: str
    group: Group


@dataclass(frozen=True)
class Story:
    id: str
    name: str
    watch: Group
    milestones: tuple[Milestone, ...]

    def milestone(self, key: str) -> Milestone | None:
        return next((m for m in self.milestones if m.key == key), None)


def _terms(raw: Any, key: str) -> re.Pattern[str]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("must be a non-empty list of terms", key=key)
    parts = []
    for term in raw:
        text = re.escape(str(term).casefold().rstrip("*"))
        parts.append(text + (r"\w*" if str(term).endswith("*") else r"\b"))
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + ")")


def _group(raw: Any, key: str) -> Group:
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping", key=key)
    alls = raw.get("all", [])
    if "any" in raw:
        alls = [*alls, {"any": raw["any"]}]
    compiled = tuple(_terms(g.get("any"), f"{key}.all[{i}].any") for i, g in enumerate(alls))
    none = _terms(raw["none"], f"{key}.none") if "none" in raw else None
    return Group(compiled, none)


def compile_stories(raw: object, key: str = "stories") -> tuple[Story, ...]:
    if not isinstance(raw, list):
        raise ConfigError("must be a list of stories", key=key)
    stories = []
    for i, s in enumerate(raw):
        k = f"{key}[{i}]"
        milestones = tuple(
            Milestone(name, m.get("label", name), _group(m, f"{k}.milestones.{name}"))
            for name, m in s.get("milestones", {}).items()
        )
        stories.append(
            Story(s["id"], s.get("name", s["id"]), _group(s["watch"], f"{k}.watch"), milestones)
        )
    return tuple(stories)
