"""The store: identity levels, events, the outbox; on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, inspect, text

from monitor.core.errors import StoreError
from monitor.ingest import record
from monitor.ingest.decide import Classified
from monitor.ingest.entry import Entry
from monitor.ingest.identity import MAX_VERSIONS
from monitor.match.classify import Verdict
from monitor.store import items
from monitor.store.items import IngestTransaction, SignedCache
from monitor.store.migrations import MIGRATIONS
from monitor.store.store import Store
from tests.support.postgres import schema_url

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STORY = "kursk-kpa-monument"


def entry(key: str, title: str = "Weather", url: str | None = None, **kw: object) -> Entry:
    return Entry(
        key=key,
        url=url if url is not None else f"https://news.example/{key}",
        title=title,
        summary=str(kw.pop("summary", "")),
        published=kw.pop("published", NOW - timedelta(hours=1)),  # type: ignore[arg-type]
        outlet=kw.pop("outlet", None),  # type: ignore[arg-type]
        lang=kw.pop("lang", "en"),  # type: ignore[arg-type]
    )


IRRELEVANT = Verdict(story=None, milestone=None, terms={}, why="no story")


def milestone(name: str = "unveiling") -> Verdict:
    return Verdict(story=STORY, milestone=name, terms={"watch": ("monument",)}, why="test")


UPDATE = Verdict(story=STORY, milestone=None, terms={"watch": ("monument",)}, why="test")


def ingest(store: Store, feed: str, items: list[Classified], now: datetime = NOW):  # type: ignore[no-untyped-def]
    return record.ingest(
        store,
        feed,
        items,
        now=now,
        next_check=now + timedelta(minutes=15),
        alert_after=now - timedelta(days=3),
        route=lambda story, ms: ["desk", "slack"],
    )


def baseline(store: Store, *feeds: str) -> None:
    store.sync_feeds([(name, f"https://{name}.example/rss") for name in feeds])
    for name in feeds:
        ingest(store, name, [Classified(entry(f"{name}-old"), IRRELEVANT)])


def test_entries_are_stored_once(store: Store) -> None:
    """The same entry in the same feed is new once, however often it is fetched."""
    baseline(store, "a")
    items = [Classified(entry("k1"), IRRELEVANT), Classified(entry("k2"), IRRELEVANT)]
    assert ingest(store, "a", items).new == 2
    assert ingest(store, "a", items).new == 0
    assert store.feed("a").items_seen == 3


def test_first_fetch_is_silent(store: Store) -> None:
    """A milestone seen on a feed's first fetch creates a silent event and no delivery."""
    store.sync_feeds([("a", "https://a.example/rss")])
    result = ingest(store, "a", [Classified(entry("m", "Monument unveiled"), milestone())])
    assert result.events == []
    assert result.deliveries == 0
    [event] = store.events()
    assert event.silent
    assert event.deliveries == []


def test_milestone_alerts_once_and_later_reports_attach(store: Store) -> None:
    """The first report creates the event and its outbox rows; later ones only attach."""
    baseline(store, "en", "ru")
    first = ingest(
        store, "en", [Classified(entry("e1", "Monument unveiled", lang="en"), milestone())]
    )
    assert first.events == [(STORY, "unveiling")]
    assert first.deliveries == 2
    later = ingest(
        store,
        "ru",
        [Classified(entry("r1", "Памятник открыли", lang="ru", outlet="RIA"), milestone())],
    )
    assert later.events == []
    assert later.attached == 1
    [event] = store.events()
    assert [s.url for s in event.sources] == ["https://news.example/e1", "https://news.example/r1"]
    assert event.languages == ["en", "ru"]
    assert event.outlets == ["en", "RIA"]
    assert sorted(d.target for d in event.deliveries) == ["desk", "slack"]
    assert {d.status for d in event.deliveries} == {"pending"}


def test_same_article_in_two_feeds_is_one_copy(store: Store) -> None:
    """A new entry whose canonical URL is already stored changes nothing (level 2)."""
    baseline(store, "a", "b")
    url = "https://outlet.example/monument"
    ingest(store, "a", [Classified(entry("a1", "Monument unveiled", url=url), milestone())])
    copy = ingest(store, "b", [Classified(entry("b1", "Monument unveiled", url=url), milestone())])
    assert copy.new == 1
    assert copy.duplicates == 1
    assert copy.attached == 0
    assert len(store.events()[0].sources) == 1


def test_changed_guid_does_not_alert_again(store: Store) -> None:
    """An article republished under a new GUID and headline is judged, and only joins
    the milestone it already alerted; with its old headline it is a copy."""
    baseline(store, "a")
    url = "https://outlet.example/site-chosen"
    ingest(
        store,
        "a",
        [Classified(entry("guid-1", "Site chosen", url=url), milestone("site_selection"))],
    )
    again = ingest(
        store,
        "a",
        [
            Classified(
                entry("guid-2", "Site chosen (updated)", url=url), milestone("site_selection")
            )
        ],
    )
    assert (again.duplicates, again.attached, again.deliveries) == (0, 1, 0)
    same = ingest(
        store,
        "a",
        [Classified(entry("guid-3", "Site  CHOSEN", url=url), milestone("site_selection"))],
    )
    assert (same.new, same.duplicates, same.attached, same.deliveries) == (1, 1, 0, 0)


def test_old_items_never_alert(store: Store) -> None:
    """An item published before alerts.max_age is recorded silently."""
    baseline(store, "a")
    old = entry("old", "Monument unveiled", published=NOW - timedelta(days=30))
    result = ingest(store, "a", [Classified(old, milestone())])
    assert result.deliveries == 0
    assert store.events()[0].silent


def test_near_duplicates_share_a_cluster(store: Store) -> None:
    """Rewrites of one wire story land in one cluster; a different story does not."""
    baseline(store, "a", "b", "c")
    wire = (
        "Russia plans to erect a monument in the Kursk region to North Korean soldiers who "
        "fought in the battles for the region, the foreign minister said on Saturday after talks."
    )
    ingest(
        store,
        "a",
        [Classified(entry("a1", "Lavrov: monument to KPA soldiers", summary=wire), UPDATE)],
    )
    ingest(
        store,
        "b",
        [
            Classified(
                entry("b1", "Lavrov: monument to KPA soldiers", summary=wire + " More soon."),
                UPDATE,
            )
        ],
    )
    ingest(
        store,
        "c",
        [
            Classified(
                entry(
                    "c1",
                    "Kursk governor on funding",
                    summary="The governor said money for the memorial is found.",
                ),
                UPDATE,
            )
        ],
    )
    with store._read() as session:
        clusters = dict(
            session.execute(text("select key, cluster_id from item where story is not null")).all()
        )
    assert clusters["a1"] == clusters["b1"]
    assert clusters["c1"] != clusters["a1"]


def test_outbox_claim_lease_and_finish(store: Store) -> None:
    """A claimed delivery is leased; failed ones wait for retry_at; sent ones are done."""
    baseline(store, "a")
    ingest(store, "a", [Classified(entry("m", "Monument unveiled"), milestone())])
    claims = store.claim_due(NOW, timedelta(minutes=5), targets={"desk", "slack"})
    assert sorted(c.target for c in claims) == ["desk", "slack"]
    assert all(c.attempts == 1 for c in claims)
    # Leased: a second claimer gets nothing until the lease ends.
    assert store.claim_due(NOW, timedelta(minutes=5), targets={"desk", "slack"}) == []
    desk, slack = sorted(claims, key=lambda c: c.target)
    assert store.finish(desk, now=NOW) == "sent"
    assert (
        store.finish(slack, now=NOW, error="HTTP 500", retry_at=NOW + timedelta(minutes=1))
        == "failed"
    )
    assert store.claim_due(NOW, timedelta(minutes=5), targets={"desk", "slack"}) == []
    [retry] = store.claim_due(
        NOW + timedelta(minutes=2), timedelta(minutes=5), targets={"desk", "slack"}
    )
    assert retry.target == "slack"
    assert retry.attempts == 2
    assert store.finish(retry, now=NOW, error="HTTP 500") == "dead"
    assert store.undelivered({"desk", "slack"}) == 0
    assert store.delivery_counts() == {"sent": 1, "dead": 1}


def test_crashed_claim_is_retried_after_its_lease(store: Store) -> None:
    """A claim never finished (the sender died) becomes due again once its lease ends."""
    baseline(store, "a")
    ingest(store, "a", [Classified(entry("m", "Monument unveiled"), milestone())])
    first = store.claim_due(NOW, timedelta(seconds=30), targets={"desk"})
    assert len(first) == 1
    assert (
        store.claim_due(NOW + timedelta(seconds=10), timedelta(seconds=30), targets={"desk"}) == []
    )
    [again] = store.claim_due(NOW + timedelta(seconds=31), timedelta(seconds=30), targets={"desk"})
    assert again.id == first[0].id
    assert again.attempts == 2


def test_deliveries_for_removed_targets_stay_pending(store: Store) -> None:
    """Rows addressed to a target no longer configured are kept, not claimed, not lost."""
    baseline(store, "a")
    ingest(store, "a", [Classified(entry("m", "Monument unveiled"), milestone())])
    assert [c.target for c in store.claim_due(NOW, timedelta(minutes=5), targets={"desk"})] == [
        "desk"
    ]
    assert store.undelivered({"slack"}) == 1


def test_feed_failures_and_recovery(store: Store) -> None:
    """Failures count up and keep the first failure time; a success resets both."""
    store.sync_feeds([("a", "https://a.example/rss")])
    store.record_failure("a", "HTTP 500", 500, now=NOW, next_check=NOW + timedelta(minutes=2))
    store.record_failure("a", "HTTP 500", 500, now=NOW + timedelta(minutes=2), next_check=NOW)
    row = store.feed("a")
    assert row.consecutive_failures == 2
    assert row.failing_since == NOW
    store.record_unchanged("a", NOW + timedelta(minutes=5), NOW + timedelta(minutes=20))
    row = store.feed("a")
    assert row.consecutive_failures == 0
    assert row.failing_since is None
    assert row.last_error is None


def test_changed_feed_url_starts_afresh(store: Store) -> None:
    """Pointing a feed name at a new URL drops its validators and re-baselines it."""
    baseline(store, "a")
    store.sync_feeds([("a", "https://elsewhere.example/rss")])
    row = store.feed("a")
    assert row.url == "https://elsewhere.example/rss"
    assert not row.baseline_done


def test_migrations_are_recorded_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Reopening a database applies nothing twice."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Store.open(url).close()
    store = Store.open(url)
    with store._read() as session:
        names = [row[0] for row in session.execute(text("select name from migration")).all()]
    store.close()
    assert names == [name for name, _ in MIGRATIONS]


def test_delivery_columns_reach_an_older_database(store: Store) -> None:
    """A database made before 0002_delivery_routing gets its columns, data intact."""
    baseline(store, "wire")
    ingest(store, "wire", [Classified(entry("a", "Monument unveiled"), milestone())])
    with store._write() as session:
        for table, column in [("delivery", "hold"), ("delivery", "reported"), ("feed", "health")]:
            session.execute(text(f"alter table {table} drop column {column}"))
        session.execute(text("delete from migration where name = '0002_delivery_routing'"))
    store.migrate()
    claims = store.claim_due(NOW, timedelta(minutes=5), targets={"desk", "slack"})
    assert len(claims) == 2
    store.defer(claims[0], until=NOW + timedelta(hours=1), hold="quiet")
    assert next((r.hold, r.attempts) for r in store.outbox(["pending"])) == ("quiet", 0)


def test_arrivals_by_feed_agree_with_arrivals(store: Store) -> None:
    """One query for every feed's arrival times gives what one query per feed gives."""
    store.sync_feeds([(name, f"https://{name}.example/rss") for name in ("a", "b", "quiet")])
    for hours in (30, 20, 10):
        moment = NOW - timedelta(hours=hours)
        ingest(store, "a", [Classified(entry(f"a{hours}"), IRRELEVANT)], now=moment)
        if hours != 20:
            ingest(store, "b", [Classified(entry(f"b{hours}"), IRRELEVANT)], now=moment)
    since = NOW - timedelta(hours=25)
    together = store.arrivals_by_feed(["a", "b", "quiet"], since)
    assert together == {name: store.arrivals(name, since) for name in ("a", "b", "quiet")}
    assert together["a"] == [NOW - timedelta(hours=20), NOW - timedelta(hours=10)]
    assert together["quiet"] == []


WIRE = (
    "The Kursk city administration proposed a plot near Victory Park for the memorial to "
    "Korean People's Army servicemen who fought in the region, the city's architecture "
    "council said on Tuesday after a closed meeting."
)
REWRITE = WIRE.replace("proposed", "has proposed").replace("servicemen", "soldiers")


def _clusters(store: Store) -> dict[str, int]:
    with store._read() as session:
        rows = session.execute(text("select key, cluster_id from item where story is not null"))
        return dict(rows.all())


def _bands(store: Store) -> int:
    with store._read() as session:
        return int(session.execute(text("select count(*) from cluster_band")).scalar_one())


def test_rewrites_are_found_through_the_band_index(store: Store) -> None:
    """A rewrite joins the cluster of its wire story among many others of the story."""
    baseline(store, "wire", "agency")
    others = [
        Classified(
            entry(f"o{i}", f"Kursk monument news {i}", summary=f"Item {i} of {i * 7}"), UPDATE
        )
        for i in range(30)
    ]
    ingest(store, "wire", [Classified(entry("w", "Site proposed", summary=WIRE), UPDATE), *others])
    ingest(store, "agency", [Classified(entry("r", "Site proposed", summary=REWRITE), UPDATE)])
    clusters = _clusters(store)
    assert clusters["r"] == clusters["w"]
    assert len({clusters[f"o{i}"] for i in range(30)} | {clusters["w"]}) == 31
    assert _bands(store) == 32 * 32  # every relevant item's bands, for those to come


def test_a_report_of_another_story_is_no_candidate(store: Store) -> None:
    """The same text judged to be about another story shares every band key, and still
    starts a cluster of its own: candidates are of the item's story."""
    baseline(store, "wire", "agency")
    ingest(store, "wire", [Classified(entry("w", "Site proposed", summary=WIRE), UPDATE)])
    other = Verdict("another-story", None, {"watch": ("site",)})
    ingest(store, "agency", [Classified(entry("r", "Site proposed", summary=WIRE), other)])
    ingest(store, "agency", [Classified(entry("s", "Site proposed", summary=REWRITE), UPDATE)])
    clusters = _clusters(store)
    assert clusters["r"] != clusters["w"]
    assert clusters["s"] == clusters["w"]


def test_a_report_older_than_the_window_starts_a_new_cluster(store: Store) -> None:
    """Only reports seen in the last 30 days are candidates: a month-old copy is news again."""
    baseline(store, "wire", "agency")
    ingest(
        store,
        "wire",
        [Classified(entry("w", "Site proposed", summary=WIRE), UPDATE)],
        now=NOW - timedelta(days=31),
    )
    ingest(store, "agency", [Classified(entry("r", "Site proposed", summary=REWRITE), UPDATE)])
    clusters = _clusters(store)
    assert clusters["r"] != clusters["w"]


def test_an_upgraded_database_indexes_its_recent_reports(store: Store) -> None:
    """0003_minhash_clusters signs the window's relevant items (their rewrites still join)
    and lets deliveries carry an update; the band migrations after it (0005, 0009, 0010)
    step through the band table it made."""
    now = datetime.now(UTC)  # the migration looks back from the present
    baseline(store, "wire", "agency")
    report = entry("w", "Site proposed", summary=WIRE, published=now)
    ingest(store, "wire", [Classified(report, UPDATE)], now - timedelta(days=2))
    with store._write() as session:  # as a database from before the migration was
        session.execute(text("drop table cluster_band"))
        session.execute(text("alter table item drop column signature"))
        session.execute(text("delete from delivery"))  # it had no updates to send
        session.execute(text("alter table delivery drop column item_id"))
        for step in ("0003_minhash", "0005_band", "0009_one_permutation", "0010_narrow_band"):
            session.execute(text("delete from migration where name like :s"), {"s": step + "%"})
    store.migrate()
    assert _bands(store) == 32
    assert _band_layout(store) == (["item_id", "key"], ["key", "item_id"], {"ix_cluster_band_item"})
    rewrite = entry("r", "Site proposed", summary=REWRITE, published=now)
    news = entry("n", "Construction begins", summary="Builders began work", published=now)
    result = ingest(store, "agency", [Classified(rewrite, UPDATE), Classified(news, UPDATE)], now)
    clusters = _clusters(store)
    assert clusters["r"] == clusters["w"]
    assert (result.updates, _kinds(store)) == (1, [("update", "desk"), ("update", "slack")])


def test_an_upgraded_database_signs_its_window_again(store: Store) -> None:
    """0009_one_permutation_signatures signs the window's relevant items the new way and
    replaces their bands, so a rewrite arriving after the upgrade joins its wire story;
    an item older than the window keeps what it had."""
    now = datetime.now(UTC)  # the migration looks back from the present
    baseline(store, "wire", "agency")
    report = entry("w", "Site proposed", summary=WIRE, published=now)
    ingest(store, "wire", [Classified(report, UPDATE)], now - timedelta(days=2))
    old = entry("o", "Site proposed long ago", summary=WIRE, published=now)
    ingest(store, "wire", [Classified(old, UPDATE)], now - timedelta(days=40))
    _old_band_table(store)
    with store._write() as session:  # signatures and bands of another kind, as before
        session.execute(text("update item set signature = :s"), {"s": bytes(range(256)) * 2})
        session.execute(text("update cluster_band set key = key + 1"))
        session.execute(text("drop index ix_cluster_band_key"))
        session.execute(
            text(
                "create index ix_cluster_band_lookup on cluster_band (story, key, seen_at, item_id)"
            )
        )
        session.execute(
            text("delete from migration where name = '0009_one_permutation_signatures'")
        )
    store.migrate()
    with store._read() as session:
        kept = session.execute(text("select signature from item where key = 'o'")).scalar_one()
    assert kept == bytes(range(256)) * 2
    assert _bands(store) == 32  # the old item's bands were outside the window: not moved
    assert "ix_cluster_band_lookup" not in _band_indexes(store)
    rewrite = entry("r", "Site proposed", summary=REWRITE, published=now)
    ingest(store, "agency", [Classified(rewrite, UPDATE)], now)
    clusters = _clusters(store)
    assert clusters["r"] == clusters["w"]


def test_the_band_table_is_its_own_index(store: Store) -> None:
    """A band is (key, item) and nothing else, keyed by both (SQLite: WITHOUT ROWID),
    with one index by item; no key index left over from the migrations before."""
    assert _band_layout(store) == (["item_id", "key"], ["key", "item_id"], {"ix_cluster_band_item"})
    if store.engine.dialect.name == "sqlite":
        assert "WITHOUT ROWID" in _band_ddl(store).upper()


def test_a_band_written_again_is_left_alone(store: Store) -> None:
    """An ingest retried after its commit was in doubt writes its bands again without
    failing on those already there."""
    baseline(store, "wire")
    ingest(store, "wire", [Classified(entry("w", "Site proposed", summary=WIRE), UPDATE)])
    stored = _band_rows(store, "w")
    with store._write() as session:
        session.connection().exec_driver_sql(store.insert_band_sql, sorted(stored))
    assert _band_rows(store, "w") == stored
    assert _bands(store) == 32


def test_an_upgraded_database_keeps_its_window_bands_narrow(store: Store) -> None:
    """0010_narrow_band_index moves the bands of the window's items as (key, item),
    leaves the older ones behind, and gives the table the layout a new database has: a
    rewrite arriving after the upgrade still joins its wire story."""
    now = datetime.now(UTC)  # the migration looks back from the present
    baseline(store, "wire", "agency")
    report = entry("w", "Site proposed", summary=WIRE, published=now)
    ingest(store, "wire", [Classified(report, UPDATE)], now - timedelta(days=2))
    old = entry("o", "Site proposed long ago", summary=WIRE + " Again.", published=now)
    ingest(store, "wire", [Classified(old, UPDATE)], now - timedelta(days=40))
    fresh = (_band_layout(store), _band_ddl(store))
    recent = _band_rows(store, "w")
    assert (len(recent), len(_band_rows(store, "o"))) == (32, 32)
    _old_band_table(store)
    store.migrate()
    assert (_band_layout(store), _band_ddl(store)) == fresh
    assert _band_rows(store, "w") == recent
    assert _band_rows(store, "o") == set()
    assert _bands(store) == 32
    rewrite = entry("r", "Site proposed", summary=REWRITE, published=now)
    ingest(store, "agency", [Classified(rewrite, UPDATE)], now)
    clusters = _clusters(store)
    assert clusters["r"] == clusters["w"]


def _old_band_table(store: Store) -> None:
    """Make `cluster_band` what it was before 0010_narrow_band_index (a row id, the
    story and the time of each band, two indexes), holding the bands it holds now."""
    sqlite = store.engine.dialect.name == "sqlite"
    id_column = "id INTEGER NOT NULL" if sqlite else "id SERIAL NOT NULL"
    time_column = "DATETIME" if sqlite else "TIMESTAMP WITH TIME ZONE"
    with store._write() as session:
        session.execute(text("create table band_copy as select key, item_id from cluster_band"))
        session.execute(text("drop table cluster_band"))
        session.execute(
            text(
                f"create table cluster_band ({id_column}, story VARCHAR NOT NULL,"
                ' "key" BIGINT NOT NULL, item_id INTEGER NOT NULL,'
                f" seen_at {time_column} NOT NULL, PRIMARY KEY (id),"
                " FOREIGN KEY(item_id) REFERENCES item (id))"
            )
        )
        session.execute(text('create index ix_cluster_band_key on cluster_band ("key", item_id)'))
        session.execute(text("create index ix_cluster_band_item on cluster_band (item_id)"))
        session.execute(
            text(
                'insert into cluster_band (story, "key", item_id, seen_at)'
                ' select i.story, b."key", b.item_id, i.seen_at'
                " from band_copy b join item i on i.id = b.item_id"
            )
        )
        session.execute(text("drop table band_copy"))
        session.execute(text("delete from migration where name = '0010_narrow_band_index'"))


def _band_layout(store: Store) -> tuple[list[str], list[str], set[str]]:
    """The band table's columns, its primary key and its indexes' names."""
    found = inspect(store.engine)
    columns = sorted(c["name"] for c in found.get_columns("cluster_band"))
    key = found.get_pk_constraint("cluster_band")["constrained_columns"]
    return columns, key, _band_indexes(store)


def _band_indexes(store: Store) -> set[str]:
    return {i["name"] for i in inspect(store.engine).get_indexes("cluster_band") if i["name"]}


def _band_ddl(store: Store) -> str:
    """SQLite's own text of the band table ('' elsewhere)."""
    if store.engine.dialect.name != "sqlite":
        return ""
    with store._read() as session:
        query = text("select sql from sqlite_master where name = 'cluster_band'")
        return str(session.execute(query).scalar_one())


def _band_rows(store: Store, item_key: str) -> set[tuple[int, int]]:
    """(key, item id) of the bands of the item whose key is `item_key`."""
    with store._read() as session:
        rows = session.execute(
            text(
                'select b."key", b.item_id from cluster_band b join item i on i.id = b.item_id'
                " where i.key = :key"
            ),
            {"key": item_key},
        )
        return {(int(key), int(item_id)) for key, item_id in rows}


def _kinds(store: Store) -> list[tuple[str, str]]:
    """(kind, target) of every delivery, oldest first."""
    rows = store.outbox(["pending", "failed", "sent", "dead", "folded"])
    return [(row.kind, row.target) for row in rows]


def test_a_new_development_is_an_update_and_its_rewrite_is_not(store: Store) -> None:
    """The first report of a new cluster goes to the update targets; a rewrite joins it."""
    baseline(store, "wire", "agency")
    routed: list[tuple[str, str | None]] = []

    def route(story: str, milestone: str | None) -> list[str]:
        routed.append((story, milestone))
        return ["desk"]

    first = record.ingest(
        store,
        "wire",
        [Classified(entry("w", "Site proposed", summary=WIRE), UPDATE)],
        now=NOW,
        next_check=NOW,
        alert_after=NOW - timedelta(days=3),
        route=route,
    )
    assert (first.updates, first.deliveries, routed) == (1, 1, [(STORY, None)])
    [row] = store.outbox(["pending"])
    assert (row.kind, row.title) == ("update", "Site proposed")
    again = ingest(store, "agency", [Classified(entry("r", "Proposed", summary=REWRITE), UPDATE)])
    assert (again.updates, again.deliveries) == (0, 0)
    [update] = store.update_alerts()
    assert [s.url for s in update.sources] == [
        "https://news.example/w",
        "https://news.example/r",
    ]
    assert update.outlets == ["wire", "agency"]
    assert [(d.target, d.status) for d in update.deliveries] == [("desk", "pending")]
    assert row.dedup_key == f"update:{update.id}"


def test_a_milestone_is_an_alert_and_not_also_an_update(store: Store) -> None:
    """A report of a milestone starts a cluster but is sent once, as the milestone."""
    baseline(store, "wire")
    result = ingest(store, "wire", [Classified(entry("m", "Monument unveiled"), milestone())])
    assert (result.updates, result.events) == (0, [(STORY, "unveiling")])
    assert _kinds(store) == [("alert", "desk"), ("alert", "slack")]
    assert store.update_alerts() == []


def test_first_fetch_and_old_reports_are_no_update(store: Store) -> None:
    """A development seen on a feed's first fetch, or published too long ago, is silent."""
    store.sync_feeds([("wire", "https://wire.example/rss")])
    first = ingest(store, "wire", [Classified(entry("b", "Funds", summary=WIRE), UPDATE)])
    old = entry("o", "Old news", summary="Builders began work", published=NOW - timedelta(days=9))
    later = ingest(store, "wire", [Classified(old, UPDATE)])
    assert (first.updates, later.updates, _kinds(store)) == (0, 0, [])
    rewrite = ingest(store, "wire", [Classified(entry("r", "Funds", summary=REWRITE), UPDATE)])
    assert rewrite.updates == 0  # it joins the silent report's cluster


def test_history_has_events_and_updates_newest_first(store: Store) -> None:
    """`history` merges milestone events and announced updates by time, with a limit."""
    baseline(store, "wire")
    ingest(store, "wire", [Classified(entry("u", "Funds", summary=WIRE), UPDATE)])
    later = NOW + timedelta(hours=1)
    ingest(store, "wire", [Classified(entry("m", "Monument unveiled"), milestone())], later)
    history = store.history()
    assert [(v.milestone, v.title) for v in history] == [
        ("unveiling", "Monument unveiled"),
        (None, "Funds"),
    ]
    assert [v.title for v in store.history(limit=1)] == ["Monument unveiled"]


def _versions(store: Store) -> list[tuple[str, str, int | None]]:
    """(title, milestone or '', version_of) of every stored item but the baselines, oldest first."""
    with store._read() as session:
        rows = session.execute(
            text(
                "select title, coalesce(milestone, ''), version_of from item "
                "where key not like '%-old' order by id"
            )
        )
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


def test_a_headline_changed_in_place_is_a_version_judged_again(store: Store) -> None:
    """The same key with a new headline is stored beside the old one and alerts its
    milestone; the same text again, or the old one back, is nothing new."""
    baseline(store, "a")
    url = "https://tass.example/kursk-site"
    discussed = Classified(entry("g", "Council discusses site", url=url), UPDATE)
    chosen = Classified(entry("g", "Site chosen", url=url), milestone("site_selection"))
    assert ingest(store, "a", [discussed]).updates == 1
    changed = ingest(store, "a", [chosen])
    assert (changed.new, changed.versions, changed.events) == (0, 1, [(STORY, "site_selection")])
    assert changed.deliveries == 2
    for again in ([chosen], [discussed]):
        result = ingest(store, "a", again)
        assert (result.new, result.versions, result.deliveries) == (0, 0, 0)
    [first_id] = [v.id for v in store.items() if v.title == "Council discusses site"]
    assert _versions(store) == [
        ("Council discusses site", "", None),
        ("Site chosen", "site_selection", first_id),
    ]
    assert store.feed("a").items_seen == 2  # the baseline and the one report
    [event] = store.events()
    assert (event.title, [s.url for s in event.sources]) == ("Site chosen", [url])
    # Both versions in one fetch: the key is shared, so each is its own content; both
    # contents are stored, so both are copies, and nothing is judged again.
    both = ingest(store, "a", [discussed, chosen])
    assert (both.duplicates, both.relevant, both.deliveries) == (2, 0, 0)


def test_a_version_stays_in_its_reports_cluster(store: Store) -> None:
    """A development rewritten in place is judged but is no second update."""
    baseline(store, "wire")
    ingest(store, "wire", [Classified(entry("w", "Site proposed", summary=WIRE), UPDATE)])
    rewritten = entry("w", "Governor: funds found", summary="Money for the memorial is found.")
    result = ingest(store, "wire", [Classified(rewritten, UPDATE)])
    assert (result.versions, result.relevant, result.updates) == (1, 1, 0)
    assert len(set(_clusters(store).values())) == 1
    [update] = store.update_alerts()
    assert [s.url for s in update.sources] == ["https://news.example/w"]


def test_a_link_stored_from_another_feed_is_judged(store: Store) -> None:
    """Feed b carrying feed a's link with a milestone headline creates the event; with
    feed a's headline it is a copy."""
    baseline(store, "a", "b", "c")
    url = "https://outlet.example/kursk"
    ingest(store, "a", [Classified(entry("a1", "Council discusses site", url=url), UPDATE)])
    copy = ingest(store, "c", [Classified(entry("c1", "Council discusses site", url=url), UPDATE)])
    assert (copy.duplicates, copy.relevant) == (1, 0)
    moved = ingest(store, "b", [Classified(entry("b1", "Site chosen", url=url), milestone())])
    assert (moved.duplicates, moved.events, moved.deliveries) == (0, [(STORY, "unveiling")], 2)


def test_reports_sharing_a_link_and_no_guid_are_items_of_their_own(store: Store) -> None:
    """Entries linked to one section page, or GUID-less to the homepage, are each an
    item: a new one among them is new, and a repeat is nothing."""
    baseline(store, "home")
    section = "https://site.example/news"

    def page(key: str, title: str, url: str, verdict: Verdict = IRRELEVANT) -> Classified:
        return Classified(dataclasses.replace(entry(key, title, url=url), guid=None), verdict)

    old = [page("s", "Weather", section), page("s", "Football", section)]
    assert ingest(store, "home", old).new == 2
    fresh = page("s", "Monument unveiled", section, milestone())
    result = ingest(store, "home", [fresh, *old])
    assert (result.new, result.versions, result.events) == (1, 0, [(STORY, "unveiling")])
    assert ingest(store, "home", [fresh, *old]).new == 0
    root = "https://site.example/"
    assert ingest(store, "home", [page("r", "One", root)]).new == 1
    assert ingest(store, "home", [page("r", "Two", root)]).new == 1
    assert all(version_of is None for _, _, version_of in _versions(store))


def test_versions_past_the_cap_are_kept_only_for_a_new_milestone(store: Store) -> None:
    """An item rewritten on every fetch stops growing the store at MAX_VERSIONS, but a
    milestone it reports first still alerts."""
    baseline(store, "a")
    for n in range(MAX_VERSIONS):
        result = ingest(store, "a", [Classified(entry("k", f"Weather {n}"), IRRELEVANT)])
        assert result.new + result.versions == 1
    over = ingest(store, "a", [Classified(entry("k", "Weather again"), IRRELEVANT)])
    assert (over.versions, over.capped) == (0, 1)
    news = ingest(store, "a", [Classified(entry("k", "Monument unveiled"), milestone())])
    assert (news.versions, news.events) == (1, [(STORY, "unveiling")])
    again = ingest(store, "a", [Classified(entry("k", "Monument unveiled!"), milestone())])
    assert (again.versions, again.capped, again.deliveries) == (0, 1, 0)


def test_an_upgraded_database_knows_what_it_has_seen(store: Store) -> None:
    """0004_report_versions gives stored items their content digest: nothing seen
    before the upgrade is new or changed after it, and a changed headline is."""
    baseline(store, "a")
    url = "https://tass.example/kursk-site"
    discussed = Classified(entry("g", "Council discusses site", url=url), UPDATE)
    ingest(store, "a", [discussed])
    with store._write() as session:  # as a database from before the migration was
        for index in ("ix_item_version_of", "ix_item_url_content", "ix_item_feed_seen"):
            session.execute(text(f"drop index {index}"))
        for column in ("content_hash", "version_of"):
            session.execute(text(f"alter table item drop column {column}"))
        session.execute(text("alter table feed drop column items_skipped"))
        session.execute(text("create index ix_item_url on item (url)"))
        session.execute(
            text(
                "delete from migration"
                " where name in ('0004_report_versions', '0007_arrival_indexes')"
            )
        )
    store.migrate()
    seen = ingest(store, "a", [discussed])
    assert (seen.new, seen.versions) == (0, 0)
    copy = ingest(store, "a", [Classified(entry("g2", "Council discusses site", url=url), UPDATE)])
    assert copy.duplicates == 1
    chosen = Classified(entry("g", "Site chosen", url=url), milestone("site_selection"))
    assert ingest(store, "a", [chosen]).events == [(STORY, "site_selection")]


def test_an_older_database_reads_arrivals_from_one_index(store: Store) -> None:
    """0007_arrival_indexes gives a database from before it the (feed, seen) index a
    health check reads, drops the feed-id index it makes redundant, keeps in the
    versions index only later versions, and keeps its data."""
    baseline(store, "a")
    ingest(store, "a", [Classified(entry("k", "Monument unveiled"), milestone())])
    with store._write() as session:  # as a database from before the migration was
        session.execute(text("drop index ix_item_feed_seen"))
        session.execute(text("drop index ix_item_version_of"))
        session.execute(text("create index ix_item_feed_id on item (feed_id)"))
        session.execute(text("create index ix_item_version_of on item (version_of)"))
        session.execute(text("delete from migration where name = '0007_arrival_indexes'"))
    store.migrate()
    indexes = {i["name"] for i in inspect(store.engine).get_indexes("item")}
    assert "ix_item_feed_seen" in indexes
    assert "ix_item_feed_id" not in indexes
    assert len(store.arrivals_by_feed(["a"], NOW - timedelta(days=1))["a"]) == 1
    if store.engine.dialect.name == "sqlite":
        names = ", ".join(f"'f{i}'" for i in range(400))  # a cycle's worth of feeds
        with store._read() as session:
            plan = session.execute(
                text(
                    "explain query plan select feed.name, item.seen_at from item"
                    " join feed on feed.id = item.feed_id"
                    f" where feed.name in ({names}) and item.seen_at >= '2026-01-01'"
                    " and item.version_of is null"
                )
            ).all()
            partial = session.execute(
                text("select sql from sqlite_master where name = 'ix_item_version_of'")
            ).scalar_one()
        assert "COVERING INDEX ix_item_feed_seen" in " ".join(str(row[-1]) for row in plan)
        assert "WHERE version_of IS NOT NULL" in partial


def test_copies_are_looked_up_by_link_alone(tmp_path: Path) -> None:
    """The first report of each (link, content) is found by seeking the link only: with
    both lists as index terms SQLite seeks every pair, 1,600 seeks for a feed's 40
    items, each a descent of a million-item index on a database a month old."""
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    urls = [f"https://x.example/{i}" for i in range(40)]
    contents = [f"{i:032x}" for i in range(40)]
    query = items._FIRST_BY_CONTENT.params(urls=urls, contents=contents)
    sql = query.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True})
    with store._read() as session:
        plan = session.connection().exec_driver_sql(f"explain query plan {sql}").all()
    store.close()
    steps = " ".join(str(row[-1]) for row in plan)
    assert "ix_item_url_content (url=?)" in steps, steps


def test_a_row_the_database_refuses_is_left_out(store: Store) -> None:
    """Text the database cannot store (a lone surrogate; a NUL on PostgreSQL) skips its
    item, counted on the feed; the milestone beside it alerts."""
    baseline(store, "a")
    items = [
        Classified(entry("bad", "Broken \ud800 title"), IRRELEVANT),
        Classified(entry("nul", "NUL \x00 inside"), IRRELEVANT),
        Classified(entry("m", "Monument unveiled"), milestone()),
    ]
    result = ingest(store, "a", items)
    refused = ["bad"] if store.engine.dialect.name == "sqlite" else ["bad", "nul"]
    assert [s.key for s in result.skipped] == refused
    assert result.skipped[0].title == "Broken \ud800 title"
    assert (result.events, result.new) == ([(STORY, "unveiling")], 3 - len(refused))
    again = ingest(store, "a", items)  # tried again, refused again, nothing else new
    assert ([s.key for s in again.skipped], again.new) == (refused, 0)
    assert store.feed("a").items_skipped == 2 * len(refused)


@pytest.mark.postgres
def test_a_failing_database_is_no_refused_row() -> None:
    """An insert failing for the database's own reason (a full disk) fails the whole
    ingest, so the feed's check is recorded as failed rather than its items skipped."""
    with schema_url() as url:
        store = Store.open(url)
        try:
            baseline(store, "a")
            with store._write() as session:
                session.execute(
                    text(
                        "create function full_disk() returns trigger language plpgsql as "
                        "$$ begin raise exception 'no space left' using errcode = '53100'; end $$"
                    )
                )
                session.execute(
                    text(
                        "create trigger full_disk before insert on item "
                        "for each row execute function full_disk()"
                    )
                )
            with pytest.raises(StoreError, match="no space left"):
                ingest(store, "a", [Classified(entry("m", "Monument unveiled"), milestone())])
            assert (store.feed("a").items_seen, store.feed("a").items_skipped) == (1, 0)
        finally:
            store.close()


def test_a_digest_shows_a_report_once_whatever_its_versions(store: Store) -> None:
    """Versions of an update or of a milestone's report add no "more" and no later
    report; a rewrite from another outlet does."""
    baseline(store, "wire", "agency")
    ingest(store, "wire", [Classified(entry("w", "Site proposed", summary=WIRE), UPDATE)])
    edited = WIRE.replace("Tuesday", "Wednesday")
    ingest(store, "wire", [Classified(entry("w", "Site proposed", summary=edited), UPDATE)])
    ingest(store, "agency", [Classified(entry("r", "Site proposed", summary=REWRITE), UPDATE)])
    ingest(store, "wire", [Classified(entry("m", "Monument unveiled"), milestone())])
    ingest(store, "wire", [Classified(entry("m", "Monument unveiled today"), milestone())])
    ingest(store, "agency", [Classified(entry("a", "Monument opened"), milestone())])
    material = store.digest_material(STORY, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert [(u.title, u.more) for u in material.updates] == [("Site proposed", 1)]
    [(event, later)] = material.reports
    assert (event.title, [s.url for s in later]) == (
        "Monument unveiled",
        ["https://news.example/a"],
    )


def test_whether_a_digest_has_news_is_answered_without_gathering_it(store: Store) -> None:
    """`has_digest_news` says what `digest_material(...).empty` would, period by period:
    silent items, a milestone's first report and a report at its link are no news; a
    report at another link is, and so is an update."""
    baseline(store, "wire", "agency")
    hour = timedelta(hours=1)

    def news(at: datetime) -> bool:
        answer = store.has_digest_news(STORY, at - hour, at + hour)
        assert answer is not store.digest_material(STORY, at - hour, at + hour).empty
        return answer

    assert not news(NOW)  # the first fetches: silent
    first = NOW + 3 * hour
    ingest(store, "wire", [Classified(entry("m", "Monument unveiled"), milestone())], first)
    assert not news(first)  # what the event shows
    again = NOW + 6 * hour
    same_link = entry("m2", "Monument unveiled, agency says", url="https://news.example/m")
    ingest(store, "agency", [Classified(same_link, milestone())], again)
    assert not news(again)  # at the event's link
    later = NOW + 9 * hour
    ingest(store, "agency", [Classified(entry("a", "Monument opened"), milestone())], later)
    assert news(later)
    update = NOW + 12 * hour
    ingest(store, "wire", [Classified(entry("u", "Site proposed", summary=WIRE), UPDATE)], update)
    assert news(update)


def test_an_older_database_gains_tiers_and_waiting_alerts(store: Store) -> None:
    """0008_source_tiers gives a database from before it the feed's tier and the
    delivery's confirmation count; its rows read as press and as due at once."""
    baseline(store, "a")
    ingest(store, "a", [Classified(entry("k", "Monument unveiled"), milestone())])
    with store._write() as session:  # as a database from before the migration was
        session.execute(text("alter table feed drop column tier"))
        session.execute(text("alter table delivery drop column confirm"))
        session.execute(text("delete from migration where name = '0008_source_tiers'"))
    store.migrate()
    [event] = store.events()
    assert [s.tier for s in event.sources] == ["press"]
    assert [d.confirm for d in event.deliveries] == [None, None]
    store.sync_feeds([("a", "https://a.example/rss")], tiers={"a": "agency"})
    assert [s.tier for s in store.events()[0].sources] == ["agency"]


def test_coverage_counts_reports_per_story_per_day(store: Store) -> None:
    """A report counts once, on the day it was published (never after it was seen);
    copies, items about no story and days before `since` are left out."""
    baseline(store, "a", "b")
    two_days_ago = NOW - timedelta(days=2)
    ingest(
        store,
        "a",
        [
            Classified(entry("old", "Monument news", published=NOW - timedelta(days=9)), UPDATE),
            Classified(entry("e1", "Monument debate", published=two_days_ago), UPDATE),
            Classified(entry("e2", "Monument site", published=None), milestone("site_selection")),
            Classified(entry("e3", "Monument future", published=NOW + timedelta(days=3)), UPDATE),
            Classified(entry("w", "Weather"), IRRELEVANT),
        ],
    )
    copy = entry("e2-copy", "Monument site", url="https://news.example/e2", published=None)
    ingest(store, "b", [Classified(copy, milestone("site_selection"))])
    since = NOW - timedelta(days=5)
    assert store.coverage(since) == {
        STORY: {two_days_ago.date(): 1, NOW.date(): 2},
    }
    assert store.coverage(NOW + timedelta(days=1)) == {}


def test_history_of_one_story(store: Store) -> None:
    """`history(story=...)` reads that story's events and updates only."""
    baseline(store, "a")
    other = Verdict(story="other", milestone="unveiling", terms={"watch": ("x",)}, why="test")
    ingest(
        store,
        "a",
        [
            Classified(entry("k1", "Monument unveiled"), milestone()),
            Classified(entry("k2", "Other unveiled"), other),
        ],
    )
    assert [e.story for e in store.history(story=STORY)] == [STORY]
    assert [e.story for e in store.history(story="other")] == ["other"]
    assert len(store.history()) == 2


def _signature_reads(store: Store) -> list[int]:
    """How many statements have read stored signatures since this was called."""
    counted = [0]

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "signature" in statement:
            counted[0] += 1

    event.listen(store.engine, "before_cursor_execute", before)
    return counted


def test_a_process_reads_a_stored_signature_once(store: Store) -> None:
    """Signatures an ingest wrote, or read, are not read again by the same process: a
    surge compares each report with hundreds it stored moments before. Another
    process (another store on the database) reads them once, and its rewrites still
    join the wire story."""
    baseline(store, "wire", "agency", "paper")
    ingest(store, "wire", [Classified(entry("w", "Site proposed", summary=WIRE), UPDATE)])
    reads = _signature_reads(store)
    ingest(store, "agency", [Classified(entry("r", "Site proposed", summary=REWRITE), UPDATE)])
    assert reads[0] == 0
    other = Store.open(store.engine.url.render_as_string(hide_password=False))
    try:
        other_reads = _signature_reads(other)
        again = entry("p", "Site proposed", summary=REWRITE.replace("Tuesday", "Monday"))
        ingest(other, "paper", [Classified(again, UPDATE)])
        assert other_reads[0] == 1
        later = entry("p2", "Site proposed", summary=WIRE.replace("Tuesday", "Monday"))
        ingest(other, "paper", [Classified(later, UPDATE)])
        assert other_reads[0] == 1
    finally:
        other.close()
    clusters = _clusters(store)
    assert clusters["r"] == clusters["p"] == clusters["p2"] == clusters["w"]


def test_a_rolled_back_ingest_leaves_no_signature_behind(store: Store) -> None:
    """What a failed ingest wrote is not remembered: its ids may be given again."""
    baseline(store, "wire")
    items = [Classified(entry("w", "Site proposed", summary=WIRE), UPDATE)]

    def failing(tx: IngestTransaction) -> None:
        record._record(
            tx,
            items,
            now=NOW,
            next_check=NOW,
            alert_after=NOW - timedelta(days=3),
            route=lambda story, ms: [],
            confirming=None,
            validators=(None, None),
            content_hash=None,
            moved_to=None,
        )
        raise ValueError("a fault after the placement")

    with pytest.raises(ValueError, match="after the placement"):
        store.ingest_grouped("wire", failing)
    assert len(store.signed_cache) == 0
    ingest(store, "wire", items)
    [(item_id, cluster_id)] = [(i, c) for i, c in _ids_and_clusters(store) if c is not None]
    found = store.signed_cache.get(item_id)
    assert found is not None
    assert found[:2] == (STORY, cluster_id)


def _ids_and_clusters(store: Store) -> list[tuple[int, int | None]]:
    with store._read() as session:
        return [(i, c) for i, c in session.execute(text("select id, cluster_id from item"))]


def test_the_signature_cache_keeps_the_newest() -> None:
    cache = SignedCache(size=2)
    entries = {i: (STORY, i, NOW, bytes([i]) * 512) for i in (1, 2, 3)}
    cache.learn({1: entries[1], 2: entries[2]})
    cache.learn({3: entries[3]})
    assert (cache.get(1), cache.get(2), cache.get(3)) == (None, entries[2], entries[3])
    assert len(cache) == 2
