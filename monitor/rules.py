"""Story rules: validate the `stories` block of config.yaml and compile it, once.

A story says which texts are about it (`watch`) and which of those report a
milestone (`milestones`). Everything is checked and turned into regular expressions
here, at load time: a bad pattern, an unknown key or a reference to a list or
milestone that does not exist is a `ConfigError` naming the dotted path of the field,
e.g. `stories[0].milestones.unveiling.all[1].any[3]`. docs/rules.md is the reference
for the language; this module is its implementation.

Term syntax (after normalisation, see `monitor.textnorm`):

    word        whole word                      `museum`
    word*       word and any ending             `памятник*` → памятника, памятнику
    *word       also inside a longer word       `*기념관` → 전투위훈기념관
    한국어       Hangul words take particles     `기념비` → 기념비를, 기념비가
    two words   a phrase; spaces, hyphens and quotes between the words
    a ... b     up to four other words between a and b
    $name       a named list: alone, it adds the list's terms; in a phrase, any one of them
    re:...      a regular expression, matched against the normalised text
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor.errors import ConfigError
from monitor.textnorm import normalize

GAP_WORDS = 4
_HANGUL = "\uac00-\ud7a3"
# Between the words of a phrase: spaces, hyphens, quotes; never clause punctuation.
_JOIN = r"[^\w.!?;:,()\[\]\n|]+"
_GAP = rf"(?:{_JOIN}[\w']+){{0,{GAP_WORDS}}}"
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

Hit = tuple[int, int, int]
"""A match in normalised text: (start, end, index of the term in its `TermSet`)."""


@dataclass(frozen=True)
class TermSet:
    """One group of terms, compiled into one alternation for speed.

    `path` names the group inside its story (`watch.all[0]`, `milestones.unveiling.event`);
    `terms` are the terms as written in the config, lists expanded, in order. `pattern`
    finds any of them; `each` holds one pattern per term, used only to say which term a
    match was (naming the alternatives in `pattern` would make it ten times slower).
    They are compiled on first use: most sets never need them in a process, and
    compiling them all was half of loading the config.
    """

    path: str
    terms: tuple[str, ...]
    pattern: re.Pattern[str] = field(repr=False, compare=False)
    sources: tuple[str, ...] = field(repr=False, compare=False)
    by_first: Mapping[str, tuple[int, ...]] = field(repr=False, compare=False)
    """Which terms can start with a character; `""` lists those that can start anywhere."""
    anchors: frozenset[str] | None = field(default=None, repr=False, compare=False)
    """Plain substrings of which at least one is in every normalised text a term of the
    set matches (None when a `re:` term makes that unknowable): a scan for them with
    `in` is ten times cheaper than the pattern, so the prefilter asks them first."""

    def may_occur(self, folded: str) -> bool:
        """False only if no term can match: `folded` is `fold`ed, a superset test."""
        if self.anchors is None:
            return self.search(" ".join(folded.split()))
        return any(anchor in folded for anchor in self.anchors)

    @functools.cached_property
    def each(self) -> tuple[re.Pattern[str], ...]:
        """One compiled pattern per term (valid: the alternation of them compiled)."""
        return tuple(re.compile(source) for source in self.sources)

    def search(self, text: str) -> bool:
        """True if any term occurs in `text` (normalised)."""
        return self.pattern.search(text) is not None

    def first(self, text: str) -> Hit | None:
        """The leftmost occurrence in `text`, or None."""
        m = self.pattern.search(text)
        return None if m is None else (m.start(), m.end(), self._which(text, m))

    def hits(self, text: str) -> list[Hit]:
        """Every non-overlapping occurrence in `text`, leftmost first."""
        return [(m.start(), m.end(), self._which(text, m)) for m in self.pattern.finditer(text)]

    def _which(self, text: str, found: re.Match[str]) -> int:
        start, end = found.span()
        candidates = self.by_first.get(text[start], self.by_first.get("", ()))
        first = None
        for i in candidates:
            m = self.each[i].match(text, start)
            if m is not None:
                if m.end() == end:
                    return i
                first = i if first is None else first
        return first or 0


@dataclass(frozen=True)
class Watch:
    """Which texts are about the story: every group matches and no exclusion does."""

    groups: tuple[TermSet, ...]
    exclude: TermSet | None


@dataclass(frozen=True)
class Milestone:
    """One milestone of a story.

    It is reported when every group of `event` has a term that no modality cue or
    `unless` term cancels, in one sentence that also holds a term of every group in
    `groups`, and no `exclude` term occurs anywhere in the text.
    """

    key: str
    label: str
    event: tuple[TermSet, ...]
    groups: tuple[TermSet, ...] = ()
    unless: TermSet | None = None
    exclude: TermSet | None = None


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
    """A compiled story: its watch rule, modality cues and milestones.

    `milestones` keep config order; `order` is the order they are tried in (first match
    wins), from `precedence` or else latest-declared first. `prefilter` is the required
    watch group whose terms start with the fewest distinct characters, the cheapest to
    look for: a text without it cannot be about the story.
    """

    id: str
    name: str
    milestones: tuple[Milestone, ...]
    watch: Watch
    modality: TermSet | None = None
    order: tuple[Milestone, ...] = ()
    prefilter: TermSet | None = None
    examples: tuple[Example, ...] = field(default=(), repr=False, compare=False)
    """Texts with the verdict they must get; `monitor.config` runs them at load."""

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

    @property
    def source(self) -> str:
        return (r"(?<!\w)" if self.bounded else "") + self.body


def _alternation(terms: Sequence[_Term]) -> str:
    """One regular expression for any of `terms`, the shared word boundary factored out."""
    parts = [t.source for t in terms if not t.bounded]
    bounded = [t.body for t in terms if t.bounded]
    if bounded:
        parts.insert(0, r"(?<!\w)(?:" + "|".join(bounded) + ")")
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


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
        return _Term(text, _regex_source(text[3:], where), bounded=False, first=None)
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
    body = head.body + "".join(j + e.source for j, e in zip(joins[1:], elements[1:], strict=True))
    # Every word of a phrase is in any text it matches, so any one word's anchors do.
    anchors = _best_anchors([e.anchors for e in elements])
    return _Term(text, body, head.bounded, head.first, anchors)


def _word(word: str, where: str) -> _Term:
    infix, suffix = word.startswith("*"), word.endswith("*")
    core = word[1 if infix else 0 : -1 if suffix else None]
    if not core or "*" in core:
        raise ConfigError(f"'*' goes only at the start or end of a word: '{word}'", key=where)
    if suffix:
        right = r"\w*"
    elif re.match(rf"[{_HANGUL}]", core[-1]):
        right = rf"[{_HANGUL}]*(?!\w)"  # Korean particles: 기념비 → 기념비를
    else:
        right = r"(?!\w)"
    return _Term(
        word,
        re.escape(core) + right,
        bounded=not infix,
        first=frozenset(core[0]),
        anchors=frozenset([core]),
    )


def _regex_source(source: str, where: str) -> str:
    try:
        compiled = re.compile(source)
    except re.error as e:
        raise ConfigError(f"invalid regular expression: {e}", key=where) from None
    if compiled.groups:
        raise ConfigError("use (?:...) for groups in a re: term", key=where)
    if compiled.match(""):
        raise ConfigError("this regular expression matches empty text", key=where)
    return f"(?i:{source})"


def _term_set(path: str, terms: Sequence[_Term], where: str) -> TermSet:
    source = _alternation(terms)
    first = _first_chars(terms)
    if first:  # lets the regex engine skip every position that cannot start a match
        source = "(?=[" + "".join(re.escape(c) for c in sorted(first)) + "])" + source
    try:
        pattern = re.compile(source)
    except re.error as e:  # e.g. inline flags in a re: term
        raise ConfigError(f"invalid regular expression: {e}", key=where) from None
    anywhere = [i for i, t in enumerate(terms) if t.first is None]
    by_first: dict[str, list[int]] = {"": anywhere}
    for i, t in enumerate(terms):
        for c in t.first or ():
            by_first.setdefault(c, []).append(i)
    buckets = {c: tuple(sorted({*found, *anywhere})) for c, found in by_first.items()}
    return TermSet(
        path,
        tuple(t.text for t in terms),
        pattern,
        tuple(t.source for t in terms),
        buckets,
        _union_anchors(terms),
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


def _groups(raw: dict[str, object], base: str, path: str, lists: _Lists) -> list[TermSet]:
    """The required groups of a rule: each item of `all`, then `any` as one more group."""
    groups: list[TermSet] = []
    if "all" in raw:
        items = raw["all"]
        where = f"{path}.all"
        if not isinstance(items, list) or not items:
            raise ConfigError("'all' is a list of groups: [a, b], any: [...] or $list", key=where)
        for i, item in enumerate(items):
            groups.append(_group(item, f"{base}.all[{i}]", f"{where}[{i}]", lists))
    if "any" in raw:
        terms = _terms(raw["any"], f"{path}.any", lists)
        groups.append(_term_set(f"{base}.any", terms, f"{path}.any"))
    return groups


def _group(item: object, base: str, where: str, lists: _Lists) -> TermSet:
    if isinstance(item, dict):
        body = _mapping(item, where, ["any"])
        if "any" not in body:
            raise ConfigError("missing 'any'", key=f"{where}.any")
        return _term_set(base, _terms(body["any"], f"{where}.any", lists), where)
    if isinstance(item, str) and not item.strip().startswith("$"):
        raise ConfigError(
            "each item under 'all' is a group: [a, b], any: [a, b] or $list", key=where
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


def _compile_milestone(key: object, raw: object, path: str, lists: _Lists) -> Milestone:
    if not isinstance(key, str) or not _NAME.match(key):
        raise ConfigError("milestone names use lowercase letters, digits and _", key=path)
    body = _mapping(raw, path, ["label", "event", "all", "any", "unless", "none"])
    base = f"milestones.{key}"
    if "event" not in body:
        raise ConfigError("missing 'event': the words that say it happened", key=f"{path}.event")
    if isinstance(body["event"], dict):  # several event groups: event: {all: [...]}
        inner = _mapping(body["event"], f"{path}.event", ["all", "any"])
        event = _groups(inner, f"{base}.event", f"{path}.event", lists)
    else:
        event_terms = _terms(body["event"], f"{path}.event", lists)
        event = [_term_set(f"{base}.event", event_terms, f"{path}.event")]
    return Milestone(
        key=key,
        label=_text(body, "label", path, default=key.replace("_", " ").capitalize()),
        event=tuple(event),
        groups=tuple(_groups(body, base, path, lists)),
        unless=_optional_set(body, "unless", f"{base}.unless", path, lists),
        exclude=_optional_set(body, "none", f"{base}.none", path, lists),
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


_STORY_KEYS = ["id", "name", "lists", "watch", "modality", "milestones", "precedence", "examples"]


def _compile_story(raw: object, path: str) -> Story:
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
    return Story(
        id=story_id,
        name=_text(body, "name", path),
        milestones=milestones,
        watch=watch,
        modality=_optional_set(body, "modality", "modality", path, lists),
        order=_order(body.get("precedence"), milestones, f"{path}.precedence"),
        prefilter=_cheapest(watch.groups),
        examples=_examples(body.get("examples", []), f"{path}.examples", milestones),
    )


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


def compile_stories(raw: object, key: str = "stories") -> tuple[Story, ...]:
    """Validate and compile the raw `stories` list as loaded from YAML."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("expected a list of stories (at least one)", key=key)
    stories: list[Story] = []
    for i, item in enumerate(raw):
        story = _compile_story(item, f"{key}[{i}]")
        for j, other in enumerate(stories):
            if other.id == story.id:
                raise ConfigError(
                    f"duplicate story id '{story.id}' (also {key}[{j}])", key=f"{key}[{i}].id"
                )
        stories.append(story)
    return tuple(stories)
