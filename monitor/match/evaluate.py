"""Judge labelled texts with the story rules: `monitor eval` and the stories' `examples`.

A label says what a text is to a story: one of its milestone keys, `other_update`
(about the story, no milestone) or `irrelevant` (not about it). A verdict is read as a
label the same way (`outcome`), for one story when the label names it, else for
whichever story the verdict is about.

Scores, over (gold, predicted) label pairs:

- milestone precision: of the texts judged a milestone, the share judged the right one;
- milestone recall: of the texts labelled a milestone, the share judged that milestone;
- relevance F1: F1 of "about a story", every label but `irrelevant` counting as relevant;
- near misses given a milestone: texts labelled `irrelevant` judged a milestone, the
  false alerts a look-alike would send.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.core.errors import ConfigError, LabelsError
from monitor.match.classify import Verdict, classify, prefilter
from monitor.match.rules import NOT_MILESTONES, Story

OTHER_UPDATE, IRRELEVANT = NOT_MILESTONES
SHOWN_PROBLEMS = 10
"""Bad lines listed before the rest are only counted."""


def outcome(verdict: Verdict, story: str | None = None) -> str:
    """The verdict as a label: for `story` (another story's verdict is `irrelevant`
    to it) or, without one, for the story the verdict is about."""
    if verdict.story is None or (story is not None and verdict.story != story):
        return IRRELEVANT
    return verdict.milestone or OTHER_UPDATE


def described(verdict: Verdict, story: str | None = None) -> str:
    """`outcome`, saying which other story took the text when that is why it is irrelevant."""
    if verdict.story is not None and story is not None and verdict.story != story:
        return f"{verdict.milestone or OTHER_UPDATE} of story {verdict.story}"
    return outcome(verdict, story)


# --- examples: run once when the config loads ------------------------------------------


def check_examples(stories: Sequence[Story]) -> None:
    """Raise `ConfigError` at the first example whose verdict is not what it expects.

    Each example is judged against every story, as a feed item would be: an example of
    a milestone fails when an earlier story takes the text.
    """
    failed: list[tuple[str, str]] = []
    for story in stories:
        for example in story.examples:
            verdict = classify(example.title, example.summary, stories)
            if outcome(verdict, story.id) != example.expect:
                got = f"expected {example.expect}, got {described(verdict, story.id)}"
                failed.append((example.path, f"{got} ({verdict.why})"))
    if failed:
        (path, message), more = failed[0], len(failed) - 1
        if more:
            message += f"; {more} more example{'s fail' if more > 1 else ' fails'} too"
        raise ConfigError(message, key=path)


# --- scoring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """The figures a quality bar asserts, and the confusion matrix they come from."""

    items: int
    milestone_precision: float
    milestone_recall: float
    relevance_f1: float
    near_misses_given_milestone: int
    matrix: Mapping[tuple[str, str], int]
    """(gold, predicted) → how many texts."""
    milestones_predicted: int = 0
    milestones_right: int = 0
    milestones_labelled: int = 0


def score(pairs: Iterable[tuple[str, str]]) -> Scores:
    """Scores for (gold, predicted) label pairs; any label but the two others is a milestone."""
    matrix: dict[tuple[str, str], int] = {}
    for gold, pred in pairs:
        matrix[gold, pred] = matrix.get((gold, pred), 0) + 1
    said = sum(n for (_, p), n in matrix.items() if p not in NOT_MILESTONES)
    real = sum(n for (g, _), n in matrix.items() if g not in NOT_MILESTONES)
    right = sum(n for (g, p), n in matrix.items() if p not in NOT_MILESTONES and g == p)
    tp = sum(n for (g, p), n in matrix.items() if IRRELEVANT not in (g, p))
    fp = sum(n for (g, p), n in matrix.items() if g == IRRELEVANT != p)
    fn = sum(n for (g, p), n in matrix.items() if g != IRRELEVANT == p)
    near = sum(n for (g, p), n in matrix.items() if g == IRRELEVANT and p not in NOT_MILESTONES)
    return Scores(
        items=sum(matrix.values()),
        milestone_precision=right / said if said else 1.0,
        milestone_recall=right / real if real else 1.0,
        relevance_f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
        near_misses_given_milestone=near,
        matrix=matrix,
        milestones_predicted=said,
        milestones_right=right,
        milestones_labelled=real,
    )


@dataclass(frozen=True)
class Bar:
    """Least scores (and most near misses) below which `monitor eval` fails."""

    min_precision: float | None = None
    min_recall: float | None = None
    min_f1: float | None = None
    max_near_misses: int | None = None

    def shortfalls(self, scores: Scores) -> list[str]:
        """One phrase per figure that misses the bar; empty when all pass."""
        out = []
        for name, value, least in [
            ("milestone precision", scores.milestone_precision, self.min_precision),
            ("milestone recall", scores.milestone_recall, self.min_recall),
            ("relevance F1", scores.relevance_f1, self.min_f1),
        ]:
            if least is not None and value < least:
                out.append(f"{name} {value:.3f} < {least:.3f}")
        near, most = scores.near_misses_given_milestone, self.max_near_misses
        if most is not None and near > most:
            out.append(f"near misses given a milestone {near} > {most}")
        return out


# --- a labelled file -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One labelled text. `story` is set only when the line names a story of the config."""

    line: int
    id: str | None
    title: str
    summary: str
    label: str
    story: str | None = None


def read_rows(path: Path, stories: Sequence[Story]) -> tuple[list[Row], list[str]]:
    """The labelled rows of a JSON-lines file, and the `story` values that name no story
    of the config (such rows are judged for any story). Raise `LabelsError` on any bad line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise LabelsError(f"cannot read {path}: {reason}") from None
    labels = _labels(stories)
    rows: list[Row] = []
    problems: list[str] = []
    foreign: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row, unknown_story = _row(number, line, labels)
        except ValueError as exc:
            problems.append(f"{path}:{number}: {exc}")
            continue
        rows.append(row)
        if unknown_story is not None:
            foreign[unknown_story] = None
    if problems:
        hidden = len(problems) - SHOWN_PROBLEMS
        shown = problems[:SHOWN_PROBLEMS] + ([f"... and {hidden} more"] if hidden > 0 else [])
        raise LabelsError(*shown)
    if not rows:
        raise LabelsError(f"no labelled lines in {path}")
    return rows, list(foreign)


def _labels(stories: Sequence[Story]) -> dict[str | None, tuple[str, ...]]:
    """The labels a row may carry: per story id, and (under None) for any story."""
    labels: dict[str | None, tuple[str, ...]] = {
        s.id: (*(m.key for m in s.milestones), *NOT_MILESTONES) for s in stories
    }
    every = dict.fromkeys(m.key for s in stories for m in s.milestones)
    labels[None] = (*every, *NOT_MILESTONES)
    return labels


def _row(
    number: int, line: str, labels: Mapping[str | None, Sequence[str]]
) -> tuple[Row, str | None]:
    """The row of one line, and its `story` when that names no story of the config."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(item, dict):
        raise ValueError("expected a JSON object with title, summary and label")
    texts = {key: item.get(key) for key in ("title", "summary")}
    bad = [key for key, value in texts.items() if value is not None and not isinstance(value, str)]
    if bad or not any(texts.values()):
        raise ValueError(f"needs text in {' and '.join(bad or ['title or summary'])}")
    named = item.get("story")
    if named is not None and not isinstance(named, str):
        raise ValueError("'story' is a story id")
    story = named if named in labels else None
    label = item.get("label")
    allowed = labels[story]
    if not isinstance(label, str) or label not in allowed:
        hint = difflib.get_close_matches(str(label), allowed, n=1)
        tip = f"; did you mean '{hint[0]}'?" if hint else f" (labels: {', '.join(allowed)})"
        raise ValueError(
            f"{'unknown' if 'label' in item else 'missing'} label{_quoted(label)}{tip}"
        )
    ident = item.get("id")
    row = Row(
        line=number,
        id=None if ident is None else str(ident),
        title=texts["title"] or "",
        summary=texts["summary"] or "",
        label=label,
        story=story,
    )
    return row, named if named != story else None


def _quoted(label: object) -> str:
    return f" {label!r}" if label is not None else ""


# --- judging a file ----------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """A row, the verdict on it, and that verdict as a label."""

    row: Row
    verdict: Verdict

    @property
    def predicted(self) -> str:
        return outcome(self.verdict, self.row.story)

    @property
    def right(self) -> bool:
        return self.predicted == self.row.label


@dataclass(frozen=True)
class Report:
    """What `monitor eval` prints: scores, the matrix's labels, every error."""

    source: str
    labels: tuple[str, ...]
    """Milestone keys in config order, then `other_update`, `irrelevant`."""
    scores: Scores
    judged: tuple[Judged, ...]
    foreign_stories: tuple[str, ...] = ()
    """`story` values of rows that name no story of the config: not checked."""

    @property
    def errors(self) -> list[Judged]:
        return [j for j in self.judged if not j.right]


def evaluate(
    rows: Sequence[Row],
    stories: Sequence[Story],
    source: str = "",
    foreign_stories: Sequence[str] = (),
) -> Report:
    """Judge each row with `classify` and score the verdicts against the labels."""
    judged = tuple(Judged(row, classify(row.title, row.summary, stories)) for row in rows)
    return Report(
        source=source,
        labels=_labels(stories)[None],
        scores=score((j.row.label, j.predicted) for j in judged),
        judged=judged,
        foreign_stories=tuple(foreign_stories),
    )


def render(report: Report) -> str:
    """The report for a person: the confusion matrix, the figures, every error explained."""
    s = report.scores
    lines = [f"{report.source}: {s.items} items, {len(report.errors)} wrong", ""]
    width = max(len(label) for label in report.labels) + 2
    lines.append("gold \\ predicted".ljust(width) + "".join(n.rjust(width) for n in report.labels))
    for gold in report.labels:
        cells = "".join(str(s.matrix.get((gold, p), 0)).rjust(width) for p in report.labels)
        lines.append(gold.ljust(width) + cells)
    lines += [
        "",
        f"milestone precision  {s.milestone_precision:.3f}"
        f"  ({s.milestones_right} of {s.milestones_predicted} milestone verdicts right)",
        f"milestone recall     {s.milestone_recall:.3f}"
        f"  ({s.milestones_right} of {s.milestones_labelled} labelled milestones found)",
        f"relevance F1         {s.relevance_f1:.3f}",
        f"near misses given a milestone: {s.near_misses_given_milestone}",
    ]
    if report.foreign_stories:
        names = ", ".join(report.foreign_stories[:2])
        more = ", ..." if len(report.foreign_stories) > 2 else ""
        lines += [
            "",
            f"note: the 'story' of some rows is no story of the config ({names}{more});",
            "      those rows are scored for whichever story the verdict is about",
        ]
    if report.errors:
        lines += ["", "wrong:"]
    for j in report.errors:
        name = f" [{j.row.id}]" if j.row.id else ""
        got = described(j.verdict, j.row.story)
        lines.append(f"  line {j.row.line}{name}: labelled {j.row.label}, got {got}")
        lines.append(f"      {_headline(j.row)}")
        lines.append(f"      {j.verdict.why}")
    return "\n".join(lines)


def _headline(row: Row, most: int = 100) -> str:
    text = " ".join((row.title or row.summary).split())
    return text if len(text) <= most else text[: most - 1] + "…"


def as_json(report: Report, shortfalls: Sequence[str] = ()) -> dict[str, object]:
    """The report as one JSON-ready object (for CI)."""
    s = report.scores
    return {
        "source": report.source,
        "items": s.items,
        "milestone_precision": s.milestone_precision,
        "milestone_recall": s.milestone_recall,
        "relevance_f1": s.relevance_f1,
        "near_misses_given_milestone": s.near_misses_given_milestone,
        "milestones_predicted": s.milestones_predicted,
        "milestones_right": s.milestones_right,
        "milestones_labelled": s.milestones_labelled,
        "labels": list(report.labels),
        "matrix": {g: {p: s.matrix.get((g, p), 0) for p in report.labels} for g in report.labels},
        "errors": [
            {
                "line": j.row.line,
                "id": j.row.id,
                "title": j.row.title,
                "label": j.row.label,
                "predicted": j.predicted,
                "story": j.verdict.story,
                "milestone": j.verdict.milestone,
                "why": j.verdict.why,
            }
            for j in report.errors
        ],
        "foreign_stories": list(report.foreign_stories),
        "shortfalls": list(shortfalls),
    }


# --- speed -------------------------------------------------------------------------------

# Ordinary news of the kind that makes up most of a feed, in four languages.
UNRELATED = [
    (
        "Central bank raises key rate to 21%",
        "The Bank of Russia raised its key interest rate by 200 basis points on Friday, citing "
        "persistent inflation and a tight labour market, and signalled further tightening.",
    ),
    (
        "Apple unveils new iPhone with satellite messaging",
        "Apple unveiled its latest smartphones at an event in Cupertino on Tuesday, adding "
        "satellite messaging and a faster chip while keeping prices unchanged.",
    ),
    (
        "В Москве открыли новую станцию метро",
        "Мэр Москвы открыл новую станцию Большой кольцевой линии. Пассажиропоток станции "
        "оценивается в 40 тысяч человек в сутки, сообщили в пресс-службе мэрии.",
    ),
    (
        "서울 아파트값 3주 연속 상승",
        "한국부동산원이 발표한 주간 아파트 가격 동향에 따르면 서울 아파트값은 전주 대비 0.05% "
        "올라 3주 연속 상승세를 이어갔다.",
    ),
    (
        "У Києві відкрили новий міст",
        "Міський голова повідомив, що рух мостом відкрито для легкових автомобілів, а для "
        "громадського транспорту його відкриють наступного місяця.",
    ),
    (
        "Memorial service held for victims of flood",
        "Hundreds gathered at a memorial in the town square on Sunday to remember the victims "
        "of last month's flood, as officials promised new defences along the river.",
    ),
]


def bench(
    rows: Sequence[Row], stories: Sequence[Story], rounds: int = 5
) -> list[tuple[str, float]]:
    """Microseconds per item (best of `rounds`) of classify and prefilter, on ordinary news
    and on the rows."""
    relevant = [(r.title, r.summary) for r in rows if r.label != IRRELEVANT]
    every = [(r.title, r.summary) for r in rows]
    cases: list[tuple[str, list[tuple[str, str]], Callable[[str, str, Sequence[Story]], object]]]
    cases = [
        ("classify, unrelated news", UNRELATED, classify),
        ("prefilter, unrelated news", UNRELATED, prefilter),
        ("classify, relevant rows", relevant, classify),
        ("classify, all rows", every, classify),
    ]
    figures = []
    for name, items, test in cases:
        if not items:
            continue
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(20):
                for title, summary in items:
                    test(title, summary, stories)
            best = min(best, (time.perf_counter() - started) / (20 * len(items)))
        figures.append((name, best * 1e6))
    return figures
