"""classify, this checkout against another one, on one labelled file, in one process.

    python bench/classify_ab.py OTHER_CHECKOUT [--data ../shared/eval/dev.jsonl]
    git worktree add /tmp/before <commit> && python bench/classify_ab.py /tmp/before

Loads each checkout's engine and its own config.yaml (examples unjudged), then times
classify over the file's relevant rows (label not `irrelevant`), alternating the two
for --rounds rounds and keeping each one's best: on a shared, noisy machine the ratio
of the two is steadier than either figure alone (docs/benchmarks.md, "Matching").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent

Classify = Callable[[str, str, Sequence[Any]], object]


def _engine(root: Path) -> tuple[Classify, Sequence[Any]]:
    """The classify function and compiled stories of the checkout at `root`."""
    for name in [m for m in sys.modules if m == "monitor" or m.startswith("monitor.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        from monitor.config.settings import load_config  # noqa: PLC0415 (imported per checkout)
        from monitor.match.classify import classify  # noqa: PLC0415

        try:
            config = load_config(root / "config.yaml", env={}, examples=False)
        except TypeError:  # a checkout from before stories had examples
            config = load_config(root / "config.yaml", env={})
    finally:
        sys.path.remove(str(root))
    return classify, config.stories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (a git worktree)")
    parser.add_argument("--data", type=Path, default=HERE.parent / "shared/eval/dev.jsonl")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line]
    items = [(r.get("title") or "", r.get("summary") or "") for r in rows]
    relevant = [i for i, r in zip(items, rows, strict=True) if r.get("label") != "irrelevant"]
    engines = {"this": _engine(HERE), "other": _engine(args.other.resolve())}
    best = dict.fromkeys(engines, float("inf"))
    for _ in range(args.rounds):
        for name, (classify, stories) in engines.items():
            started = time.perf_counter()
            for title, summary in relevant:
                classify(title, summary, stories)
            best[name] = min(best[name], (time.perf_counter() - started) / len(relevant))
    for name, seconds in best.items():
        print(f"{name:6s} {seconds * 1e6:7.1f} µs per relevant row ({len(relevant)} rows)")
    print(f"ratio  {best['this'] / best['other']:.2f}")


if __name__ == "__main__":
    main()
