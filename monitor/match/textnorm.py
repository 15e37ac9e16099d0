"""Text normalisation and the word, clause and sentence geometry that rules read.

Rules and texts meet in one normalised form: NFKC, casefolded, `ё` read as `е`,
every typographic apostrophe as `'` and every typographic quote as `"`, invisible
characters dropped, whitespace runs collapsed to one space. Terms in the config go
through the same function, so `Пам’ятник` in a feed matches `пам'ятник*` in a rule.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

_APOSTROPHES = "\u2018\u2019\u201a\u201b\u02bc\u02b9\u2032\u0060\u00b4\uff07"
_QUOTES = "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a\u2033\u300c\u300d\uff02"
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"

_TABLE = str.maketrans(
    {
        "ё": "е",
        **dict.fromkeys(_APOSTROPHES, "'"),
        **dict.fromkeys(_QUOTES, '"'),
        **dict.fromkeys(_INVISIBLE, None),
    }
)
_SPECIAL = re.compile("[ё" + _APOSTROPHES + _QUOTES + _INVISIBLE + "]")


def fold(text: str) -> str:
    """`normalize` but for the whitespace, which is left as it is (the cheap part first)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if _SPECIAL.search(folded):  # translate() costs more than the search that avoids it
        folded = folded.translate(_TABLE)
    return folded


def normalize(text: str) -> str:
    """Return `text` in the one form that rules and texts are compared in."""
    return " ".join(fold(text).split())


def _normalize_piece(piece: str) -> str:
    return unicodedata.normalize("NFKC", piece).casefold().translate(_TABLE)


def normalize_mapped(text: str) -> tuple[str, list[int], list[int]]:
    """Normalise like `normalize`, also returning where each output character came from.

    `starts[i]:ends[i]` is the slice of `text` that produced output character `i`, so a
    match in the normalised text can be quoted as the feed wrote it. Characters are
    normalised one base character (with its combining marks) at a time; `normalize`
    works on the whole string, and the two agree on real text (checked by the tests).
    """
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        piece = _normalize_piece(text[i:j])
        for ch in piece:
            space = ch.isspace()
            if space and (not out or out[-1] == " "):
                continue
            out.append(" " if space else ch)
            starts.append(i)
            ends.append(j)
        i = j
    if out and out[-1] == " ":
        out.pop()
        starts.pop()
        ends.pop()
    return "".join(out), starts, ends


_LONG_SPACE = re.compile(r"\s{2,}")
_INVISIBLE_CHARS = re.compile("[" + _INVISIBLE + "]")


class Origin:
    """Quotes a span of `normalize(text)` as `text` wrote it."""

    def __init__(self, text: str, normal: str | None = None) -> None:
        """`normal` is `normalize(text)` when the caller has it already."""
        self.text = text
        self.normal = normalize(text) if normal is None else normal
        # Common case: NFKC already, casefolding keeps the length, nothing to drop. Then
        # the normalised text is the original with each run of whitespace made one space
        # and the ends stripped: a position moves by what the runs before it lost.
        self._runs: tuple[list[int], list[int]] | None = None
        self._chars: tuple[list[int], list[int]] | None = None
        if (
            len(text.casefold()) == len(text)
            and unicodedata.is_normalized("NFKC", text)
            and not _INVISIBLE_CHARS.search(text)
        ):
            lead = len(text) - len(text.lstrip())
            at, shift = [0], [lead]
            for m in _LONG_SPACE.finditer(text, lead):
                at.append(m.start() - shift[-1] + 1)  # where the run's one space ends, normalised
                shift.append(shift[-1] + m.end() - m.start() - 1)
            self._runs = (at, shift)
        else:
            mapped, starts, ends = normalize_mapped(text)
            if mapped == self.normal:
                self._chars = (starts, ends)

    def quote(self, start: int, end: int) -> str:
        """`text`'s wording for `normal[start:end]` (the normalised one if unmappable)."""
        if not 0 <= start < end <= len(self.normal):
            return self.normal[start:end]
        if self._runs is not None:
            at, shift = self._runs
            first = shift[bisect_right(at, start) - 1]
            last = shift[bisect_right(at, end - 1) - 1]
            return self.text[start + first : end + last]
        if self._chars is not None:
            starts, ends = self._chars
            return self.text[starts[start] : ends[end - 1]]
        return self.normal[start:end]


# Clause ends that always hold: sentence ends, colons, brackets, dashes, line breaks.
_HARD_BREAK = r"[.!?;:()\[\]\n|—–]| - "
# A relative word opens an island even without a comma before it: in "revealed the
# design of the monument that will stand in Kursk", "will" belongs to the monument, not
# to "revealed". (After a comma the comma itself opens the island, see below.)
_RELATIVE = (
    r"which|that|who|whom|whose|котор\w*|где|куда"
    r"|як(?:ий|а|е|і|ого|ої|ому|ій|им|ими|их|ою|у)|де|куди"
)
_BREAK = re.compile(rf"{_HARD_BREAK}|,| (?=(?:{_RELATIVE})(?!\w))")
# A comma before one of these opens an island: a relative or parenthetical clause
# whose cues stay inside it. "A monument, which will stand in the park, was unveiled"
# is one clause (a monument ... was unveiled) plus an island (which will stand ...).
_ISLAND_WORDS = re.compile(rf"(?:{_RELATIVE}|as|как|чей|чья|чье|чьи|чий|чия|чиє|чиї)\Z")
# A comma before one of these starts a new clause: "..., and a second one will follow".
_CONJUNCTIONS = re.compile(
    r"(?:and|but|while|whereas|although|though|so|а|но|и|однако|хотя|причем|зато"
    r"|але|і|й|проте|однак|хоча|та)\Z"
)
# Where the words of one milestone must meet: sentence ends (a dot before a space or
# the end), a line break (the title ends at one), a semicolon.
_SENTENCE_BREAK = re.compile(r"[.!?]+(?=\s|$)|[\n;]")
_WORD = re.compile(r"[\w']+")


def _clauses(text: str) -> tuple[tuple[int, ...], tuple[int, ...], dict[int, int]]:
    """Segment starts, the clause number of each segment (islands get their own), and
    for each island the clause it stands in ("the square, where it will stand")."""
    starts, ids = [0], [0]
    hosts: dict[int, int] = {}
    main, fresh = 0, 1

    def island(at: int) -> None:
        nonlocal fresh
        hosts[fresh] = main
        ids.append(fresh)
        fresh += 1
        starts.append(at)

    for m in _BREAK.finditer(text):
        if m.group() == " ":  # a relative word: an island of its own, unless a comma
            if m.start() and text[m.start() - 1] != ",":  # ...before it opened one already
                island(m.end())
            continue
        if m.group() == ",":
            word = _WORD.search(text, m.end())
            first = word.group() if word else ""
            if _ISLAND_WORDS.match(first):
                island(m.start())
                continue
            if not _CONJUNCTIONS.match(first):
                ids.append(main)
                starts.append(m.start())
                continue
        main, fresh = fresh, fresh + 1
        ids.append(main)
        starts.append(m.start())
    return tuple(starts), tuple(ids), hosts


@dataclass(frozen=True, slots=True)
class Layout:
    """Word, clause and sentence positions of one normalised text."""

    word_starts: tuple[int, ...]
    segment_starts: tuple[int, ...]
    segment_clauses: tuple[int, ...]
    island_hosts: dict[int, int]
    sentence_breaks: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> Layout:
        """Measure `text` (already normalised)."""
        segments, clauses, hosts = _clauses(text)
        return cls(
            word_starts=tuple([m.start() for m in _WORD.finditer(text)]),
            segment_starts=segments,
            segment_clauses=clauses,
            island_hosts=hosts,
            sentence_breaks=tuple([m.start() for m in _SENTENCE_BREAK.finditer(text)]),
        )

    def word(self, pos: int) -> int:
        """Index of the word that contains or precedes character `pos`."""
        return bisect_right(self.word_starts, pos) - 1

    def clause(self, pos: int) -> int:
        """Number of the clause that contains character `pos`."""
        return self.segment_clauses[bisect_right(self.segment_starts, pos) - 1]

    def host(self, clause: int) -> int:
        """The clause an island stands in (a clause that is no island: itself)."""
        return self.island_hosts.get(clause, clause)

    def sentence(self, pos: int) -> int:
        """Index of the sentence that contains character `pos`."""
        return bisect_right(self.sentence_breaks, pos)

    def clause_span(self, clause: int) -> tuple[int, int]:
        """From the first character of a clause's first segment to the end of its last."""
        first = self.segment_clauses.index(clause)
        last = len(self.segment_clauses) - 1 - self.segment_clauses[::-1].index(clause)
        end = self.segment_starts[last + 1] if last + 1 < len(self.segment_starts) else None
        return self.segment_starts[first], end if end is not None else 1 << 62

    def sentence_span(self, sentence: int) -> tuple[int, int]:
        """From the break before a sentence to the break after it."""
        start = self.sentence_breaks[sentence - 1] if sentence else 0
        if sentence < len(self.sentence_breaks):
            return start, self.sentence_breaks[sentence] + 1
        return start, 1 << 62

    def sentence_first_words(self) -> list[int]:
        """The index of the first word of each sentence (the word after it if it has none)."""
        return [bisect_left(self.word_starts, b) for b in (0, *self.sentence_breaks)]
