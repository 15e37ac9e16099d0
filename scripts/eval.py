"""Score the story rules on labelled headlines: confusion matrix and metrics.

    python scripts/eval.py                       # ../shared/eval/dev.jsonl
    python scripts/eval.py --data tests/data/heldout.jsonl --errors
    python scripts/eval.py --explain "title" "summary"
    python scripts/eval.py --bench               # time per item

Labels are `site_selection`, `design_reveal`, `unveiling`, `other_update` (the
relevant ones) and `irrelevant`. Every item counts, whatever its language: rules
written for en/ru/uk/ko that miss an Italian report are counted as missing it, and
the figures for the four languages alone are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.match import classify, classify_stream, explain, prefilter  # noqa: E402
from monitor.rules import Story, compile_stories  # noqa: E402

MILESTONES = ("site_selection", "design_reveal", "unveiling")
LABELS = (*MILESTONES, "other_update", "irrelevant")
RULE_LANGUAGES = ("en", "ru", "uk", "ko")


@dataclass(frozen=True)
class Scores:
    """The figures the quality gate asserts, and what they were computed from."""

    items: int
    milestone_precision: float
    milestone_recall: float
    relevance_f1: float
    near_misses_given_milestone: int
    matrix: Mapping[tuple[str, str], int]


def predicted_label(result: Mapping[str, object]) -> str:
    """Map one `classify_stream` result onto the label set."""
    if result.get("story") is None:
        return "irrelevant"
    milestone = result.get("milestone")
    return milestone if isinstance(milestone, str) else "other_update"


def score(pairs: Iterable[tuple[str, str]]) -> Scores:
    """Scores for (gold, predicted) label pairs."""
    matrix: dict[tuple[str, str], int] = {}
    for gold, pred in pairs:
        matrix[gold, pred] = matrix.get((gold, pred), 0) + 1
    total = sum(matrix.values())
    said = sum(n for (_, p), n in matrix.items() if p in MILESTONES)
    real = sum(n for (g, _), n in matrix.items() if g in MILESTONES)
    right = sum(n for (g, p), n in matrix.items() if p in MILESTONES and g == p)
    relevant = {*MILESTONES, "other_update"}
    tp = sum(n for (g, p), n in matrix.items() if g in relevant and p in relevant)
    fp = sum(n for (g, p), n in matrix.items() if g not in relevant and p in relevant)
    fn = sum(n for (g, p), n in matrix.items() if g in relevant and p not in relevant)
    near = sum(n for (g, p), n in matrix.items() if g == "irrelevant" and p in MILESTONES)
    return Scores(
        items=total,
        milestone_precision=right / said if said else 1.0,
        milestone_recall=right / real if real else 1.0,
        relevance_f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
        near_misses_given_milestone=near,
        matrix=matrix,
    )


def load_stories(config: Path) -> tuple[Story, ...]:
    """The compiled `stories` of a config file."""
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    return compile_stories(raw["stories"])


def run(rows: Sequence[Mapping[str, object]], stories: Sequence[Story]) -> list[dict[str, object]]:
    """Classify labelled rows through `classify_stream`, the engine of `monitor classify`."""
    lines = [json.dumps({k: row.get(k) for k in ("id", "title", "summary")}) for row in rows]
    return list(classify_stream(lines, stories))


def render(scores: Scores, title: str) -> str:
    """The confusion matrix (rows: gold, columns: predicted) and the metrics."""
    short = {"site_selection": "site", "design_reveal": "design", "unveiling": "unveil"}
    names = [short.get(label, label.replace("_update", "")) for label in LABELS]
    lines = [f"{title}: {scores.items} items", ""]
    lines.append("gold \\ predicted".ljust(18) + "".join(n.rjust(11) for n in names))
    for gold, name in zip(LABELS, names, strict=True):
        cells = "".join(str(scores.matrix.get((gold, p), 0)).rjust(11) for p in LABELS)
        lines.append(name.ljust(18) + cells)
    lines += [
        "",
        f"milestone precision   {scores.milestone_precision:.3f}",
        f"milestone recall      {scores.milestone_recall:.3f}",
        f"relevance F1          {scores.relevance_f1:.3f}",
        f"near misses given a milestone: {scores.near_misses_given_milestone}",
    ]
    return "\n".join(lines)


# Ordinary news of the kind that makes up most of a feed, in the four languages.
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


def bench(rows: Sequence[Mapping[str, object]], stories: Sequence[Story]) -> str:
    """Microseconds per item (best of five rounds) for classify and prefilter."""
    relevant = [(str(r["title"]), str(r["summary"])) for r in rows if r["label"] != "irrelevant"]
    every = [(str(r["title"]), str(r["summary"])) for r in rows]
    lines = []
    for name, items, test in [
        ("classify, unrelated news", UNRELATED, classify),
        ("prefilter, unrelated news", UNRELATED, prefilter),
        ("classify, relevant items", relevant, classify),
        ("classify, all items", every, classify),
    ]:
        rounds = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(20):
                for title, summary in items:
                    test(title, summary, stories)
            rounds.append((time.perf_counter() - start) / (20 * len(items)))
        lines.append(f"{name:28} {min(rounds) * 1e6:8.1f} µs per item")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/eval/dev.jsonl")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--errors", action="store_true", help="list the items got wrong")
    parser.add_argument("--explain", nargs=2, metavar=("TITLE", "SUMMARY"))
    parser.add_argument("--bench", action="store_true", help="time classify and prefilter")
    args = parser.parse_args(argv)
    stories = load_stories(args.config)
    if args.explain:
        print(explain(args.explain[0], args.explain[1], stories))
        return 0
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line]
    if args.bench:
        started = time.perf_counter()
        load_stories(args.config)
        print(f"{'compiling the config':28} {(time.perf_counter() - started) * 1e3:8.1f} ms")
        print(bench(rows, stories))
        return 0
    results = run(rows, stories)
    pairs = [(str(r["label"]), predicted_label(p)) for r, p in zip(rows, results, strict=True)]
    print(render(score(pairs), str(args.data)))
    ours = [
        pair for pair, row in zip(pairs, rows, strict=True) if row.get("lang") in RULE_LANGUAGES
    ]
    if len(ours) < len(pairs):
        print()
        print(render(score(ours), "the same, en/ru/uk/ko items only"))
    if args.errors:
        print("\nwrong:")
        for row, (gold, pred), result in zip(rows, pairs, results, strict=True):
            if gold != pred:
                print(f"  {row['id']}: gold {gold}, predicted {pred} — {result.get('why')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
