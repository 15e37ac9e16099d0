"""The matching stage: a title and a summary in, a `Verdict` out. Pure: no IO, no clock.

How a text is judged against the stories, in order:

1. Title and summary are normalised (`normalize`) and read as one text, the title
   being a sentence of its own.
2. The first story whose every `watch` group matches and none of whose `watch.none`
   terms occurs is the text's story (stories are tried in config order; the first
   match wins). No such story: the text is not relevant.
3. The story's milestones are tried in its `order` (latest stage first unless the
   config says otherwise); the first that holds is the verdict's milestone. A
   milestone holds when each of its `event` groups has a term that is not cancelled,
   in one sentence that also holds a term of each of its other groups, and none of its
   `none` terms occurs anywhere.
4. An event term is cancelled by a modality cue of the story (will be, not yet,
   postponed, 예정 ...) in the same clause, at most `BEFORE_WORDS` words before it or
   `AFTER_WORDS` words after it, or by one of the milestone's `unless` terms anywhere
   in the same clause. Clauses are cut as `monitor.textnorm.Layout` says: at sentence
   ends, colons, brackets and dashes, and at a comma only before a conjunction; a
   comma before which/который/який opens an island of its own. So "a monument, which
   will stand in the park, was unveiled" is an unveiling and "the monument will be
   unveiled" is not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from monitor.rules import Hit, Milestone, Story, TermSet
from monitor.textnorm import Layout, Origin, fold, normalize

__all__ = ["Verdict", "classify", "classify_stream", "explain", "normalize", "prefilter"]

BEFORE_WORDS = 3
"""A cue before an event word cancels it with at most this many words between them."""
AFTER_WORDS = 8
"""A cue after an event word cancels it with at most this many words between them.

Wider than `BEFORE_WORDS`: "Unveiling of Kursk monument to North Korean troops set
for May 9" puts the cue after a long noun phrase; 예정 and 계획 always come last."""


@dataclass(frozen=True)
class Verdict:
    """What the matching stage says about one text.

    `terms` maps a rule path (`watch.all[0]`, `milestones.unveiling.event`) to the
    terms that matched there, quoted as the text wrote them.
    """

    story: str | None
    milestone: str | None
    terms: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    why: str = ""

    @property
    def relevant(self) -> bool:
        """True when the text is about a story (with or without a milestone)."""
        return self.story is not None


# --- the text being judged -------------------------------------------------------------


class _Doc:
    """Title and summary, normalised and joined by a line break; quotes matches as written."""

    def __init__(self, title: str, summary: str) -> None:
        self._raw = (title, summary)
        self._head = normalize(title)
        self.text = f"{self._head}\n{normalize(summary)}"
        self._layout: Layout | None = None
        self._origins: tuple[Origin, Origin] | None = None

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = Layout.of(self.text)
        return self._layout

    def quote(self, start: int, end: int) -> str:
        """The original wording of `text[start:end]`."""
        if self._origins is None:
            self._origins = (Origin(self._raw[0]), Origin(self._raw[1]))
        if start < len(self._head):
            return self._origins[0].quote(start, end)
        offset = len(self._head) + 1
        return self._origins[1].quote(start - offset, end - offset)


# --- judging: one trace serves both `classify` and `explain` ---------------------------


@dataclass
class _Event:
    group: TermSet
    hit: Hit
    blocker: tuple[str, TermSet, Hit] | None  # ("modality" | "unless", its set, its hit)


@dataclass
class _MilestoneTrace:
    milestone: Milestone
    excluded: Hit | None = None
    events: list[_Event] = field(default_factory=list)
    groups: list[tuple[TermSet, list[Hit]]] = field(default_factory=list)
    sentence: int | None = None  # the sentence where it holds, if it does


@dataclass
class _StoryTrace:
    story: Story
    groups: list[tuple[TermSet, list[Hit]]] = field(default_factory=list)
    missing: TermSet | None = None
    excluded: Hit | None = None
    milestones: list[_MilestoneTrace] = field(default_factory=list)

    @property
    def relevant(self) -> bool:
        return self.missing is None and self.excluded is None

    @property
    def fired(self) -> _MilestoneTrace | None:
        return next((m for m in self.milestones if m.sentence is not None), None)


def _trace_story(doc: _Doc, story: Story, full: bool) -> _StoryTrace:
    trace = _StoryTrace(story)
    text = doc.text
    if not full:  # the cheap path that unrelated texts take
        for group in story.watch.groups:
            if not group.search(text):
                trace.missing = group
                return trace
    for group in story.watch.groups:
        hits = group.hits(text)
        trace.groups.append((group, hits))
        if not hits and trace.missing is None:
            trace.missing = group
    trace.excluded = story.watch.exclude.first(text) if story.watch.exclude else None
    if not trace.relevant and not full:
        return trace
    cues = story.modality.hits(text) if story.modality else []
    for milestone in story.order:
        result = _trace_milestone(doc, milestone, story.modality, cues, full)
        trace.milestones.append(result)
        if result.sentence is not None and not full:
            break
    return trace


def _trace_milestone(
    doc: _Doc, milestone: Milestone, modality: TermSet | None, cues: list[Hit], full: bool
) -> _MilestoneTrace:
    trace = _MilestoneTrace(milestone)
    text = doc.text
    found = [(group, group.hits(text)) for group in milestone.event]
    if not full and not all(hits for _, hits in found):
        return trace
    layout = doc.layout
    unless = milestone.unless.hits(text) if milestone.unless else []
    cancellers = _Cancellers(layout, modality, cues, milestone.unless, unless)
    sentences: set[int] | None = None
    for group, hits in found:
        free: set[int] = set()
        for hit in hits:
            blocker = cancellers.of(hit)
            trace.events.append(_Event(group, hit, blocker))
            if blocker is None:
                free.add(layout.sentence(hit[0]))
        sentences = free if sentences is None else sentences & free
    for group in milestone.groups:
        group_hits = group.hits(text)
        trace.groups.append((group, group_hits))
        if sentences is not None:
            sentences &= {layout.sentence(h[0]) for h in group_hits}
    trace.excluded = milestone.exclude.first(text) if milestone.exclude else None
    if sentences and trace.excluded is None:
        trace.sentence = min(sentences)
    return trace


@dataclass(frozen=True)
class _Cancellers:
    """What can cancel an event word in one text: the story's cues, the milestone's `unless`."""

    layout: Layout
    modality: TermSet | None
    cues: list[Hit]
    unless: TermSet | None
    unless_hits: list[Hit]

    def of(self, hit: Hit) -> tuple[str, TermSet, Hit] | None:
        """What cancels `hit`, if anything: a nearby cue, or an `unless` term in its clause."""
        cue = _cancelling(hit, self.cues, self.layout, BEFORE_WORDS, AFTER_WORDS)
        if cue is not None and self.modality is not None:
            return ("modality", self.modality, cue)
        other = _cancelling(hit, self.unless_hits, self.layout, None, None)
        if other is not None and self.unless is not None:
            return ("unless", self.unless, other)
        return None


def _cancelling(
    hit: Hit, cues: list[Hit], layout: Layout, before: int | None, after: int | None
) -> Hit | None:
    """The first cue in `hit`'s clause within the word windows (None: the whole clause)."""
    clause = layout.clause(hit[0])
    first, last = layout.word(hit[0]), layout.word(hit[1] - 1)
    for cue in cues:
        if layout.clause(cue[0]) != clause:
            continue
        cue_first, cue_last = layout.word(cue[0]), layout.word(cue[1] - 1)
        if cue_last < first:
            gap, limit = first - cue_last - 1, before
        elif cue_first > last:
            gap, limit = cue_first - last - 1, after
        else:
            return cue  # the cue is inside the event word (공개한다) or overlaps it
        if limit is None or gap <= limit:
            return cue
    return None


# --- verdicts ----------------------------------------------------------------------------


def _quotes(doc: _Doc, hits: Iterable[Hit]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(doc.quote(h[0], h[1]) for h in hits))


def _verdict(doc: _Doc, trace: _StoryTrace) -> Verdict:
    terms = {group.path: _quotes(doc, hits) for group, hits in trace.groups}
    fired = trace.fired
    if fired is None:
        return Verdict(trace.story.id, None, MappingProxyType(terms), _why_no_milestone(doc, trace))
    layout = doc.layout
    for group in fired.milestone.event:
        here = [
            e.hit
            for e in fired.events
            if e.group is group
            and e.blocker is None
            and layout.sentence(e.hit[0]) == fired.sentence
        ]
        terms[group.path] = _quotes(doc, here)
    for group, hits in fired.groups:
        here = [h for h in hits if layout.sentence(h[0]) == fired.sentence]
        terms[group.path] = _quotes(doc, here)
    said = [terms[g.path][0] for g in fired.milestone.event]
    others = [q[0] for g, _ in fired.groups if (q := terms[g.path])]
    beside = f" with {_list(others)}" if others else ""
    why = f"{fired.milestone.label}: {_list(list(dict.fromkeys(said)))}{beside} in one sentence."
    return Verdict(trace.story.id, fired.milestone.key, MappingProxyType(terms), why)


def _list(words: Sequence[str]) -> str:
    return ", ".join(f"“{w}”" for w in words)


def _why_no_milestone(doc: _Doc, trace: _StoryTrace) -> str:
    for m in trace.milestones:
        for event in m.events:
            if event.blocker is not None:
                said = doc.quote(event.hit[0], event.hit[1])
                cue = doc.quote(event.blocker[2][0], event.blocker[2][1])
                return f"About the story, no milestone: “{said}” is cancelled by “{cue}”."
    if any(m.events for m in trace.milestones):
        return "About the story, no milestone: the event words lack their context."
    return "About the story, no milestone words."


def _why_not(doc: _Doc, traces: Sequence[_StoryTrace]) -> str:
    for trace in traces:
        if trace.excluded is not None:
            term = doc.quote(trace.excluded[0], trace.excluded[1])
            return f"Not relevant: excluded from {trace.story.id} by “{term}”."
    if traces and traces[0].missing is not None:
        return f"Not relevant: nothing from {traces[0].missing.path} of {traces[0].story.id}."
    return "Not relevant: no story."


def classify(title: str, summary: str, stories: Sequence[Story]) -> Verdict:
    """Judge one text against the stories; the first story that matches wins."""
    doc = _Doc(title, summary)
    traces = []
    for story in stories:
        trace = _trace_story(doc, story, full=False)
        if trace.relevant:
            return _verdict(doc, trace)
        traces.append(trace)
    return Verdict(None, None, MappingProxyType({}), _why_not(doc, traces))


def prefilter(title: str, summary: str, stories: Sequence[Story]) -> bool:
    """A cheap test, True for every text `classify` could call relevant.

    It looks only for each story's `prefilter` group (a required watch group, the one
    cheapest to rule out), and first only for that group's anchors, plain substrings
    one of which any match must contain: a text without them fails the watch rule.
    """
    text = fold(f"{title}\n{summary}")
    return any(s.prefilter is None or s.prefilter.may_occur(text) for s in stories)


# --- explain -----------------------------------------------------------------------------


def explain(title: str, summary: str, stories: Sequence[Story]) -> str:
    """A multi-line account, for a person, of how the text was judged."""
    doc = _Doc(title, summary)
    lines = [f"text: {doc.text!r}"]
    for story in stories:
        trace = _trace_story(doc, story, full=True)
        lines.append(f"story {story.id}:")
        lines.extend(_explain_groups(doc, trace.groups, "  "))
        if trace.excluded is not None:
            term = story.watch.exclude.terms[trace.excluded[2]] if story.watch.exclude else "?"
            lines.append(f"  watch.none: “{doc.quote(*trace.excluded[:2])}” ({term}) excludes it")
        if not trace.relevant:
            lines.append("  → not about this story")
            continue
        winner = trace.fired
        for m in trace.milestones:
            lines.extend(_explain_milestone(doc, m, m is winner))
        lines.append(f"verdict: {_verdict(doc, trace).why}")
        return "\n".join(lines)
    lines.append(f"verdict: {classify(title, summary, stories).why}")
    return "\n".join(lines)


def _explain_groups(
    doc: _Doc, groups: Iterable[tuple[TermSet, list[Hit]]], indent: str
) -> list[str]:
    lines = []
    for group, hits in groups:
        found = ", ".join(f"“{doc.quote(h[0], h[1])}” ({group.terms[h[2]]})" for h in hits)
        lines.append(f"{indent}{group.path}: {found or 'no match'}")
    return lines


def _explain_milestone(doc: _Doc, m: _MilestoneTrace, won: bool) -> list[str]:
    head = "HOLDS" if won else ("holds, but an earlier one won" if m.sentence is not None else "no")
    lines = [f"  milestone {m.milestone.key} ({m.milestone.label}): {head}"]
    for group in m.milestone.event:
        events = [e for e in m.events if e.group is group]
        if not events:
            lines.append(f"    {group.path}: no match")
        for e in events:
            said = f"“{doc.quote(e.hit[0], e.hit[1])}” ({group.terms[e.hit[2]]})"
            where = f"sentence {doc.layout.sentence(e.hit[0])}"
            if e.blocker is None:
                lines.append(f"    {group.path}: {said} in {where}")
            else:
                kind, terms, cue = e.blocker
                by = f"“{doc.quote(cue[0], cue[1])}” ({terms.terms[cue[2]]})"
                lines.append(f"    {group.path}: {said} cancelled by {kind} {by}")
    for group, hits in m.groups:
        found = ", ".join(
            f"“{doc.quote(h[0], h[1])}” in sentence {doc.layout.sentence(h[0])}" for h in hits
        )
        lines.append(f"    {group.path}: {found or 'no match'}")
    if m.excluded is not None and m.milestone.exclude is not None:
        lines.append(f"    {m.milestone.exclude.path}: “{doc.quote(*m.excluded[:2])}” excludes it")
    return lines


# --- the engine of `monitor classify` ----------------------------------------------------


def classify_stream(lines: Iterable[str], stories: Sequence[Story]) -> Iterator[dict[str, object]]:
    """Classify JSON lines (`title`, `summary`, optional `id`, `url`), one dict per line.

    Blank lines are skipped; a line that is not a usable JSON object yields a dict
    with `line` and `error` instead of stopping the stream.
    """
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            yield {"line": number, "error": f"not JSON: {e.msg}"}
            continue
        if not isinstance(item, dict):
            yield {"line": number, "error": "expected a JSON object"}
            continue
        out: dict[str, object] = {k: item[k] for k in ("id", "url") if k in item}
        title, summary = item.get("title", ...), item.get("summary", ...)
        bad = [k for k, v in (("title", title), ("summary", summary)) if not _is_text(v)]
        if bad:
            yield {**out, "line": number, "error": f"needs text in: {', '.join(bad)}"}
            continue
        verdict = classify(str(title or ""), str(summary or ""), stories)
        out["story"] = verdict.story
        out["milestone"] = verdict.milestone
        out["terms"] = {path: list(found) for path, found in verdict.terms.items()}
        out["why"] = verdict.why
        yield out


def _is_text(value: object) -> bool:
    return value is None or isinstance(value, str)
