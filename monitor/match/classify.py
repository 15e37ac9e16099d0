"""The matching stage: a title and a summary in, a `Verdict` out. Pure: no IO, no clock.

How a text is judged against the stories, in order:

1. Title and summary are normalised (`normalize`) and read as one text, the title
   being a sentence of its own.
2. A `watch.none` term marks its clause as about another subject, and a sentence that
   opens with a background cue ("Earlier, ...") is a recap: nothing there counts for
   the story. The first story whose every `watch` group matches elsewhere, and whose
   lead and first mention of its subject are not about another subject, is the text's
   story (stories are tried in config order). No such story: not relevant.
3. The story's milestones are tried in its `order` (latest stage first unless the
   config says otherwise); the first that holds is the verdict's milestone. A
   milestone holds when one of its cases does: in one sentence, each `event` group has
   a word nothing cancels, each `with` group a term in the clause of such a word, each
   other group a term, `about` is named there (or in the sentence before, referred
   to), and no `none` term of the milestone stands.
4. An event word is cancelled by a language cue (`monitor/match/cues.yaml`) in its clause:
   negation and "undecided" cues always, future cues when the case wants the past
   (`tense: past`), at most `BEFORE_WORDS` words before it or `AFTER_WORDS` after it
   (negation: `NEGATION_AFTER_WORDS`); by a word opening reported speech right after
   it ("revealed that"); or by one of the case's `unless` terms anywhere in its clause.
   Clauses are cut as `monitor.match.textnorm.Layout` says: at sentence ends, colons,
   brackets and dashes, at a comma only before a conjunction, and a relative word
   (which, который, який) opens an island of its own. So "a monument, which will stand
   in the park, was unveiled" is an unveiling and "the monument will be unveiled" is not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, TypeVar

from monitor.match.rules import (
    CANCELLING,
    CUE_KINDS,
    Case,
    Hit,
    Milestone,
    Story,
    TermSet,
    scripts_of,
)
from monitor.match.textnorm import Layout, Origin, fold, normalize

__all__ = ["Verdict", "classify", "classify_stream", "explain", "normalize", "prefilter"]

BEFORE_WORDS = 3
"""A cue before an event word cancels it with at most this many words between them."""
AFTER_WORDS = 8
"""A cue after an event word cancels it with at most this many words between them.

Wider than `BEFORE_WORDS`: "Unveiling of Kursk monument to North Korean troops set
for May 9" puts the cue after a long noun phrase; 예정 and 계획 always come last."""
NEGATION_AFTER_WORDS = 3
"""Negation after an event word: Korean negates after the verb (정해지지 않았다)."""
SPEECH_AFTER_WORDS = 2
"""A word opening reported speech this close after an event word makes it a report."""
BACKGROUND_WORDS = 2
"""A background cue ("Earlier", "Напомним") counts among the first words of a sentence."""


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

    def __init__(self, title: str, summary: str, named: bool = False) -> None:
        """`named`: hits say which term matched (explain); a verdict needs only where."""
        self.named = named
        self._raw = (title, summary)
        self._head = normalize(title)
        self._body = normalize(summary)
        self.text = f"{self._head}\n{self._body}"
        self._layout: Layout | None = None
        self._origins: tuple[Origin, Origin] | None = None
        self._hits: dict[str, list[Hit]] = {}
        self._sentences: dict[str, set[int]] = {}
        self._scripts: str | None = None

    @property
    def scripts(self) -> str:
        """The alphabets the text is written in (see `monitor.match.rules.SCRIPTS`)."""
        if self._scripts is None:
            self._scripts = scripts_of(self.text)
        return self._scripts

    def hits(self, group: TermSet) -> list[Hit]:
        """`group.hits(text)`, found once per text: rules use some sets more than once."""
        key = group.source
        found = self._hits.get(key)
        if found is None:
            found = self._hits[key] = group.hits(self.text, self.scripts, named=self.named)
        return found

    def sentences(self, group: TermSet) -> set[int]:
        """The sentences `group` has hits in (found once per text)."""
        key = group.source
        found = self._sentences.get(key)
        if found is None:
            sentence = self.layout.sentence
            found = self._sentences[key] = {sentence(h[0]) for h in self.hits(group)}
        return found

    def hits_in(self, group: TermSet, span: tuple[int, int]) -> list[Hit]:
        """`group`'s hits that start within `span` of the text."""
        return group.hits(self.text, self.scripts, span)

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = Layout.of(self.text)
        return self._layout

    def quote(self, start: int, end: int) -> str:
        """The original wording of `text[start:end]`."""
        if self._origins is None:
            self._origins = (Origin(self._raw[0], self._head), Origin(self._raw[1], self._body))
        if start < len(self._head):
            return self._origins[0].quote(start, end)
        offset = len(self._head) + 1
        return self._origins[1].quote(start - offset, end - offset)


# --- judging: one trace serves both `classify` and `explain` ---------------------------

Blocker = tuple[str, TermSet, Hit]
"""Why an event word does not count: (kind, the set that said so, its hit). Kinds are
the cue kinds of `CUE_KINDS`, `unless`, and `other subject` (a `watch.none` clause)."""

_WINDOWS: dict[str, tuple[int, int]] = {
    "negation": (BEFORE_WORDS, NEGATION_AFTER_WORDS),
    "undecided": (BEFORE_WORDS, AFTER_WORDS),
    "future": (BEFORE_WORDS, AFTER_WORDS),
}
"""Words a cue of each kind may stand before and after an event word, in its clause.

Speech is read right after the event word only (`SPEECH_AFTER_WORDS`)."""


class _Scope:
    """What one story's cues and exclusions say about the parts of one text.

    Clauses that a `watch.none` term marks are about another subject; sentences that
    open with a background cue ("Earlier, ...") recap. Hits there count for nothing.
    The cues near event words are read per clause, when an event word there first asks.
    """

    def __init__(self, doc: _Doc, story: Story) -> None:
        self.doc = doc
        self.story = story
        exclude = story.watch.exclude
        self.excluded: dict[int, Hit] = {}
        hits = doc.hits(exclude) if exclude is not None else []
        if hits:
            layout = doc.layout
            for hit in hits:
                self.excluded.setdefault(layout.clause(hit[0]), hit)
        self._places: dict[tuple[int, int], tuple[int, int, int]] = {}
        self._near: dict[int, dict[str, list[Hit]]] = {}
        self._refers: dict[int, bool] = {}
        self.background: dict[int, Hit] = {}
        openers = story.cues.of("background")
        for opener in doc.hits(openers) if openers is not None else ():
            layout = doc.layout  # measured only for a text that has such a word
            number = layout.sentence(opener[0])
            if layout.word(opener[0]) - layout.sentence_first_words()[number] < BACKGROUND_WORDS:
                self.background.setdefault(number, opener)

    def cues(self, kind: str, clause: int) -> list[Hit]:
        """The cues of `kind` in `clause`, found when an event word there first asks.

        Cues count only in the clause of an event word, so only those clauses are read
        for them (speech, which may open a clause of its own, is read by `speech`).
        """
        found = self._near.get(clause)
        if found is None:
            found = self._near[clause] = {kind: [] for kind in CUE_KINDS}
            scan = self.story.cues.scan
            span = self.doc.layout.clause_span(clause)
            for start, end, index in self.doc.hits_in(scan, span) if scan is not None else ():
                if self.doc.layout.clause(start) == clause:
                    kind_of, own = self.story.cues.kind_of[index]
                    found[kind_of].append((start, end, own))
        return found[kind]

    def speech(self, hit: Hit) -> Hit | None:
        """A word opening reported speech among the few words right after `hit`."""
        said = self.story.cues.of("speech")
        if said is None:
            return None
        layout = self.doc.layout
        last = layout.word(hit[1] - 1)
        for word in range(last + 1, min(last + 2 + SPEECH_AFTER_WORDS, len(layout.word_starts))):
            start = layout.word_starts[word]
            found = said.at(self.doc.text, start)
            if found is not None:
                return found
        return None

    def refers(self, sentence: int) -> bool:
        """Whether `sentence` has a word that refers back ("it", "его")."""
        if sentence not in self._refers:
            refer = self.story.cues.of("refer")
            span = self.doc.layout.sentence_span(sentence)
            self._refers[sentence] = refer is not None and bool(self.doc.hits_in(refer, span))
        return self._refers[sentence]

    def place(self, hit: Hit) -> tuple[int, int, int]:
        """The clause, first word and last word of a hit (measured once)."""
        key = (hit[0], hit[1])
        found = self._places.get(key)
        if found is None:
            layout = self.doc.layout
            found = (layout.clause(hit[0]), layout.word(hit[0]), layout.word(hit[1] - 1))
            self._places[key] = found
        return found

    def other_subject(self, pos: int) -> Blocker | None:
        """The `watch.none` hit that puts the clause at `pos` about another subject."""
        exclude = self.story.watch.exclude
        if not self.excluded or exclude is None:
            return None
        hit = self.excluded.get(self.doc.layout.clause(pos))
        return None if hit is None else ("other subject", exclude, hit)

    def recalled(self, pos: int) -> Blocker | None:
        """The cue that makes the sentence at `pos` background."""
        cues = self.story.cues.of("background")
        if not self.background or cues is None:
            return None
        hit = self.background.get(self.doc.layout.sentence(pos))
        return None if hit is None else ("background", cues, hit)

    def aside(self, pos: int) -> Blocker | None:
        """Why the word at `pos` is about something else (another subject, background)."""
        return self.other_subject(pos) or self.recalled(pos)

    @property
    def counts_all(self) -> bool:
        """True when nothing in the text is aside: every hit counts."""
        return not self.excluded and not self.background

    def counts(self, hit: Hit) -> bool:
        """Whether a hit speaks of this story's subject (not aside)."""
        return self.counts_all or self.aside(hit[0]) is None

    def counting(self, hits: list[Hit]) -> list[Hit]:
        """The hits that speak of this story's subject."""
        return hits if self.counts_all else [h for h in hits if self.aside(h[0]) is None]


@dataclass(slots=True)
class _Event:
    group: TermSet
    hit: Hit
    blocker: Blocker | None


@dataclass(slots=True)
class _CaseTrace:
    case: Case
    events: list[_Event] = field(default_factory=list)
    groups: list[tuple[TermSet, list[Hit]]] = field(default_factory=list)
    about: list[Hit] = field(default_factory=list)
    referred: bool = False  # `about` was named in the sentence before, and referred to
    excluded: Hit | None = None
    sentence: int | None = None  # the sentence where it holds, if it does


@dataclass(slots=True)
class _MilestoneTrace:
    milestone: Milestone
    cases: list[_CaseTrace] = field(default_factory=list)

    @property
    def fired(self) -> _CaseTrace | None:
        return next((c for c in self.cases if c.sentence is not None), None)

    @property
    def sentence(self) -> int | None:
        fired = self.fired
        return None if fired is None else fired.sentence


@dataclass(slots=True)
class _StoryTrace:
    story: Story
    groups: list[tuple[TermSet, list[Hit]]] = field(default_factory=list)
    missing: TermSet | None = None
    aside: Blocker | None = None  # the first mention of the subject is about something else
    milestones: list[_MilestoneTrace] = field(default_factory=list)

    @property
    def relevant(self) -> bool:
        return self.missing is None and self.aside is None

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
    scope = _Scope(doc, story)
    for group in story.watch.groups:
        hits = doc.hits(group)
        trace.groups.append((group, hits))
        if trace.missing is None and trace.aside is None and not any(map(scope.counts, hits)):
            if hits:  # named, but only about another subject or in background
                trace.aside = scope.aside(hits[0][0])
            else:
                trace.missing = group
    if trace.aside is None and scope.excluded:
        trace.aside = _lead_aside(scope, trace.groups)
    if not trace.relevant and not full:
        return trace
    trace.milestones = _in_turn(story.order, lambda m: _trace_milestone(doc, scope, m, full), full)
    return trace


class _Holds(Protocol):
    @property
    def sentence(self) -> int | None: ...


_T = TypeVar("_T")
_J = TypeVar("_J", bound=_Holds)


def _in_turn(items: Iterable[_T], judge: Callable[[_T], _J], full: bool) -> list[_J]:
    """Judge items in order up to the first that holds (all of them when `full`)."""
    judged = []
    for item in items:
        judged.append(result := judge(item))
        if result.sentence is not None and not full:
            break
    return judged


def _lead_aside(scope: _Scope, groups: Sequence[tuple[TermSet, list[Hit]]]) -> Blocker | None:
    """The other subject the text is about, judged by where it starts, or None.

    The lead (the first sentence: the title, if there is one) is about another subject
    when it has a clause `watch.none` marks and no term of the story outside such
    clauses; and the first mention of what the story is about (its first watch group)
    says whose it is. Either way, the story recalled after it is background: "Kim
    inspected the museum in Pyongyang", then the Kursk plan, is about the museum.
    """
    layout = scope.doc.layout
    lead = layout.sentence(next((i for i, c in enumerate(scope.doc.text) if c.strip()), 0))
    in_lead = [h for _, hits in groups for h in hits if layout.sentence(h[0]) == lead]
    if not any(map(scope.counts, in_lead)):
        found = next(
            (hit for clause, hit in scope.excluded.items() if layout.sentence(hit[0]) == lead),
            None,
        )
        if found is not None:
            return scope.other_subject(found[0])
    subject = groups[0][1] if groups else []
    mentions = [h for h in subject if scope.recalled(h[0]) is None]
    return scope.other_subject(mentions[0][0]) if mentions else None


def _trace_milestone(doc: _Doc, scope: _Scope, milestone: Milestone, full: bool) -> _MilestoneTrace:
    trace = _MilestoneTrace(milestone)
    trace.cases = _in_turn(milestone.cases, lambda c: _trace_case(doc, scope, c, full), full)
    return trace


def _trace_case(doc: _Doc, scope: _Scope, case: Case, full: bool) -> _CaseTrace:
    """Whether and where a case holds; with `full`, an account of every word for explain.

    The cheap conditions narrow the sentences first (each group has a term there,
    `about` is named, no `none` term stands); only the event words left are checked for
    cues, which is most of the work. `full` checks every event word, for explain.
    """
    trace = _CaseTrace(case)
    found = [(group, doc.hits(group)) for group in case.event]
    if not full and not all(hits for _, hits in found):
        return trace
    layout = doc.layout

    def sentences_of(hits: Iterable[Hit]) -> set[int]:
        return {layout.sentence(h[0]) for h in hits}

    def counted(group: TermSet) -> tuple[list[Hit], set[int]]:
        """`group`'s hits that count, and their sentences."""
        if scope.counts_all:
            return doc.hits(group), doc.sentences(group)
        hits = scope.counting(doc.hits(group))
        return hits, sentences_of(hits)

    sentences = set.intersection(*(doc.sentences(group) for group in case.event))
    near: list[list[Hit]] = []
    for group in case.near:
        group_hits, where = counted(group)
        trace.groups.append((group, group_hits))
        sentences &= where
        near.append(group_hits)
    for group in case.groups:
        group_hits, where = counted(group)
        trace.groups.append((group, group_hits))
        sentences &= where
    named: set[int] = set()
    if case.about is not None and (sentences or full):
        trace.about, named = counted(case.about)
        sentences = {s for s in sentences if s in named or (s - 1 in named and scope.refers(s))}
    if case.exclude is not None and sentences:
        vetoes = doc.hits(case.exclude)
        trace.excluded = next((h for h in vetoes if layout.sentence(h[0]) in sentences), None)
        sentences -= sentences_of(vetoes)
    if not sentences and not full and scope.counts_all:
        return trace
    unless = doc.hits(case.unless) if case.unless else []
    kinds = CANCELLING[case.tense]
    for group, hits in found:
        for hit in hits:
            aside = None if scope.counts_all else scope.aside(hit[0])
            if full or aside is not None or layout.sentence(hit[0]) in sentences:
                blocker = aside or _cancelled(hit, scope, kinds, case.unless, unless)
                trace.events.append(_Event(group, hit, blocker))
    for sentence in sorted(sentences):
        free = [
            [
                e.hit
                for e in trace.events
                if e.group is group and e.blocker is None and layout.sentence(e.hit[0]) == sentence
            ]
            for group, _ in found
        ]
        if not all(free):
            continue
        # What the event is done to stands in its clause, or, for an event in a side
        # clause, in the clause that one stands in: "в сквере, где установят памятник".
        clauses = {c for words in free for h in words for c in _clause_and_host(layout, h)}
        if all(any(layout.clause(h[0]) in clauses for h in group_hits) for group_hits in near):
            trace.sentence = sentence
            trace.referred = case.about is not None and sentence not in named
            break
    return trace


def _clause_and_host(layout: Layout, hit: Hit) -> tuple[int, int]:
    clause = layout.clause(hit[0])
    return clause, layout.host(clause)


def _cancelled(
    hit: Hit, scope: _Scope, kinds: Sequence[str], unless: TermSet | None, unless_hits: list[Hit]
) -> Blocker | None:
    """What cancels the event word `hit`: a nearby cue of one of `kinds`, or `unless`."""
    where = scope.place(hit)
    for kind in kinds:
        if kind == "speech":
            cue = scope.speech(hit)
        else:
            before, after = _WINDOWS[kind]
            cue = _cancelling(where, scope.cues(kind, where[0]), scope, before, after)
        terms = scope.story.cues.of(kind)
        if cue is not None and terms is not None:
            return (kind, terms, cue)
    other = _cancelling(where, unless_hits, scope, _CLAUSE, _CLAUSE)
    if other is not None and unless is not None:
        return ("unless", unless, other)
    return None


_CLAUSE = 1 << 30
"""A window as wide as any clause."""


def _cancelling(
    where: tuple[int, int, int], cues: list[Hit], scope: _Scope, before: int, after: int
) -> Hit | None:
    """The first cue in the clause of a hit at `where`, within the word windows."""
    clause, first, last = where
    for cue in cues:
        cue_clause, cue_first, cue_last = scope.place(cue)
        if cue_clause != clause:
            continue
        if cue_last < first:
            gap, limit = first - cue_last - 1, before
        elif cue_first > last:
            gap, limit = cue_first - last - 1, after
        else:
            return cue  # the cue is inside the event word (공개한다) or overlaps it
        if gap <= limit:
            return cue
    return None


# --- verdicts ----------------------------------------------------------------------------


def _quotes(doc: _Doc, hits: Iterable[Hit]) -> tuple[str, ...]:
    """The distinct wordings of `hits`, each quoted once (a story's word recurs a lot)."""
    first: dict[str, Hit] = {}
    for hit in hits:
        first.setdefault(doc.text[hit[0] : hit[1]], hit)
    return tuple(dict.fromkeys(doc.quote(h[0], h[1]) for h in first.values()))


def _verdict(doc: _Doc, trace: _StoryTrace) -> Verdict:
    terms = {group.path: _quotes(doc, hits) for group, hits in trace.groups}
    fired = trace.fired
    case = fired.fired if fired is not None else None
    if fired is None or case is None or case.sentence is None:
        return Verdict(trace.story.id, None, MappingProxyType(terms), _why_no_milestone(doc, trace))
    layout = doc.layout
    here = case.sentence
    for group in case.case.event:
        said = [
            e.hit
            for e in case.events
            if e.group is group and e.blocker is None and layout.sentence(e.hit[0]) == here
        ]
        terms[group.path] = _quotes(doc, said)
    for group, hits in case.groups:
        terms[group.path] = _quotes(doc, [h for h in hits if layout.sentence(h[0]) == here])
    if case.case.about is not None:
        where = here - 1 if case.referred else here
        terms[case.case.about.path] = _quotes(
            doc, [h for h in case.about if layout.sentence(h[0]) == where]
        )
    said_words = [terms[g.path][0] for g in case.case.event]
    others = [q[0] for g, _ in case.groups if (q := terms[g.path])]
    if case.case.about is not None and terms[case.case.about.path]:
        others.append(terms[case.case.about.path][0])
    beside = f" with {_list(others)}" if others else ""
    referred = " (named in the sentence before)" if case.referred else ""
    why = (
        f"{fired.milestone.label}: {_list(list(dict.fromkeys(said_words)))}{beside}"
        f" in one sentence{referred}."
    )
    return Verdict(trace.story.id, fired.milestone.key, MappingProxyType(terms), why)


def _list(words: Sequence[str]) -> str:
    return ", ".join(f"“{w}”" for w in words)


def _why_no_milestone(doc: _Doc, trace: _StoryTrace) -> str:
    events = [e for m in trace.milestones for c in m.cases for e in c.events]
    for event in events:
        if event.blocker is not None:
            said = doc.quote(event.hit[0], event.hit[1])
            kind, _, cue = event.blocker
            by = doc.quote(cue[0], cue[1])
            return f"About the story, no milestone: “{said}” is cancelled by {kind} “{by}”."
    if events:
        return "About the story, no milestone: the event words lack their context."
    return "About the story, no milestone words."


def _why_not(doc: _Doc, traces: Sequence[_StoryTrace]) -> str:
    for trace in traces:
        if trace.aside is not None:
            kind, _, hit = trace.aside
            term = doc.quote(hit[0], hit[1])
            if kind == "background":
                return f"Not relevant: {trace.story.id} is only recalled, after “{term}”."
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
    doc = _Doc(title, summary, named=True)
    lines = [f"read as: {_as_read(doc.text)}"]
    for story in stories:
        trace = _trace_story(doc, story, full=True)
        scope = _Scope(doc, story)
        lines.append(f"story {story.id}:")
        lines.extend(_explain_groups(doc, trace.groups, "  "))
        exclude = story.watch.exclude
        for clause, hit in scope.excluded.items():
            term = exclude.terms[hit[2]] if exclude else "?"
            lines.append(
                f"  watch.none: “{doc.quote(*hit[:2])}” ({term}) puts clause {clause} "
                "about another subject"
            )
        background = story.cues.of("background")
        for sentence, hit in scope.background.items():
            term = background.terms[hit[2]] if background else "?"
            lines.append(
                f"  cues.background: “{doc.quote(*hit[:2])}” ({term}) makes sentence "
                f"{sentence} background"
            )
        if trace.aside is not None:
            lines.append("  the first mention of the story's subject is about something else")
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
    for case in m.cases:
        indent = "    "
        if len(m.cases) > 1:
            mark = "holds" if case.sentence is not None else "no"
            lines.append(f"    {case.case.path} (tense {case.case.tense}): {mark}")
            indent = "      "
        lines.extend(_explain_case(doc, case, indent))
    return lines


def _explain_case(doc: _Doc, case: _CaseTrace, indent: str) -> list[str]:
    lines = []
    layout = doc.layout
    for group in case.case.event:
        events = [e for e in case.events if e.group is group]
        if not events:
            lines.append(f"{indent}{group.path}: no match")
        for e in events:
            said = f"“{doc.quote(e.hit[0], e.hit[1])}” ({group.terms[e.hit[2]]})"
            if e.blocker is None:
                where = f"sentence {layout.sentence(e.hit[0])}, clause {layout.clause(e.hit[0])}"
                lines.append(f"{indent}{group.path}: {said} in {where}")
            else:
                kind, terms, cue = e.blocker
                by = f"“{doc.quote(cue[0], cue[1])}” ({terms.terms[cue[2]]})"
                lines.append(f"{indent}{group.path}: {said} cancelled by {kind} {by}")
    for group, hits in case.groups:
        found = ", ".join(
            f"“{doc.quote(h[0], h[1])}” in sentence {layout.sentence(h[0])}" for h in hits
        )
        lines.append(f"{indent}{group.path}: {found or 'no match'}")
    if case.case.about is not None and case.events:
        found = ", ".join(
            f"“{doc.quote(h[0], h[1])}” in sentence {layout.sentence(h[0])}" for h in case.about
        )
        note = " (referred to in the sentence after)" if case.referred else ""
        lines.append(f"{indent}{case.case.about.path}: {found or 'no match'}{note}")
    if case.excluded is not None and case.case.exclude is not None:
        lines.append(
            f"{indent}{case.case.exclude.path}: “{doc.quote(*case.excluded[:2])}” excludes it"
        )
    return lines


# --- the engine of `monitor classify` ----------------------------------------------------


def classify_stream(lines: Iterable[str], stories: Sequence[Story]) -> Iterator[dict[str, object]]:
    """Classify JSON lines (`title`, optional `summary`, `id`, `url`), one dict per line.

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
        title, summary = item.get("title", ...), item.get("summary")
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


def _as_read(text: str) -> str:
    """The normalised text the rules read, on one line: its parts (title, summary)
    joined by ` / `."""
    return " / ".join(part.strip() for part in text.splitlines() if part.strip())


def _is_text(value: object) -> bool:
    return value is None or isinstance(value, str)
