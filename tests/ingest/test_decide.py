"""The ingest's decisions over values alone: no database, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from monitor.ingest import cluster, decide, identity
from monitor.ingest.decide import Classified, Row, Stored
from monitor.ingest.entry import Entry
from monitor.match.classify import Verdict
from monitor.store.items import Candidates, StoredKey, Versions

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AFTER = NOW - timedelta(days=2)
STORY = "kursk-kpa-monument"
IRRELEVANT = Verdict(None, None)
UPDATE = Verdict(STORY, None, {"watch": ("monument",)})
WIRE = (
    "Officials in the Kursk region said on Tuesday that the monument to the North Korean "
    "soldiers will stand in the city park, near the memorial to the 1943 battle."
)
REWRITE = (
    "Officials in the Kursk region said on Tuesday the monument to North Korean "
    "soldiers would stand in the city park, near the memorial to the 1943 battle."
)
OTHER = "The regional budget for roads was cut by a tenth, the governor said at a briefing."


def unveiling(name: str = "unveiling") -> Verdict:
    return Verdict(STORY, name, {"milestones.unveiling.event": ("unveiled",)})


def entry(key: str, title: str = "Weather", summary: str = "", **kw: object) -> Entry:
    return Entry(
        key=key,
        url=str(kw.pop("url", f"https://news.example/{key}")),
        title=title,
        summary=summary,
        published=kw.pop("published", NOW - timedelta(hours=1)),  # type: ignore[arg-type]
    )


def routes(story: str, milestone: str | None) -> Sequence[str]:
    return ("desk", "slack") if milestone else ("updates",)


def rows(*items: Classified, stored: dict[str, StoredKey] | None = None) -> list[Row]:
    found = decide.fetched(items)
    return decide.unseen(found, stored or {})


def identified(*items: Classified, baseline: bool = False, **kw: object) -> list[Row]:
    return decide.identify(
        rows(*items), Versions(), {}, baseline=baseline, alert_after=AFTER, **kw
    ).rows  # type: ignore[arg-type]


def inserted(found: Sequence[Row], first_id: int = 100) -> list[Stored]:
    return [Stored(row, first_id + n) for n, row in enumerate(found)]


def test_a_first_fetch_is_silent() -> None:
    """Every entry of a feed's first fetch is recorded silently."""
    [row] = identified(Classified(entry("a", "Monument unveiled"), unveiling()), baseline=True)
    assert row.silent
    [placement] = decide.place(inserted([row]), Candidates(), {}, routes)
    assert placement.event is not None
    assert placement.event.alert == ()


@pytest.mark.parametrize(
    ("published", "silent"),
    [(AFTER - timedelta(minutes=1), True), (AFTER, False), (None, False)],
    ids=["before", "at", "undated"],
)
def test_published_before_the_horizon_is_silent(published: datetime | None, silent: bool) -> None:
    """An entry published before `alert_after` never alerts; an undated one may."""
    [row] = identified(Classified(entry("a", published=published), IRRELEVANT))
    assert row.silent is silent


def test_seen_entries_are_skipped_and_changed_ones_are_versions() -> None:
    """Same key and content: skipped; same key, new content: a version of the item."""
    same, changed, new = entry("s", "Same"), entry("c", "Changed"), entry("n", "New")
    stored = {
        "s": StoredKey(1, identity.content_hash("Same", "")),
        "c": StoredKey(2, identity.content_hash("Before", "")),
    }
    found = rows(*(Classified(e, IRRELEVANT) for e in (same, changed, new)), stored=stored)
    assert [(r.key, r.version_of) for r in found] == [
        (identity.version_key("c", identity.content_hash("Changed", "")), 2),
        ("n", None),
    ]
    assert decide.firsts(found) == [2]
    again = {identity.version_key("c", identity.content_hash("Changed", "")): StoredKey(3, None)}
    assert rows(Classified(changed, IRRELEVANT), stored={**stored, **again}) == []


def test_the_version_cap_keeps_only_a_milestone_without_an_event() -> None:
    """Past MAX_VERSIONS a version is left out unless it reports an event not yet made."""
    stored = {"u": StoredKey(7, "old"), "m": StoredKey(8, "old"), "k": StoredKey(9, "old")}
    found = rows(
        Classified(entry("u", "Rewritten"), UPDATE),
        Classified(entry("m", "Monument unveiled"), unveiling()),
        Classified(entry("k", "Site chosen"), unveiling("site_selection")),
        stored=stored,
    )
    versions = Versions(counts={7: identity.MAX_VERSIONS, 8: identity.MAX_VERSIONS, 9: 2})
    assert decide.needs_events(found, versions)
    done = decide.identify(
        found, versions, {(STORY, "unveiling")}, baseline=False, alert_after=AFTER
    )
    assert done.capped == 2
    assert [r.version_of for r in done.rows] == [9]
    kept = decide.identify(found, versions, set(), baseline=False, alert_after=AFTER)
    assert (kept.capped, [r.version_of for r in kept.rows]) == (1, [8, 9])


def test_band_keys_taken_by_the_reader_are_used() -> None:
    """An entry signed where it was read keeps the band keys taken there; one read
    without them (inline before they were carried, or replayed) gets them now."""
    signature = cluster.pack(cluster.signature("Site proposed", WIRE))  # type: ignore[arg-type]
    carried = (1, 2, 3)
    signed = Entry("s", None, "Site proposed", WIRE, NOW, signature=signature, bands=carried)
    bare = entry("b", "Site proposed", WIRE)
    with_bands, without = identified(Classified(signed, UPDATE), Classified(bare, UPDATE))
    assert with_bands.bands == carried
    assert without.signature == signature
    assert without.bands == tuple(cluster.packed_band_keys(signature))


def test_a_version_keeps_its_items_cluster() -> None:
    """A version joins the cluster its item's earlier versions are in, looking no further."""
    found = rows(
        Classified(entry("a", "Site proposed", WIRE), UPDATE), stored={"a": StoredKey(5, "x")}
    )
    versions = Versions(counts={5: 1}, clusters={(5, STORY): 3})
    [row] = decide.identify(found, versions, {}, baseline=False, alert_after=AFTER).rows
    assert row.joins == 3
    assert decide.band_lookup(inserted([row])) == {}
    [placement] = decide.place(inserted([row]), Candidates(), {}, routes)
    assert (placement.cluster_id, placement.update) == (3, None)
    assert list(placement.bands) == list(row.bands)
    assert row.bands


def test_copies_within_a_batch_and_of_stored_items() -> None:
    """The same link and content again is a copy of the first; other content is not."""
    url = "https://news.example/story"
    found = identified(
        Classified(entry("a", "Monument unveiled", url=url), unveiling()),
        Classified(entry("b", "Monument unveiled", url=url), unveiling()),
        Classified(entry("c", "Monument unveiled at last", url=url), unveiling()),
        Classified(entry("d", "Weather", url="https://news.example/old"), IRRELEVANT),
    )
    batch = inserted(found)
    content = identity.content_hash("Monument unveiled", "")
    assert (url, content) in decide.links(batch)
    assert decide.copies(batch, {}) == {101: 100}
    earlier = {("https://news.example/old", identity.content_hash("Weather", "")): 4}
    assert decide.copies(batch, earlier) == {101: 100, 103: 4}
    assert decide.copies(batch, {(url, content): 9}) == {100: 9, 101: 9}
    assert [s.id for s in decide.placed(batch, {101: 100})] == [100, 102]


def test_items_of_one_batch_cluster_with_each_other() -> None:
    """A rewrite later in the same fetch joins the first report's cluster; news does not."""
    found = identified(
        Classified(entry("w", "Site proposed", WIRE), UPDATE),
        Classified(entry("r", "Site proposed", REWRITE), UPDATE),
        Classified(entry("o", "Roads", OTHER), UPDATE),
    )
    placements = decide.place(inserted(found), Candidates(), {}, routes)
    assert [p.cluster_id for p in placements] == [100, 100, 102]
    assert [p.update for p in placements] == [("updates",), None, ("updates",)]


def test_items_cluster_with_stored_candidates_sharing_a_band() -> None:
    """A stored near-duplicate sharing a band gives its cluster; its own id when it has none."""
    [row] = identified(Classified(entry("r", "Site proposed", REWRITE), UPDATE))
    assert decide.band_lookup(inserted([row])) == {STORY: set(row.bands)}
    wire = cluster.signature("Site proposed", WIRE)
    assert wire is not None
    shared = sorted(set(row.bands) & set(cluster.band_keys(wire)))
    assert shared
    for stored_cluster, expected in [(3, 3), (None, 40)]:
        candidates = Candidates(
            by_band={(STORY, shared[0]): (40,)}, signed={40: (stored_cluster, cluster.pack(wire))}
        )
        [placement] = decide.place(inserted([row]), candidates, {}, routes)
        assert (placement.cluster_id, placement.update) == (expected, None)
    unsigned = Candidates(by_band={(STORY, shared[0]): (40,)})
    [alone] = decide.place(inserted([row]), unsigned, {}, routes)
    assert (alone.cluster_id, alone.update) == (100, ("updates",))


def test_a_signature_taken_where_the_entry_was_read_is_used() -> None:
    """The parse worker signs relevant entries; the ingest takes that signature (and
    its bands) as it is, and signs an entry that comes without one itself."""
    signed = cluster.signature("Site proposed", WIRE)
    assert signed is not None
    carried = Entry(
        key="w",
        url="https://news.example/w",
        title="Roads",  # a text whose own signature differs: the carried one must win
        summary=OTHER,
        published=NOW,
        signature=cluster.pack(signed),
    )
    [row] = identified(Classified(carried, UPDATE))
    assert row.signature == cluster.pack(signed)
    assert list(row.bands) == cluster.band_keys(signed)
    [plain] = identified(Classified(entry("r", "Site proposed", WIRE), UPDATE))
    assert plain.signature == cluster.pack(signed)


def test_a_full_bucket_is_searched_but_not_filled() -> None:
    """A band key held by `cluster.BUCKET_CAP` stored items (a wire sentence many reports
    share) still gives its holders as candidates, and the new item is not indexed under
    it; under its other keys it is."""
    [row] = identified(Classified(entry("r", "Site proposed", REWRITE), UPDATE))
    wire = cluster.signature("Site proposed", WIRE)
    assert wire is not None
    shared = sorted(set(row.bands) & set(cluster.band_keys(wire)))
    assert shared
    holders = tuple(range(40, 40 + cluster.BUCKET_CAP))
    candidates = Candidates(
        by_band={(STORY, shared[0]): holders},
        signed={i: (3, cluster.pack(wire)) for i in holders},
    )
    [placement] = decide.place(inserted([row]), candidates, {}, routes)
    assert placement.cluster_id == 3
    assert set(placement.bands) == set(row.bands) - {shared[0]}
    one_short = Candidates(
        by_band={(STORY, shared[0]): holders[1:]},
        signed={i: (3, cluster.pack(wire)) for i in holders[1:]},
    )
    [placement] = decide.place(inserted([row]), one_short, {}, routes)
    assert list(placement.bands) == list(row.bands)


def test_a_milestone_creates_or_joins_its_event_and_says_who_is_told() -> None:
    """A new milestone carries its alert targets; a known event is joined by its id."""
    found = identified(
        Classified(entry("a", "Monument unveiled"), unveiling()),
        Classified(entry("b", "Site chosen"), unveiling("site_selection")),
    )
    called: list[tuple[str, str | None]] = []

    def route(story: str, milestone: str | None) -> Sequence[str]:
        called.append((story, milestone))
        return routes(story, milestone)

    first, second = decide.place(
        inserted(found), Candidates(), {(STORY, "site_selection"): 6}, route
    )
    assert first.event is not None
    assert second.event is not None
    assert (first.event.milestone, first.event.known, first.event.alert) == (
        "unveiling",
        None,
        ("desk", "slack"),
    )
    assert (first.event.title, first.event.silent, first.update) == (
        "Monument unveiled",
        False,
        None,
    )
    assert (second.event.known, second.event.milestone) == (6, "site_selection")
    assert (STORY, None) not in called


def test_rows_insert_as_plain_values() -> None:
    """What the store inserts: the entry's fields, the verdict, a packed signature."""
    [row] = identified(Classified(entry("a", "Monument unveiled", WIRE), unveiling()))
    item = row.item()
    assert (item.key, item.story, item.milestone, item.silent) == ("a", STORY, "unveiling", False)
    assert item.signature is not None
    assert item.signature == row.signature
    assert item.terms == '{"milestones.unveiling.event": ["unveiled"]}'
    [plain] = identified(Classified(entry("b"), IRRELEVANT))
    assert (plain.item().signature, plain.item().terms, plain.bands) == (None, None, ())
