"""Story rules: validate the `stories` block of config.yaml and compile it, once.

A story says which texts are about it (`watch`) and which of those report a
milestone (`milestones`). Everything is checked and turned into regular expressions
here, at load time: a bad pattern, an unknown key or a reference to a list or
milestone that does not exist is a `ConfigError` naming the dotted path of the field,
e.g. `stories[0].milestones.unveiling.all[1].any[3]`. docs/rules.md is the reference
for the language; this module is its implementation.

Term syntax (after normalisation, see `monitor.match.textnorm`):

    word        whole word                      `museum`
    word*       word and any ending             `памятник*` → памятника, памятнику
    *word       also inside a longer word       `*기념관` → 전투위훈기념관
    한국어       Hangul words take particles     `기념비` → 기념비를, 기념비가
    two words   a phrase; spaces, hyphens and quotes between the words
    a ... b     up to four other words between a and b (never across "and", "и", ...)
    $name       a named list: alone, it adds the list's terms; in a phrase, any one of them
    re:...      a regular expression, matched against the normalised text

A milestone is one or more cases (`when`), each with its event words, the groups that
must stand with them, and a tense; the language cues that cancel event words are built
in (`cues.yaml`) and shared by every story, which may replace them.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

import yaml

from monitor.core.errors import ConfigError
from monitor.match.textnorm import normalize

GAP_WORDS = 4
_HANGUL = "\uac00-\ud7a3"
# Between the words of a phrase: spaces, hyphens, quotes; never clause punctuation.
_JOIN = r"[^\w.!?;:,()\[\]\n|]+"
# What a gap never reaches across: a word that joins two things. "in Kursk with
# monuments and street names" holds no "in ... street".
_JOINERS = "and|or|but|with|и|или|а|но|либо|та|і|й|або|але|чи"
_GAP = rf"(?:{_JOIN}(?!(?:{_JOINERS})(?!\w))[\w']+){{0,{GAP_WORDS}}}"
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

Hit = tuple[int, int, int]
"""A match in normalised text: (start, end, index of the term in its `TermSet`)."""


@dataclass(frozen=True)
class TermSet:
    """One group of terms, compiled into one alternation for speed.

    `path` names the group inside its story (`watch.all[0]`, `milestones.unveiling.event`);
    `terms` are the terms as written in the config, lists expanded, in order. `source`
    is one regular expression for any of them (`pattern` compiled); `each` holds one
    pattern per term, used only to say which term a match was (naming the alternatives
    would make the search ten times slower). Patterns are compiled on first use: most
    are never needed in a process, and compiling them all took most of loading a config.
    """

    path: str
    terms: tuple[str, ...]
    source: str = field(repr=False, compare=False)
    sources: tuple[str, ...] = field(repr=False, compare=False)
    by_first: Mapping[str, tuple[int, ...]] = field(repr=False, compare=False)
    """Which terms can start with a character; `""` lists those that can start anywhere."""
    anchors: frozenset[str] | None = field(default=None, repr=False, compare=False)
    """Plain substrings of which at least one is in every normalised text a term of the
    set matches (None when a `re:` term makes that unknowable): a scan for them with
    `in` is ten times cheaper than the pattern, so the prefilter asks them first."""

    parts: tuple[_Term, ...] = field(default=(), repr=False, compare=False)
    """The compiled terms, from which `hits` builds the alternation of the terms that
    can start in a text's alphabets (see `SCRIPTS`), on first use."""

    def __getstate__(self) -> dict[str, object]:
        """What crosses to the parse worker: not the patterns compiled on first use."""
        cached = ("pattern", "_each", "_patterns", "_which_of", "_prefixes", "_anchors_by_first")
        return {k: v for k, v in self.__dict__.items() if k not in cached}

    def may_occur(self, folded: str) -> bool:
        """False only if no term can match: `folded` is `fold`ed, a superset test."""
        if self.anchors is None:
            return self.search(" ".join(folded.split()))
        # A text without an anchor's first character skips every anchor that starts
        # with it (a Russian text, the Latin and the Hangul ones): one scan for a
        # character instead of one for each anchor, half the cost on the farm's texts.
        return any(
            first in folded and any(anchor in folded for anchor in group)
            for first, group in self._anchors_by_first
        )

    @functools.cached_property
    def _anchors_by_first(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """`anchors` grouped by their first character (see `may_occur`)."""
        groups: dict[str, list[str]] = {}
        for anchor in sorted(self.anchors or ()):
            groups.setdefault(anchor[:1], []).append(anchor)
        return tuple((first, tuple(group)) for first, group in groups.items())

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """`source`, compiled."""
        return re.compile(self.source)

    def each(self, index: int) -> re.Pattern[str]:
        """The pattern of the `index`-th term alone, compiled when first asked for."""
        compiled = self._each.get(index)
        if compiled is None:
            compiled = self._each[index] = re.compile(self.sources[index])
        return compiled

    @functools.cached_property
    def _each(self) -> dict[int, re.Pattern[str]]:
        return {}

    def search(self, text: str) -> bool:
        """True if any term occurs in `text` (normalised)."""
        return self.pattern.search(text) is not None

    def hits(
        self,
        text: str,
        scripts: str | None = None,
        span: tuple[int, int] | None = None,
        *,
        named: bool = True,
    ) -> list[Hit]:
        """Every non-overlapping occurrence in `text`, leftmost first.

        `scripts` (see `scripts_of`) names the alphabets the text is written in: only
        the terms that can start in one of them are looked for. `span` limits the search
        to matches that start and end within it. Without `named`, a hit's term index is
        -1: finding which term matched is a good part of the cost, and only explaining
        needs it.
        """
        pattern = self.pattern if scripts is None else self._for(scripts)
        found = pattern.finditer(text) if span is None else pattern.finditer(text, *span)
        if not named:
            return [(*m.span(), -1) for m in found]
        return [(m.start(), m.end(), self._which(text, m)) for m in found]

    def at(self, text: str, pos: int) -> Hit | None:
        """The occurrence that starts at `pos`, if one does."""
        m = self.pattern.match(text, pos)
        return None if m is None else (m.start(), m.end(), self._which(text, m))

    def _for(self, scripts: str) -> re.Pattern[str]:
        """The pattern for a text in these alphabets.

        A variant without the other alphabets' terms is about a tenth faster, and costs
        a compilation (tens of milliseconds for a large set): it is made only for a set
        searched often enough to pay for it, not in a short `monitor once`.
        """
        found = self._patterns.get(scripts)
        if found is None:
            self._patterns["#uses"] = uses = self._patterns.get("#uses", 0) + 1
            if uses < _VARIANT_AFTER:
                return self.pattern
            kept = [t for t in self.parts if _can_start_in(t, scripts)]
            found = re.compile(_source(kept)) if kept else _NEVER
            self._patterns[scripts] = found
        return found

    @functools.cached_property
    def _patterns(self) -> dict[str, Any]:
        """Per-alphabet patterns by `scripts_of` key, and under "#uses" the searches so far."""
        return {}

    def _which(self, text: str, found: re.Match[str]) -> int:
        """The index of the term that made `found` (the first in config order).

        Which term matched depends only on the matched text and the characters on
        either side of it (the word boundaries), so the answer is remembered by those:
        a story's words recur from item to item.
        """
        start, end = found.span()
        memory = self._which_of
        if memory is None:  # a `re:` term may look further than one character around
            return self._find_which(text, start, end)
        key = text[max(start - 1, 0) : end + 1] if start else "\n" + text[: end + 1]
        known = memory.get(key)
        if known is None:
            known = self._find_which(text, start, end)
            if len(memory) < _WHICH_MEMORY:
                memory[key] = known
        return known

    @functools.cached_property
    def _which_of(self) -> dict[str, int] | None:
        return None if any(t.startswith("re:") for t in self.terms) else {}

    @functools.cached_property
    def _prefixes(self) -> dict[str, tuple[tuple[str, int], ...]]:
        """By first character, each candidate term with the literal text it starts with."""
        literal = [_literal_prefix(source) for source in self.sources]
        return {
            char: tuple((literal[i], i) for i in found) for char, found in self.by_first.items()
        }

    def _find_which(self, text: str, start: int, end: int) -> int:
        prefixes = self._prefixes
        candidates = prefixes.get(text[start], prefixes.get("", ()))
        first = None
        for prefix, i in candidates:
            if not text.startswith(prefix, start):
                continue
            m = self.each(i).match(text, start)
            if m is not None:
                if m.end() == end:
                    return i
                first = i if first is None else first
        return first or 0


_VARIANT_AFTER = 500
"""Searches of a set after which its per-alphabet patterns are compiled (see `_for`)."""

_WHICH_MEMORY = 50_000
"""How many (matched text, term) answers a set remembers; a story's vocabulary is small."""


@dataclass(frozen=True)
class Watch:
    """Which texts are about the story.

    Every group matches outside the clauses that an `exclude` term marks as being about
    another subject, and the first clause that mentions the first group (what the story
    is about) is not one of them.
    """

    groups: tuple[TermSet, ...]
    exclude: TermSet | None


Tense = Literal["past", "any"]
CUE_KINDS = ("negation", "undecided", "future", "speech", "background", "refer")
"""The kinds of language cue, in the order `explain` names a cancelling one."""
CANCELLING: Mapping[Tense, tuple[str, ...]] = MappingProxyType(
    {
        "past": ("negation", "undecided", "future", "speech"),
        "any": ("negation", "undecided", "speech"),
    }
)
"""Which cue kinds cancel an event word, by the tense a milestone case asks for."""


@dataclass(frozen=True)
class Cues:
    """The language cues a story reads with: one compiled set per kind (None: no words).

    `scan` holds the words of the kinds read near an event word (negation, undecided,
    future) in one set, so that a clause is searched for them once; `kind_of[i]` says
    which kind the `i`-th of them is and its index in that kind's own set (the one
    `explain` names). Where a word of one kind starts a longer word of another, the
    kind listed first in `CUE_KINDS` is found.
    """

    sets: Mapping[str, TermSet | None] = field(default_factory=dict)
    scan: TermSet | None = None
    kind_of: tuple[tuple[str, int], ...] = ()

    def of(self, kind: str) -> TermSet | None:
        """The compiled words of `kind` (see `CUE_KINDS`), or None."""
        return self.sets.get(kind)


@dataclass(frozen=True)
class Case:
    """One way a milestone can hold (a milestone has one, or several under `when`).

    It holds in a sentence where every `event` group has a term that nothing cancels,
    a term of each `with` group stands in the clause of an event word, a term of each
    of `groups` stands in the sentence, `about` is named in the sentence (or in the one
    before, when this one refers back to it: "it", "его"), and no `exclude` term stands.
    An event word is cancelled by a cue of a kind `CANCELLING[tense]` lists near it in
    its clause, by an `unless` term in its clause, in a clause about another subject
    (`watch.none`) or in a sentence of background ("Earlier, ...").
    """

    path: str
    event: tuple[TermSet, ...]
    near: tuple[TermSet, ...] = ()
    groups: tuple[TermSet, ...] = ()
    about: TermSet | None = None
    tense: Tense = "past"
    unless: TermSet | None = None
    exclude: TermSet | None = None


@dataclass(frozen=True)
class Milestone:
    """One milestone of a story: it is reported when any of its cases holds."""

    key: str
    label: str
    cases: tuple[Case, ...]


@dataclass(frozen=True)
class Example:
    """A text and what the story's author says it is: a test of the rules, run at load.

    `expect` is a milestone key of the story, `other_update` (about the story, no
    milestone) or `irrelevant` (not about this story); `path` names it in errors.
    """

    path: str
    title: str
    summary: str
    expect: str


NOT_MILESTONES = ("other_update", "irrelevant")
"""What a text can be to a story besides a milestone: about it with none, or not about it."""


@dataclass(frozen=True)
class Story:
    """A compiled story: its watch rule, language cues and milestones.

    `milestones` keep config order; `order` is the order they are tried in (first match
    wins), from `precedence` or else latest-declared first. `prefilter` is the required
    watch group whose terms start with the fewest distinct characters, the cheapest to
    look for: a text without it cannot be about the story.
    """

    id: str
    name: str
    milestones: tuple[Milestone, ...]
    watch: Watch
    cues: Cues = Cues()
    order: tuple[Milestone, ...] = ()
    prefilter: TermSet | None = None
    examples: tuple[Example, ...] = field(default=(), repr=False, compare=False)
    """Texts with the verdict they must get; `monitor.config.settings` runs them at load."""

    def milestone(self, key: str) -> Milestone | None:
        """The milestone called `key`, or None."""
        return next((m for m in self.milestones if m.key == key), None)


# --- compiling terms -------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    text: str  # as written in the config
    body: str  # regular expression over normalised text, without the left word boundary
    bounded: bool  # the match starts at the start of a word
    first: frozenset[str] | None  # the characters a match can start with; None: any
    anchors: frozenset[str] | None = None  # one of these is in every text it matches
    pieces: tuple[_Term, ...] = ()
    """What an alternation holds instead of this term (a list-led phrase splits in two)."""

    @property
    def source(self) -> str:
        if not self.bounded:
            return self.body
        if _LITERAL_HEAD.match(self.body):
            # The word boundary checked after the first character, not before it: a
            # pattern that starts with a literal is searched for as one, several times
            # faster than testing a lookbehind at every position of the text.
            return self.body[0] + r"(?<!\w.)" + self.body[1:]
        return r"(?<!\w)" + self.body


_LITERAL_HEAD = re.compile(r"\w(?![*+?{])", re.UNICODE)


def _alternation(terms: Sequence[_Term]) -> str:
    """One regular expression for any of `terms`, their literal beginnings shared as a trie.

    The regex engine tries the branches of an alternation one after another at each
    position; branches that start with the same letters, factored into one, are tried
    once: "памятник*|памятн* знак*|пам'ятник*" becomes "пам(?:ятн(?:ик...|...)|'ятник...)".
    """
    root = _Trie()
    for term in terms:
        root.add(term.source)
    return root.source()


_TOKEN = re.compile(r"\(\?<!\\w\.\)|\\\W|[^\\.^$*+?{}\[\]|()](?![*+?{])")
"""One literal step of a source: the boundary check after a first letter, an escaped
character, or a plain character that no quantifier follows."""


def _literal_prefix(source: str) -> str:
    """The plain text every match of `source` starts with (as far as it is plain)."""
    out, pos = [], 0
    while (step := _TOKEN.match(source, pos)) is not None:
        token = step.group()
        if not token.startswith("(?"):
            out.append(token[-1])  # a plain character, or the one an escape stands for
        pos = step.end()
    return "".join(out)


class _Trie:
    """Sources of terms keyed by their literal beginnings (see `_alternation`)."""

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.ends: list[str] = []  # what follows the shared beginning, for terms that stop here

    def add(self, source: str) -> None:
        node, pos = self, 0
        while (step := _TOKEN.match(source, pos)) is not None:
            node = node.children.setdefault(step.group(), _Trie())
            pos = step.end()
        if source[pos:] not in node.ends:
            node.ends.append(source[pos:])

    def source(self) -> str:
        branches = self.ends + [key + child.source() for key, child in self.children.items()]
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"


def _union_anchors(terms: Sequence[_Term]) -> frozenset[str] | None:
    """Anchors for "any of `terms`": every term's anchors, or None if one has none."""
    found: set[str] = set()
    for t in terms:
        if t.anchors is None:
            return None
        found |= t.anchors
    # A text holding "korean" holds "korea": the shorter one alone is as good a test.
    return frozenset(a for a in found if not any(b != a and b in a for b in found))


def _best_anchors(options: Sequence[frozenset[str] | None]) -> frozenset[str] | None:
    """Of several anchor sets that each hold for a phrase, the rarest: longest shortest."""
    known = [a for a in options if a]
    if not known:
        return None
    return max(known, key=lambda a: (min(map(len, a)), -len(a)))


def _first_chars(terms: Sequence[_Term]) -> frozenset[str] | None:
    chars: set[str] = set()
    for t in terms:
        if t.first is None:
            return None
        chars |= t.first
    return frozenset(chars)


class _Lists:
    """The story's named term lists, compiled on first use (lists may use lists)."""

    def __init__(self, raw: Mapping[str, object], path: str) -> None:
        self._raw = raw
        self._path = path
        self._done: dict[str, tuple[_Term, ...]] = {}
        self._busy: list[str] = []

    def get(self, name: str, where: str) -> tuple[_Term, ...]:
        if name in self._done:
            return self._done[name]
        if name not in self._raw:
            known = ", ".join(f"${n}" for n in self._raw) or "none defined"
            raise ConfigError(f"unknown list '${name}' (lists: {known})", key=where)
        if name in self._busy:
            cycle = " → ".join(f"${n}" for n in [*self._busy, name])
            raise ConfigError(f"lists refer to each other in a circle: {cycle}", key=where)
        self._busy.append(name)
        terms = _terms(self._raw[name], f"{self._path}.{name}", self)
        self._busy.pop()
        self._done[name] = terms
        return terms

    def check_all(self) -> None:
        for name in self._raw:
            if not isinstance(name, str) or not _NAME.match(name):
                raise ConfigError(
                    "list names use lowercase letters, digits and _", key=f"{self._path}.{name}"
                )
            self.get(name, f"{self._path}.{name}")


def _terms(raw: object, path: str, lists: _Lists) -> tuple[_Term, ...]:
    """Compile a list of terms; `$name` entries add the named list's terms."""
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise ConfigError("expected a list of terms", key=path)
    if not items:
        raise ConfigError("empty list: give at least one term", key=path)
    out: list[_Term] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        text = _term_text(item, where)
        if text.startswith("$") and " " not in text.strip():
            out.extend(lists.get(text.strip()[1:], where))
        else:
            out.append(_term(text, where, lists))
    return tuple(out)


def _term_text(item: object, where: str) -> str:
    if isinstance(item, bool):
        raise ConfigError("YAML read this as yes/no: put the term in quotes", key=where)
    if isinstance(item, int | float):
        return str(item)
    if not isinstance(item, str):
        raise ConfigError("a term is a piece of text", key=where)
    if not item.strip():
        raise ConfigError("empty term", key=where)
    return item


def _term(text: str, where: str, lists: _Lists) -> _Term:
    if text.startswith("re:"):
        source = _regex_source(text[3:], where)
        return _Term(text, source, bounded=False, first=_regex_first(text[3:]))
    tokens = normalize(text).split(" ")
    if tokens[0] == "..." or tokens[-1] == "...":
        raise ConfigError("'...' goes between two words", key=where)
    elements: list[_Term] = []
    joins: list[str] = []  # joins[i] goes before elements[i]
    gap = False
    for token in tokens:
        if token == "...":
            if gap:
                raise ConfigError("write '...' once between two words", key=where)
            gap = True
            continue
        joins.append(_GAP + _JOIN if gap else _JOIN)
        gap = False
        if token.startswith("$"):
            inner = lists.get(token[1:], where)
            elements.append(
                _Term(
                    token,
                    _alternation(inner),
                    False,
                    _first_chars(inner),
                    _union_anchors(inner),
                )
            )
        else:
            elements.append(_word(token, where))
    head = elements[0]
    rest = "".join(j + e.source for j, e in zip(joins[1:], elements[1:], strict=True))
    # Every word of a phrase is in any text it matches, so any one word's anchors do.
    anchors = _best_anchors([e.anchors for e in elements])
    pieces: tuple[_Term, ...] = ()
    if tokens[0].startswith("$"):
        # A phrase that starts with a list: the terms of the list that start a word and
        # those that may start inside one make two pieces, so that the first piece is
        # tried only where a word starts (see `_source`).
        inner = lists.get(tokens[0][1:], where)
        pieces = tuple(
            _Term(text, _alternation(part) + rest, bounded, _first_chars(part), anchors)
            for bounded in (True, False)
            if (part := [t for t in inner if t.bounded is bounded])
        )
    return _Term(text, head.body + rest, head.bounded, head.first, anchors, pieces)


def _word(word: str, where: str) -> _Term:
    infix, suffix = word.startswith("*"), word.endswith("*")
    core = word[1 if infix else 0 : -1 if suffix else None]
    if not core or "*" in core:
        raise ConfigError(f"'*' goes only at the start or end of a word: '{word}'", key=where)
    # A Korean word takes its particles and endings as a `*` does: 기념비 → 기념비를.
    open_end = suffix or re.match(rf"[{_HANGUL}]", core[-1]) is not None
    right = r"\w*" if open_end else r"(?!\w)"
    return _Term(
        word,
        re.escape(core) + right,
        bounded=not infix,
        first=frozenset(core[0]),
        anchors=frozenset([core]),
    )


def _regex_first(source: str) -> frozenset[str] | None:
    """The characters a `re:` term's matches start with, when it starts with a literal.

    Knowing them lets the set skip every other position (see `_term_set`); a term that
    starts with anything else (a class, a group, a lookaround) can start anywhere.
    """
    literal = re.match(r"[^\\.^$*+?{}\[\]|()]", source)
    if literal is None or (len(source) > 1 and source[1] in "*?{") or _top_level_or(source):
        return None
    char = literal.group()
    return frozenset({char.lower(), char.upper()})


def _top_level_or(source: str) -> bool:
    """Whether `source` has a `|` outside every group and class."""
    depth, escaped, in_class = 0, False, False
    for char in source:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
    return False


def _regex_source(source: str, where: str) -> str:
    try:
        compiled = re.compile(source)
    except re.error as e:
        raise ConfigError(f"invalid regular expression: {e}", key=where) from None
    if compiled.groups:
        raise ConfigError("use (?:...) for groups in a re: term", key=where)
    if compiled.match(""):
        raise ConfigError("this regular expression matches empty text", key=where)
    wrapped = source if source == source.lower() else f"(?i:{source})"
    try:  # as it will be used: unwrapped when lowercase (it then joins a trie)
        re.compile(wrapped)
    except re.error as e:
        raise ConfigError(f"invalid regular expression: {e}", key=where) from None
    return wrapped


SCRIPTS = {"l": "a-z", "c": "\u0400-\u04ff", "h": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3"}
"""Alphabets whose words a set can skip in a text without them: Latin, Cyrillic, Hangul."""
_SCRIPT_OF = {key: re.compile(f"[{chars}]") for key, chars in SCRIPTS.items()}


def scripts_of(text: str) -> str:
    """The keys of `SCRIPTS` whose alphabets `text` has letters of, e.g. "lc"."""
    return "".join(key for key, found in _SCRIPT_OF.items() if found.search(text))


def _source(terms: Sequence[_Term]) -> str:
    """One expression for `terms`, built so that the engine skips fast.

    A position whose letter starts no term is ruled out by one test. Terms that start
    a word are then tried only where a word starts (most positions are inside words);
    terms that may start inside a word (`*기념관`, `re:`) wherever their letter stands.
    """
    every = [piece for t in terms for piece in (t.pieces or (t,))]
    starting = [t for t in every if t.bounded]
    inside = [t for t in every if not t.bounded]
    parts = []
    if starting:
        parts.append(r"(?<!\w)" + _first_test(starting) + _alternation(starting))
    if inside:
        parts.append(_first_test(inside) + _alternation(inside))
    either = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
    # One test of the letter first, for all of them: it rules out most positions.
    return _first_test(terms) + either


def _first_test(terms: Sequence[_Term]) -> str:
    """A lookahead for the letters the terms start with, when they are all known."""
    first = _first_chars(terms)
    if not first:
        return ""
    return "(?=[" + "".join(re.escape(c) for c in sorted(first)) + "])"


def _can_start_in(term: _Term, scripts: str) -> bool:
    """Whether a match of `term` can start with a letter of `scripts` (or anything else)."""
    if term.first is None:
        return True
    for char in term.first:
        known = [key for key, pattern in _SCRIPT_OF.items() if pattern.match(char)]
        if not known or known[0] in scripts:
            return True
    return False


_NEVER = re.compile("(?!)")


def _term_set(path: str, terms: Sequence[_Term], where: str) -> TermSet:
    source = _source(terms)
    anywhere = [i for i, t in enumerate(terms) if t.first is None]
    by_first: dict[str, list[int]] = {"": anywhere}
    for i, t in enumerate(terms):
        for c in t.first or ():
            by_first.setdefault(c, []).append(i)
    buckets = {c: tuple(sorted({*found, *anywhere})) for c, found in by_first.items()}
    return TermSet(
        path,
        tuple(t.text for t in terms),
        source,
        tuple(t.source for t in terms),
        buckets,
        _union_anchors(terms),
        tuple(terms),
    )


# --- validating the structure ------------------------------------------------------------


def _mapping(raw: object, path: str, allowed: Sequence[str]) -> dict[str, object]:
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping with keys: {', '.join(allowed)}", key=path)
    for key in raw:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            tip = f"; did you mean '{hint[0]}'?" if hint else f" (expected: {', '.join(allowed)})"
            raise ConfigError(f"unknown key '{key}'{tip}", key=f"{path}.{key}")
    return raw


def _text(raw: dict[str, object], key: str, path: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if value is None:
        raise ConfigError(f"missing '{key}'", key=f"{path}.{key}" if path else key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("expected non-empty text", key=f"{path}.{key}")
    return value.strip()


def _groups(raw: Mapping[str, object], base: str, path: str, lists: _Lists) -> list[TermSet]:
    """The required groups of a rule: each item of `all`, then `any` as one more group."""
    groups: list[TermSet] = []
    if "all" in raw:
        groups += _group_list(raw["all"], f"{base}.all", f"{path}.all", lists, "all")
    if "any" in raw:
        terms = _terms(raw["any"], f"{path}.any", lists)
        groups.append(_term_set(f"{base}.any", terms, f"{path}.any"))
    return groups


def _group_list(items: object, base: str, where: str, lists: _Lists, key: str) -> list[TermSet]:
    """A list of groups, as `all` and `with` hold them."""
    if not isinstance(items, list) or not items:
        raise ConfigError(f"'{key}' is a list of groups: [a, b], any: [...] or $list", key=where)
    return [
        _group(item, f"{base}[{i}]", f"{where}[{i}]", lists, key) for i, item in enumerate(items)
    ]


def _group(item: object, base: str, where: str, lists: _Lists, key: str) -> TermSet:
    if isinstance(item, dict):
        body = _mapping(item, where, ["any"])
        if "any" not in body:
            raise ConfigError("missing 'any'", key=f"{where}.any")
        return _term_set(base, _terms(body["any"], f"{where}.any", lists), where)
    if isinstance(item, str) and not item.strip().startswith("$"):
        raise ConfigError(
            f"each item under '{key}' is a group: [a, b], any: [a, b] or $list", key=where
        )
    return _term_set(base, _terms(item, where, lists), where)


def _optional_set(
    raw: dict[str, object], key: str, base: str, path: str, lists: _Lists
) -> TermSet | None:
    if key not in raw:
        return None
    return _term_set(base, _terms(raw[key], f"{path}.{key}", lists), f"{path}.{key}")


def _compile_watch(raw: object, path: str, lists: _Lists) -> Watch:
    body = _mapping(raw, path, ["all", "any", "none"])
    groups = _groups(body, "watch", path, lists)
    if not groups:
        raise ConfigError("'watch' needs 'all' or 'any'", key=f"{path}.all")
    return Watch(tuple(groups), _optional_set(body, "none", "watch.none", path, lists))


_CASE_KEYS = ["event", "with", "all", "any", "about", "tense", "unless", "none"]
_SHARED_KEYS = ["about", "tense", "unless", "none"]
"""Keys a milestone with `when` cases may set once for all of them."""


def _compile_milestone(key: object, raw: object, path: str, lists: _Lists) -> Milestone:
    if not isinstance(key, str) or not _NAME.match(key):
        raise ConfigError("milestone names use lowercase letters, digits and _", key=path)
    body = _mapping(raw, path, ["label", "when", *_CASE_KEYS])
    base = f"milestones.{key}"
    label = _text(body, "label", path, default=key.replace("_", " ").capitalize())
    if "when" not in body:
        return Milestone(key, label, (_compile_case(_Keys(body, path), base, lists),))
    for key_name in _CASE_KEYS:
        if key_name in body and key_name not in _SHARED_KEYS:
            raise ConfigError(
                f"with 'when', '{key_name}' goes inside each case of 'when'",
                key=f"{path}.{key_name}",
            )
    cases_raw = body["when"]
    if not isinstance(cases_raw, list) or not cases_raw:
        raise ConfigError(
            "'when' is a list of cases, each with its own 'event'", key=f"{path}.when"
        )
    shared = _Keys(body, path)
    cases = []
    for i, case_raw in enumerate(cases_raw):
        where = f"{path}.when[{i}]"
        own = _Keys(_mapping(case_raw, where, _CASE_KEYS), where, shared)
        cases.append(_compile_case(own, f"{base}.when[{i}]", lists))
    return Milestone(key, label, tuple(cases))


@dataclass(frozen=True)
class _Keys:
    """A case's keys, falling back to the milestone's shared ones; knows where each is."""

    raw: Mapping[str, object]
    path: str
    shared: _Keys | None = None

    def has(self, key: str) -> bool:
        return key in self.raw or (self.shared is not None and self.shared.has(key))

    def get(self, key: str) -> tuple[object, str]:
        """The value of `key` and the config path it was written at."""
        if key in self.raw or self.shared is None:
            return self.raw.get(key), f"{self.path}.{key}"
        return self.shared.get(key)


def _compile_case(keys: _Keys, base: str, lists: _Lists) -> Case:
    path = keys.path
    if not keys.has("event"):
        raise ConfigError("missing 'event': the words that say it happened", key=f"{path}.event")
    raw_event, where = keys.get("event")
    if isinstance(raw_event, dict):  # several event groups: event: {all: [...]}
        inner = _mapping(raw_event, where, ["all", "any"])
        event = _groups(inner, f"{base}.event", where, lists)
    else:
        event = [_term_set(f"{base}.event", _terms(raw_event, where, lists), where)]
    near: list[TermSet] = []
    if keys.has("with"):
        raw_with, where = keys.get("with")
        near = _group_list(raw_with, f"{base}.with", where, lists, "with")
    tense, where = keys.get("tense")
    if tense not in (None, "past", "any"):
        raise ConfigError(
            "tense is 'past' (it happened) or 'any' (will, plans to, proposed)", where
        )

    def optional(key: str) -> TermSet | None:
        if not keys.has(key):
            return None
        raw, at = keys.get(key)
        return _term_set(f"{base}.{key}", _terms(raw, at, lists), at)

    return Case(
        path=base,
        event=tuple(event),
        near=tuple(near),
        groups=tuple(_groups(keys.raw, base, path, lists)),
        about=optional("about"),
        tense="any" if tense == "any" else "past",
        unless=optional("unless"),
        exclude=optional("none"),
    )


def _order(raw: object, milestones: Sequence[Milestone], path: str) -> tuple[Milestone, ...]:
    if raw is None:
        return tuple(reversed(milestones))
    by_key = {m.key: m for m in milestones}
    if not isinstance(raw, list):
        raise ConfigError("expected a list of milestone names", key=path)
    order: list[Milestone] = []
    for i, name in enumerate(raw):
        if name not in by_key:
            known = ", ".join(by_key) or "none defined"
            raise ConfigError(
                f"unknown milestone '{name}' (milestones: {known})", key=f"{path}[{i}]"
            )
        if by_key[name] in order:
            raise ConfigError(f"'{name}' is listed twice", key=f"{path}[{i}]")
        order.append(by_key[name])
    missing = [m.key for m in milestones if m not in order]
    if missing:
        raise ConfigError(
            f"precedence must list every milestone; missing: {', '.join(missing)}", key=path
        )
    return tuple(order)


_STORY_KEYS = ["id", "name", "lists", "watch", "cues", "milestones", "precedence", "examples"]


def _compile_story(raw: object, path: str, shared: Mapping[str, tuple[_Term, ...]]) -> Story:
    if isinstance(raw, dict) and "modality" in raw:
        raise ConfigError(
            "'modality' is now the shared language cues: drop it, or put story-specific "
            "cue words under 'cues' (docs/rules.md, Language cues)",
            key=f"{path}.modality",
        )
    body = _mapping(raw, path, _STORY_KEYS)
    story_id = _text(body, "id", path)
    if not _ID.match(story_id):
        raise ConfigError("ids use lowercase letters, digits, - and _", key=f"{path}.id")
    raw_lists = body.get("lists", {})
    if not isinstance(raw_lists, dict):
        raise ConfigError("expected a mapping of list names to terms", key=f"{path}.lists")
    lists = _Lists(raw_lists, f"{path}.lists")
    lists.check_all()
    if "watch" not in body:
        raise ConfigError("missing 'watch'", key=f"{path}.watch")
    watch = _compile_watch(body["watch"], f"{path}.watch", lists)
    raw_milestones = body.get("milestones", {})
    if not isinstance(raw_milestones, dict):
        raise ConfigError("expected a mapping of milestone names", key=f"{path}.milestones")
    milestones = tuple(
        _compile_milestone(k, v, f"{path}.milestones.{k}", lists) for k, v in raw_milestones.items()
    )
    own = _cue_terms(body.get("cues"), f"{path}.cues", lists) if "cues" in body else {}
    return Story(
        id=story_id,
        name=_text(body, "name", path),
        milestones=milestones,
        watch=watch,
        cues=_compile_cues({**shared, **own}, f"{path}.cues"),
        order=_order(body.get("precedence"), milestones, f"{path}.precedence"),
        prefilter=_cheapest(watch.groups),
        examples=_examples(body.get("examples", []), f"{path}.examples", milestones),
    )


# --- language cues -------------------------------------------------------------------------


@functools.cache
def builtin_cues() -> Mapping[str, tuple[str, ...]]:
    """The cue words shipped with monitor (monitor/match/cues.yaml), by kind."""
    text = resources.files("monitor.match").joinpath("cues.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    return MappingProxyType({kind: tuple(str(w) for w in raw[kind]) for kind in CUE_KINDS})


def _cue_terms(raw: object, path: str, lists: _Lists) -> dict[str, tuple[_Term, ...]]:
    """Cue lists by kind as written under a `cues` key (a mapping of kind to terms)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping of cue lists: {', '.join(CUE_KINDS)}", key=path)
    body = _mapping(raw, path, CUE_KINDS)
    out: dict[str, tuple[_Term, ...]] = {}
    for kind, words in body.items():
        if words in (None, []):
            out[kind] = ()  # an empty list switches a kind off
        else:
            out[kind] = _terms(words, f"{path}.{kind}", lists)
    return out


def shared_cues(raw: object, key: str = "cues") -> Mapping[str, tuple[_Term, ...]]:
    """The cue lists every story reads with: the built-in words plus a config's `cues`."""
    none = _Lists({}, key)
    found = {
        kind: _terms(list(words), f"(built-in cues).{kind}", none)
        for kind, words in builtin_cues().items()
    }
    if raw is not None:
        for kind, terms in _cue_terms(raw, key, none).items():
            found[kind] = found[kind] + terms
    return MappingProxyType(found)


_NEAR_KINDS = ("negation", "undecided", "future")
"""The kinds read in an event word's clause (`Cues.scan`); the others have their own places."""


def _compile_cues(terms: Mapping[str, tuple[_Term, ...]], path: str) -> Cues:
    sets = {
        kind: _term_set(f"cues.{kind}", terms[kind], f"{path}.{kind}") if terms.get(kind) else None
        for kind in CUE_KINDS
    }
    every = [
        (kind, i, term)
        for kind in CUE_KINDS
        if kind in _NEAR_KINDS
        for i, term in enumerate(terms.get(kind, ()))
    ]
    scan = _term_set("cues", [t for _, _, t in every], path) if every else None
    return Cues(sets, scan, tuple((kind, i) for kind, i, _ in every))


def _examples(raw: object, path: str, milestones: Sequence[Milestone]) -> tuple[Example, ...]:
    """The story's `examples`, checked for shape here; what they expect is run later."""
    if not isinstance(raw, list):
        raise ConfigError("expected a list of {title, summary, expect} mappings", key=path)
    allowed = [*(m.key for m in milestones), *NOT_MILESTONES]
    examples = []
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        body = _mapping(item, where, ["title", "summary", "expect"])
        expect = _text(body, "expect", where)
        if expect not in allowed:
            hint = difflib.get_close_matches(expect, allowed, n=1)
            tip = f"; did you mean '{hint[0]}'?" if hint else f" (expect: {', '.join(allowed)})"
            raise ConfigError(f"unknown milestone '{expect}'{tip}", key=f"{where}.expect")
        summary = _text(body, "summary", where) if "summary" in body else ""
        examples.append(Example(where, _text(body, "title", where), summary, expect))
    return tuple(examples)


def _cheapest(groups: Sequence[TermSet]) -> TermSet:
    """The required group that is cheapest to rule out: anchored, with the fewest anchors
    (each is one scan of the text), the longest shortest one breaking ties."""

    def cost(group: TermSet) -> tuple[int, int, int]:
        if group.anchors is None:
            return (1, len(group.by_first), 0)
        return (0, len(group.anchors), -min(map(len, group.anchors)))

    return min(groups, key=cost)


def compile_stories(
    raw: object, key: str = "stories", cues: object = None, cues_key: str = "cues"
) -> tuple[Story, ...]:
    """Validate and compile the raw `stories` list as loaded from YAML.

    `cues` is the config's top-level `cues` mapping (words added to the built-in
    language cues for every story); a story's own `cues` replace a kind for that story.
    """
    shared = shared_cues(cues, cues_key)
    if not isinstance(raw, list) or not raw:
        raise ConfigError("expected a list of stories (at least one)", key=key)
    stories: list[Story] = []
    for i, item in enumerate(raw):
        story = _compile_story(item, f"{key}[{i}]", shared)
        for j, other in enumerate(stories):
            if other.id == story.id:
                raise ConfigError(
                    f"duplicate story id '{story.id}' (also {key}[{j}])", key=f"{key}[{i}].id"
                )
        stories.append(story)
    return tuple(stories)
