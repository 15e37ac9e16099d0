"""`check-config`: would the service start on this config?

It checks what the service will use without connecting to anything: the database's
dialect (at load), its driver (loaded), the SQLite file's folder (there and writable),
the ports (at load). The store, delivery and polling code stay unloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from monitor.cli.output import EXIT_CONFIG, EXIT_OK
from monitor.config.settings import Config
from monitor.store.store import Store


def check_config(args: argparse.Namespace, config: Config) -> int:
    # The database's driver is loaded, nothing connects: a config naming a driver that is
    # not installed is refused here, before a service is started on it.
    Store.check(config.database_url())
    if problem := sqlite_folder_problem(config.database_url()):
        print(f"monitor: config error: database: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if folder := sqlite_folder_to_come(config.database_url()):
        # systemd makes the service's StateDirectory= when it starts the service, so the
        # install checks a config whose folder does not exist yet: a warning, not a refusal.
        print(
            f"monitor: warning: database: the folder of the SQLite file, {folder}, does not "
            "exist yet; SQLite will not create it (systemd's StateDirectory= does)",
            file=sys.stderr,
        )
    print(
        f"config OK: {len(config.feeds)} feeds, {len(config.notify)} targets, "
        f"{len(config.stories)} stories ({config.path})"
    )
    return EXIT_OK


def sqlite_folder_problem(url: str) -> str | None:
    """Why the SQLite file of `url` could not be created or written, or None."""
    path = _sqlite_file(url)
    if path is None:
        return None
    if path.exists():
        return _file_problem(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the nearest folder that is there: can it hold the rest?
    if not folder.is_dir():
        return f"{folder} (on the way to the SQLite file) is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} (of the SQLite file) is not writable"
    return None


def sqlite_folder_to_come(url: str) -> Path | None:
    """The SQLite file's folder when it does not exist yet (and nothing is in the way)."""
    path = _sqlite_file(url)
    if path is None or path.parent.exists() or sqlite_folder_problem(url):
        return None
    return path.parent


def _file_problem(path: Path) -> str | None:
    if path.is_dir():
        return f"{path} is a folder, not an SQLite file"
    return None if os.access(path, os.R_OK | os.W_OK) else f"{path} is not writable"


def _sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names; None for another database, memory or a URI (whose
    modes, read-only ones included, SQLite itself enforces)."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    return None if name.startswith("file:") else Path(name)
