"""Run monitor as if a module were not installed: `python -m tests.support.without
MODULE ARGS...`. The module is blocked in `sys.modules` before monitor starts, so every
import of it fails as on a machine that lacks it (what a missing extra looks like)."""

from __future__ import annotations

import runpy
import sys


def main() -> None:
    sys.modules[sys.argv[1]] = None  # type: ignore[assignment]
    sys.argv = ["monitor", *sys.argv[2:]]
    runpy.run_module("monitor", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
