"""`python -m tests.support.full_disk ROOM ARGS...` runs `monitor ARGS...` on a disk that
has ROOM bytes of room: a write past ROOM bytes into any file fails, with EFBIG, as it
does on a full disk (SQLite reports "disk I/O error").

The limit (RLIMIT_FSIZE) is set by the process on itself before monitor is imported, so
no code runs between fork and exec; it is a soft limit, so the test may lift it from
outside while monitor runs (`resource.prlimit`), as when room is made on a disk.
"""

from __future__ import annotations

import resource
import runpy
import sys


def monitor_module(room: int | None = None) -> list[str]:
    """What follows `python -m` to run monitor: on a full disk when `room` is given."""
    return ["monitor"] if room is None else ["tests.support.full_disk", str(room)]


def main() -> None:
    room = int(sys.argv[1])
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (room, hard))
    sys.argv = ["monitor", *sys.argv[2:]]
    runpy.run_module("monitor", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
