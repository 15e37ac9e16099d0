"""A process that opens a store or syncs feeds on command, for the race tests.

    python -m tests.support.store_worker

It reads commands from stdin, one a line, and answers each on stdout:

    prepare open URL        -> "ready"; then "go" opens (and so migrates) URL
    prepare sync URL N      -> opens URL, "ready"; then "go" syncs feeds f0000..f(N-1)

`go` answers "ok", or "error <the StoreError's line>". Everything slow (Python's
start, the imports, a connection) happens before "ready", so several workers told
"go" together reach the database together: the race the tests are about.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from monitor.core.errors import StoreError
from monitor.store.store import Store


def feed_list(count: int) -> list[tuple[str, str]]:
    """The feeds every worker syncs: the same names and URLs in every process."""
    return [(f"f{i:04d}", f"http://127.0.0.1:9/f{i:04d}.xml") for i in range(count)]


def _prepare(command: list[str]) -> Callable[[], None]:
    match command:
        case ["open", url]:
            return lambda: Store.open(url).close()
        case ["sync", url, count]:
            store = Store.open(url)
            store.feeds()  # connected before "go"

            def sync() -> None:
                try:
                    store.sync_feeds(feed_list(int(count)))
                finally:
                    store.close()

            return sync
    raise ValueError(f"unknown command {command!r}")


def main() -> None:
    work: Callable[[], None] | None = None
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["prepare"]:
            work = _prepare(words[1:])
            answer = "ready"
        elif words == ["go"] and work is not None:
            try:
                work()
                answer = "ok"
            except StoreError as exc:
                answer = f"error {exc}"
            work = None
        else:
            answer = f"error unknown command {line.strip()!r}"
        print(answer, flush=True)


if __name__ == "__main__":
    main()
