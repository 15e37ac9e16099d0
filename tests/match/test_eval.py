"""The quality gate: the shipped rules on labelled headlines, through `monitor eval`.

Every item counts, whatever its language (the Italian dev item that en/ru/uk/ko rules
miss is a relevance miss). The held-out set is ours, written before the rules; the real
set is published coverage that is in neither (the 4 December 2025 site proposal in
Russian, English and Korean, the sculptor's interview and its rewrites, the Pyongyang
museum and other near misses), collected when the rules were rewritten and never tuned
on term by term. Each is scored separately and held to the same bar. `monitor eval FILE`
shows the matrix and explains every error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
SETS = {
    "dev": ROOT.parent / "shared" / "eval" / "dev.jsonl",
    "heldout": ROOT / "tests" / "data" / "heldout.jsonl",
    "real": ROOT / "tests" / "data" / "real.jsonl",
}


@pytest.mark.parametrize("name", list(SETS))
def test_quality_bar(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Milestone P ≥ 0.95, R ≥ 0.90, relevance F1 ≥ 0.90, no near miss given a milestone."""
    path = SETS[name]
    if not path.exists():
        pytest.skip(f"{path} is not here")
    # Through the real command, as a user would run it.
    done = run_cli(ROOT / "config.yaml", "eval", str(path), "--json")
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    wrong = ", ".join(str(e["id"]) for e in scores["errors"]) or "none"
    with capsys.disabled():
        print(
            f"\n{name} ({path.name}): {scores['items']} items, "
            f"milestone P {scores['milestone_precision']:.3f} "
            f"R {scores['milestone_recall']:.3f}, relevance F1 {scores['relevance_f1']:.3f}, "
            f"near misses {scores['near_misses_given_milestone']}; wrong: {wrong}"
        )
    assert scores["milestone_precision"] >= 0.95
    assert scores["milestone_recall"] >= 0.90
    assert scores["relevance_f1"] >= 0.90
    assert scores["near_misses_given_milestone"] == 0
