"""`monitor prune`: what it removes, what `--dry-run` only counts, and its exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.store.store import Store
from tests.conftest import run_cli, write_config
from tests.support.rows import store_items

FEED = "http://127.0.0.1:9/a.xml"


def _stored(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.sync_feeds([("a", FEED)])
    now = datetime.now(UTC)
    for days, keys in [(100, ["x1", "x2"]), (1, ["latest"])]:
        store_items(store, "a", now - timedelta(days=days), *keys)
    return store


def _titles(store: Store) -> list[str]:
    return [item.title for item in store.items()]


def test_prune_removes_what_is_old_and_dry_run_only_counts(tmp_path: Path) -> None:
    store = _stored(tmp_path)
    config = write_config(tmp_path, {"a": FEED})
    dry = run_cli(config, "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would remove 2 items, 0 cluster bands and 0 deliveries")
    assert _titles(store) == ["x1", "x2", "latest"]
    done = run_cli(config, "prune")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed 2 items, 0 cluster bands and 0 deliveries")
    assert _titles(store) == ["latest"]
    store.close()


def test_prune_with_retention_off_keeps_everything(tmp_path: Path) -> None:
    store = _stored(tmp_path)
    result = run_cli(write_config(tmp_path, {"a": FEED}, retention="off"), "prune")
    assert (result.returncode, result.stdout) == (0, "retention is off: nothing pruned\n")
    assert _titles(store) == ["x1", "x2", "latest"]
    store.close()


def test_prune_rejects_a_short_retention_in_one_line(tmp_path: Path) -> None:
    result = run_cli(write_config(tmp_path, {"a": FEED}, retention="1h"), "prune")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "retention" in line
    assert "at least 1d" in line
