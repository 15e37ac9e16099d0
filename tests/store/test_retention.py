"""Retention: what a prune forgets and what it keeps; on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from monitor.ingest import record
from monitor.ingest.decide import Classified
from monitor.ingest.entry import Entry
from monitor.match.classify import Verdict
from monitor.store import retention
from monitor.store.store import Store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=90)
STORY = "kursk-kpa-monument"
IRRELEVANT = Verdict(story=None, milestone=None, terms={}, why="no story")
UPDATE = Verdict(story=STORY, milestone=None, terms={"watch": ("monument",)}, why="test")
MILESTONE = Verdict(story=STORY, milestone="unveiling", terms={"watch": ("monument",)}, why="t")
WIRE = (
    "Russia plans to erect a monument in the Kursk region to North Korean soldiers who "
    "fought in the battles for the region, the foreign minister said on Saturday after talks."
)


def entry(key: str, title: str, at: datetime, summary: str = "", dated: bool = True) -> Entry:
    return Entry(
        key=key,
        url=f"https://news.example/{key}",
        title=title,
        summary=summary,
        published=at - timedelta(hours=1) if dated else None,
        outlet=None,
        lang="en",
    )


def ingest(store: Store, feed: str, items: list[Classified], at: datetime):  # type: ignore[no-untyped-def]
    return record.ingest(
        store,
        feed,
        items,
        now=at,
        next_check=at + timedelta(minutes=15),
        alert_after=at - timedelta(days=3),
        route=lambda story, milestone: ["desk"],
    )


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def keys(store: Store) -> set[str]:
    with store._read() as session:
        return set(session.execute(text("select key from item")).scalars())


def count(store: Store, table: str) -> int:
    with store._read() as session:
        return int(session.execute(text(f"select count(*) from {table}")).scalar_one())


def history(store: Store) -> None:
    """Two feeds over 200 days: `a` busy, `b` quiet since its first fetch."""
    store.sync_feeds([("a", "https://a.example/rss"), ("b", "https://b.example/rss")])
    ingest(
        store,
        "a",
        [Classified(entry("a-first", "Weather", days_ago(200)), IRRELEVANT)],
        days_ago(200),
    )
    ingest(
        store,
        "b",
        [
            Classified(entry("b-1", "Sport", days_ago(200)), IRRELEVANT),
            Classified(entry("b-2", "Sport", days_ago(200)), IRRELEVANT),
        ],
        days_ago(200),
    )
    ingest(
        store,
        "a",
        [
            Classified(entry("x1", "Prices", days_ago(150)), IRRELEVANT),
            Classified(entry("x2", "Traffic", days_ago(150)), IRRELEVANT),
        ],
        days_ago(150),
    )
    ingest(
        store,
        "a",
        [Classified(entry("m", "Monument unveiled", days_ago(120)), MILESTONE)],
        days_ago(120),
    )
    ingest(store, "a", [Classified(entry("x3", "Rain", days_ago(100)), IRRELEVANT)], days_ago(100))
    ingest(store, "a", [Classified(entry("x4", "Snow", days_ago(1)), IRRELEVANT)], days_ago(1))


def test_old_unneeded_items_go_and_the_rest_stays(store: Store) -> None:
    """Old items go; an event's report, a quiet feed's latest batch and recent items stay."""
    history(store)
    report = store.prune(CUTOFF, now=NOW)
    assert keys(store) == {"m", "b-1", "b-2", "x4"}
    assert (report.items, report.kept, report.dry_run) == (4, 3, False)
    assert count(store, "event") == 1
    again = store.prune(CUTOFF, now=NOW)
    assert (again.items, again.bands, again.deliveries) == (0, 0, 0)


def test_a_dry_run_changes_nothing_and_counts_the_same(store: Store) -> None:
    history(store)
    before = (keys(store), count(store, "cluster_band"), count(store, "delivery"))
    dry = store.prune(CUTOFF, now=NOW, dry_run=True)
    assert (keys(store), count(store, "cluster_band"), count(store, "delivery")) == before
    done = store.prune(CUTOFF, now=NOW)
    assert dataclasses.replace(dry, dry_run=False) == done
    assert done.items > 0


def _mark(store: Store, status: str) -> None:
    with store._write() as session:
        session.execute(text("update delivery set status = :s, reported = true"), {"s": status})


def test_an_update_stays_while_its_delivery_does(store: Store) -> None:
    """An update's item stays while its delivery is pending; once the delivery is sent
    and old, both go. Pending and failed rows never go."""
    store.sync_feeds([("a", "https://a.example/rss")])
    ingest(
        store,
        "a",
        [Classified(entry("first", "Weather", days_ago(200)), IRRELEVANT)],
        days_ago(200),
    )
    ingest(
        store,
        "a",
        [Classified(entry("u", "Site proposed", days_ago(150), WIRE), UPDATE)],
        days_ago(150),
    )
    ingest(store, "a", [Classified(entry("z", "Snow", days_ago(1)), IRRELEVANT)], days_ago(1))
    assert count(store, "delivery") == 1
    for status in ("pending", "failed"):
        _mark(store, status)
        report = store.prune(CUTOFF, now=NOW)
        assert ("u" in keys(store), report.deliveries) == (True, 0)
    _mark(store, "sent")
    report = store.prune(CUTOFF, now=NOW)
    assert (report.deliveries, "u" in keys(store), count(store, "delivery")) == (1, False, 0)


def test_an_unreported_dead_delivery_stays(store: Store) -> None:
    """A dead row nobody was warned about yet stays: the warning still reads it."""
    store.sync_feeds([("a", "https://a.example/rss")])
    ingest(
        store,
        "a",
        [Classified(entry("first", "Weather", days_ago(200)), IRRELEVANT)],
        days_ago(200),
    )
    ingest(
        store,
        "a",
        [Classified(entry("u", "Site proposed", days_ago(150), WIRE), UPDATE)],
        days_ago(150),
    )
    with store._write() as session:
        session.execute(text("update delivery set status = 'dead', reported = false"))
    assert store.prune(CUTOFF, now=NOW).deliveries == 0
    _mark(store, "dead")
    assert store.prune(CUTOFF, now=NOW).deliveries == 1


def test_bands_outside_the_window_go(store: Store) -> None:
    """Bands older than the clustering window go, also of items that stay; bands of a
    recent item stay."""
    store.sync_feeds([("a", "https://a.example/rss")])
    ingest(
        store, "a", [Classified(entry("first", "Weather", days_ago(60)), IRRELEVANT)], days_ago(60)
    )
    ingest(
        store,
        "a",
        [Classified(entry("old", "Site proposed", days_ago(40), WIRE), UPDATE)],
        days_ago(40),
    )
    ingest(
        store,
        "a",
        [Classified(entry("new", "Funds found", days_ago(5), "Money for the memorial"), UPDATE)],
        days_ago(5),
    )
    with store._read() as session:
        per_item = dict(
            session.execute(
                text(
                    "select i.key, count(*) from cluster_band b"
                    " join item i on i.id = b.item_id group by i.key"
                )
            ).all()
        )
    report = store.prune(CUTOFF, now=NOW)
    assert (report.items, report.bands) == (0, per_item["old"])
    assert keys(store) == {"first", "old", "new"}
    assert count(store, "cluster_band") == per_item["new"]


def test_old_bands_go_by_their_items_time_batch_after_batch(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bands are pruned by their item's time, walked from the oldest banded item in
    batches up to one wholly inside the window: every older item's bands go, also those
    of items that arrived late (ids above recent items'); the window's stay; a dry run
    counts them."""
    monkeypatch.setattr(retention, "BATCH", 2)
    store.sync_feeds([("a", "https://a.example/rss")])
    ages = {"p": 45, "q": 40, "s": 5, "t": 50, "u": 3, "v": 60, "w": 2}  # in order of id
    for key, days in ages.items():
        text_ = f"Monument report {key} about the memorial, number {days}"
        ingest(store, "a", [Classified(entry(key, text_, days_ago(days)), UPDATE)], days_ago(days))
    per_item = _bands_per_item(store)
    assert set(per_item) == set(ages)
    dry = store.prune(CUTOFF, now=NOW, dry_run=True)
    report = store.prune(CUTOFF, now=NOW)
    old = sum(per_item[key] for key in "pqtv")
    assert (dry.bands, report.bands) == (old, old)
    assert _bands_per_item(store) == {key: per_item[key] for key in "suw"}


def _bands_per_item(store: Store) -> dict[str, int]:
    with store._read() as session:
        query = "select i.key, count(*) from cluster_band b join item i on i.id = b.item_id"
        return {key: int(n) for key, n in session.execute(text(query + " group by i.key"))}


def test_what_a_kept_item_points_at_stays(store: Store) -> None:
    """A first version, a copy's original and a cluster's first item stay while an item
    that points at them does, also through an old item that stays: no reference dangles,
    and a dry run counts it so."""
    store.sync_feeds([("a", "https://a.example/rss"), ("b", "https://b.example/rss")])
    ingest(
        store, "a", [Classified(entry("seed", "Weather", days_ago(300)), IRRELEVANT)], days_ago(300)
    )
    ingest(
        store,
        "b",
        [Classified(entry("seed-b", "Weather", days_ago(300)), IRRELEVANT)],
        days_ago(300),
    )
    ingest(
        store,
        "a",
        [Classified(entry("v", "Prices rise", days_ago(200)), IRRELEVANT)],
        days_ago(200),
    )
    ingest(
        store,
        "a",
        [Classified(entry("v", "Prices rise sharply in the north", days_ago(1)), IRRELEVANT)],
        days_ago(1),
    )
    ingest(
        store,
        "a",
        [Classified(entry("c", "Site proposed", days_ago(100), WIRE), UPDATE)],
        days_ago(100),
    )
    # The same link and content in another feed: a copy of `c`, recent.
    copy = dataclasses.replace(entry("c", "Site proposed", days_ago(1), WIRE))
    ingest(store, "b", [Classified(copy, UPDATE)], days_ago(1))
    # An old event's report that joined an older report's cluster keeps that report.
    root = entry("root", "Governor on funding", days_ago(110), "Money for the memorial is found")
    ingest(store, "a", [Classified(root, UPDATE)], days_ago(110))
    joined = entry("joined", "Governor on funding", days_ago(100), root.summary + " Unveiled.")
    ingest(store, "b", [Classified(joined, MILESTONE)], days_ago(100))
    _mark(store, "sent")
    dry = store.prune(CUTOFF, now=NOW, dry_run=True)
    assert dataclasses.replace(dry, dry_run=False) == store.prune(CUTOFF, now=NOW)
    with store._read() as session:
        rows = session.execute(
            text("select id, version_of, duplicate_of, cluster_id from item")
        ).all()
    ids = {row[0] for row in rows}
    pointers = {ref for row in rows for ref in row[1:] if ref is not None}
    assert pointers, "the scenario has references"
    assert pointers <= ids
    assert {"v", "c", "root", "joined"} <= keys(store)
    assert "seed" not in keys(store)


def test_a_pruned_database_ingests_and_clusters(store: Store) -> None:
    """After a prune, a rewrite of a recent report joins its cluster; an entry whose row
    was pruned is new again, but published long ago it is silent: no update is sent."""
    store.sync_feeds([("a", "https://a.example/rss"), ("b", "https://b.example/rss")])
    ingest(
        store,
        "a",
        [Classified(entry("first", "Weather", days_ago(200)), IRRELEVANT)],
        days_ago(200),
    )
    ingest(
        store,
        "b",
        [Classified(entry("first-b", "Weather", days_ago(200)), IRRELEVANT)],
        days_ago(200),
    )
    old = entry("back", "Builders began work", days_ago(150), "Builders began work on the memorial")
    ingest(store, "a", [Classified(old, UPDATE)], days_ago(150))
    ingest(
        store,
        "a",
        [Classified(entry("w", "Site proposed", days_ago(2), WIRE), UPDATE)],
        days_ago(2),
    )
    _mark(store, "sent")
    store.prune(CUTOFF, now=NOW)
    assert "back" not in keys(store)
    rewrite = entry("r", "Site proposed", NOW, WIRE + " More soon.")
    assert ingest(store, "b", [Classified(rewrite, UPDATE)], NOW).updates == 0
    with store._read() as session:
        clusters = dict(
            session.execute(text("select key, cluster_id from item where story is not null")).all()
        )
    assert clusters["r"] == clusters["w"]
    again = ingest(store, "a", [Classified(old, UPDATE)], NOW)
    assert (again.new, again.updates, again.deliveries) == (1, 0, 0)
    assert "back" in keys(store)


def test_batches_cover_a_backlog_larger_than_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches delete the same rows as one: a version and its first version fall
    into different batches."""
    monkeypatch.setattr(retention, "BATCH", 2)
    history(store)
    report = store.prune(CUTOFF, now=NOW)
    assert keys(store) == {"m", "b-1", "b-2", "x4"}
    assert report.items == 4
