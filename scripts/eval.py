"""Score the story rules on labelled headlines: confusion matrix and metrics.

    python scripts/eval.py                       # ../shared/eval/dev.jsonl
    python scripts/eval.py --data tests/data/heldout.jsonl --errors
    python scripts/eval.py --explain "title" "summary"

Labels are `site_selection`, `design_reveal`, `unveiling`, `other_update` (the
relevant ones) and `irrelevant`. Every item counts, whatever its language: rules
written for en/ru/uk/ko that miss an Italian report are counted as missing it, and
the figures for the four languages alone are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.match import classify_stream, explain  # noqa: E402
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/eval/dev.jsonl")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--errors", action="store_true", help="list the items got wrong")
    parser.add_argument("--explain", nargs=2, metavar=("TITLE", "SUMMARY"))
    args = parser.parse_args(argv)
    stories = load_stories(args.config)
    if args.explain:
        print(explain(args.explain[0], args.explain[1], stories))
        return 0
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line]
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
