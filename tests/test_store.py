"""The store: identity levels, events, the outbox; on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from monitor.entry import Entry
from monitor.match import Verdict
from monitor.store import MIGRATIONS, Classified, Store
from tests.support.postgres import schema_url

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STORY = "kursk-kpa-monument"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
        yield opened
        opened.close()
        return
    with schema_url() as url:
        opened = Store.open(url)
        yield opened
        opened.close()


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
    return store.ingest(
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
    """An already-seen article republished under a new GUID is a copy, not news."""
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
    assert again.duplicates == 1
    assert again.deliveries == 0


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
    and lets deliveries carry an update."""
    now = datetime.now(UTC)  # the migration looks back from the present
    baseline(store, "wire", "agency")
    report = entry("w", "Site proposed", summary=WIRE, published=now)
    ingest(store, "wire", [Classified(report, UPDATE)], now - timedelta(days=2))
    with store._write() as session:  # as a database from before the migration was
        session.execute(text("drop table cluster_band"))
        session.execute(text("alter table item drop column signature"))
        session.execute(text("delete from delivery"))  # it had no updates to send
        session.execute(text("alter table delivery drop column item_id"))
        session.execute(text("delete from migration where name = '0003_minhash_clusters'"))
    store.migrate()
    assert _bands(store) == 32
    rewrite = entry("r", "Site proposed", summary=REWRITE, published=now)
    news = entry("n", "Construction begins", summary="Builders began work", published=now)
    result = ingest(store, "agency", [Classified(rewrite, UPDATE), Classified(news, UPDATE)], now)
    clusters = _clusters(store)
    assert clusters["r"] == clusters["w"]
    assert (result.updates, _kinds(store)) == (1, [("update", "desk"), ("update", "slack")])


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

    first = store.ingest(
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
