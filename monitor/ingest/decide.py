"""What an ingest decides, over values only: no database, no clock.

Identity (README, "How it works"; `monitor.ingest.identity`) as decisions:

1. `identify`: an entry this feed stored with the same content is skipped (level 1);
   one whose content changed is a new *version*, judged again, kept in its item's
   cluster. Past `identity.MAX_VERSIONS` a changed version is kept only if it reports
   a milestone that has no event yet. Entries of a feed's first fetch, or published
   before the alert horizon, are silent: they may create or join events, never alert.
2. `copies`: a new item or version whose canonical link *and* content an earlier item
   has (any feed, or earlier in this batch) is a copy and changes nothing else.
3. `place`: every other relevant item is clustered with its most similar earlier
   report (`cluster.THRESHOLD`, candidates that share a MinHash band, earlier items of
   this batch included); a milestone creates or joins its (story, milestone) event
   (level 4), and who is told is decided here: the alert targets of an event this
   item would create, the update targets of the first report of a new development
   that is no milestone.

The store reads the facts these need and writes what they decide in one transaction
(`monitor.ingest.record`). Decisions after the insert work on the rows that got an id:
a row the database refused is no earlier report of anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from monitor.ingest import cluster, identity
from monitor.ingest.entry import Entry
from monitor.match.classify import Verdict
from monitor.store.items import (
    Candidates,
    EventIntent,
    NewItem,
    Placement,
    Reporter,
    SkippedItem,
    StoredKey,
    Versions,
    Waiting,
)
from monitor.store.migrations import Derivations, Signed

Router = Callable[[str, str | None], Sequence[str]]
"""(story, milestone) → the labels of the targets that receive its alert at once;
(story, None) → those that receive updates (the first report of each new development)."""
Confirming = Callable[[str, str], Mapping[str, int]]
"""(story, milestone) → the targets whose alert waits for confirmation, each with the
number of distinct outlets it waits for."""
CONFIRMING_TIERS = frozenset({"official", "agency"})
"""One report from a source of these tiers confirms a milestone by itself."""


@dataclass(frozen=True, slots=True)
class Classified:
    """An entry with the verdict the match stage gave it."""

    entry: Entry
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Row:
    """An entry this ingest stores: a new item, or a new version of a stored one."""

    classified: Classified
    key: str
    """The row's key: the entry's identity (`identity.keys`), or a version's key."""
    content: str
    """`identity.content_hash` of the entry."""
    version_of: int | None = None
    """For a version: its item's first version."""
    joins: int | None = None
    """For a version: the cluster its item's earlier versions of the same story are in."""
    silent: bool = False
    signature: bytes | None = None
    """Relevant rows only, packed (`cluster.pack`): clustering is for them alone."""
    bands: tuple[int, ...] = ()

    def item(self) -> NewItem:
        """The row as the store inserts it."""
        entry, verdict = self.classified.entry, self.classified.verdict
        return NewItem(
            key=self.key,
            url=entry.url,
            title=entry.title,
            summary=entry.summary,
            outlet=entry.outlet,
            lang=entry.lang,
            published=entry.published,
            story=verdict.story,
            milestone=verdict.milestone,
            terms=_terms_json(verdict) if verdict.story else None,
            signature=self.signature,
            content_hash=self.content,
            version_of=self.version_of,
            silent=self.silent,
        )


@dataclass(frozen=True, slots=True)
class Stored:
    """A row the store inserted, with its id."""

    row: Row
    id: int


@dataclass(frozen=True, slots=True)
class Identified:
    """Level 1: the rows to insert, and the changed versions left out by the cap."""

    rows: list[Row]
    capped: int


@dataclass(slots=True)
class IngestResult:
    """What one ingest did."""

    new: int = 0
    """Entries this feed never had: new items."""
    versions: int = 0
    """Items this feed had whose content changed: new versions, judged again."""
    duplicates: int = 0
    """New items and versions whose link and content were already stored: copies."""
    relevant: int = 0
    events: list[tuple[str, str]] = field(default_factory=list)
    attached: int = 0
    updates: int = 0
    """New developments (clusters) that are no milestone, announced to update targets."""
    deliveries: int = 0
    confirmed: int = 0
    """Waiting alerts that the reports of this ingest confirmed: now due."""
    capped: int = 0
    """Changed versions left out: their item has `identity.MAX_VERSIONS` versions and
    they report no milestone that lacks an event."""
    skipped: list[SkippedItem] = field(default_factory=list)


# -- level 1 ----------------------------------------------------------------------


def fetched(items: Sequence[Classified]) -> list[Row]:
    """A fetch's entries as rows: one per identity (`identity.keys`), the first wins."""
    hashes = [
        c.entry.content or identity.content_hash(c.entry.title, c.entry.summary) for c in items
    ]
    keys = identity.keys([c.entry for c in items], hashes)
    rows: dict[str, Row] = {}
    for classified, key, digest in zip(items, keys, hashes, strict=True):
        if key not in rows:
            rows[key] = Row(classified, key, digest)
    return list(rows.values())


def lookup_keys(rows: Sequence[Row]) -> list[str]:
    """The keys whose storing decides level 1: each row's, and its version's."""
    return [*(r.key for r in rows), *(identity.version_key(r.key, r.content) for r in rows)]


def unseen(rows: Sequence[Row], stored: Mapping[str, StoredKey]) -> list[Row]:
    """The rows this feed has not stored with this content: new items, and new
    versions of stored ones (a changed title or summary)."""
    found = []
    for row in rows:
        first = stored.get(row.key)
        version = identity.version_key(row.key, row.content)
        if version in stored or (first is not None and first.content == row.content):
            continue
        if first is None:
            found.append(row)
        else:
            found.append(Row(row.classified, version, row.content, version_of=first.id))
    return found


def firsts(rows: Sequence[Row]) -> list[int]:
    """The first versions of the stored reports that `rows` has new versions of."""
    return sorted({row.version_of for row in rows if row.version_of is not None})


def needs_events(rows: Sequence[Row], versions: Versions) -> bool:
    """Whether deciding `rows` reads the events: a milestone to create or join, or a
    version past the cap (kept only for a milestone without an event)."""
    return any(
        (r.classified.verdict.relevant and r.classified.verdict.milestone is not None)
        or (
            r.version_of is not None
            and versions.counts.get(r.version_of, 0) >= identity.MAX_VERSIONS
        )
        for r in rows
    )


def identify(
    rows: Sequence[Row],
    versions: Versions,
    events: Collection[tuple[str, str]],
    *,
    baseline: bool,
    alert_after: datetime,
) -> Identified:
    """The rows to insert: each version with its item's cluster, the versions of items
    with `identity.MAX_VERSIONS` versions left out unless they report a milestone that
    has no event yet; silent when the feed's first fetch or published before
    `alert_after`; relevant ones signed."""
    kept = []
    capped = 0
    for row in rows:
        verdict = row.classified.verdict
        joins = None
        if row.version_of is not None and verdict.story is not None:
            joins = versions.clusters.get((row.version_of, verdict.story))
        if (
            row.version_of is not None
            and versions.counts.get(row.version_of, 0) >= identity.MAX_VERSIONS
            and (verdict.milestone is None or (verdict.story, verdict.milestone) in events)
        ):
            capped += 1
            continue
        entry = row.classified.entry
        signature = _signature(entry) if verdict.relevant else None
        kept.append(
            Row(
                row.classified,
                row.key,
                row.content,
                version_of=row.version_of,
                joins=joins,
                silent=baseline or _published_before(entry, alert_after),
                signature=signature,
                bands=_bands(entry, signature),
            )
        )
    return Identified(kept, capped)


# -- levels 2 to 4, and who is told ---------------------------------------------


def links(stored: Sequence[Stored]) -> set[tuple[str, str]]:
    """The (canonical link, content) pairs whose earliest item decides the copies."""
    return {
        (s.row.classified.entry.url, s.row.content) for s in stored if s.row.classified.entry.url
    }


def copies(stored: Sequence[Stored], earliest: Mapping[tuple[str, str], int]) -> dict[int, int]:
    """Copy id → the earlier item it copies (identity level 2): the first item with the
    same canonical link and content, stored before or earlier in this batch. The same
    link with other content is no copy: a new report, or a new version of one."""
    first = dict(earliest)
    for s in stored:  # in id order: a batch's own first report of a pair
        url = s.row.classified.entry.url
        if url:
            pair = (url, s.row.content)
            first[pair] = min(first.get(pair, s.id), s.id)
    found = {}
    for s in stored:
        url = s.row.classified.entry.url
        if url:
            earlier = first[(url, s.row.content)]
            if earlier != s.id:
                found[s.id] = earlier
    return found


def placed(stored: Sequence[Stored], copied: Collection[int]) -> list[Stored]:
    """The inserted rows that are placed: relevant, and no copy."""
    return [s for s in stored if s.id not in copied and s.row.classified.verdict.relevant]


def band_lookup(rows: Sequence[Stored]) -> dict[str, set[int]]:
    """Story → the band keys whose stored items may be near-duplicates of `rows` (a
    version keeps its item's cluster: it looks for none)."""
    wanted: dict[str, set[int]] = {}
    for s in rows:
        story = s.row.classified.verdict.story
        if s.row.bands and s.row.joins is None and story is not None:
            wanted.setdefault(story, set()).update(s.row.bands)
    return wanted


def place(
    rows: Sequence[Stored],
    candidates: Candidates,
    events: Mapping[tuple[str, str], int],
    route: Router,
    confirming: Confirming | None = None,
) -> list[Placement]:
    """Cluster each relevant item, give a milestone its event, and decide who is told.

    The cluster (its first item's id) of near-duplicate reports (level 3): of the items
    sharing a band with this one (stored ones, and earlier ones of this batch), the
    most similar at or above `cluster.THRESHOLD` gives its cluster (the oldest wins a
    tie), else the item starts one. A version stays in its item's cluster: an edited
    report is the same report, so a headline rewritten in place is judged (its
    milestone alerts) but never announced again as a new development.
    """
    routes: dict[tuple[str, str | None], Sequence[str]] = {}

    def told(story: str, milestone: str | None) -> Sequence[str]:
        if (story, milestone) not in routes:
            routes[(story, milestone)] = route(story, milestone)
        return routes[(story, milestone)]

    # Signatures as `cluster.lanes` integers: compared in C, hashed cheaply.
    unpacked: dict[int, int] = {}
    # This batch's placed items, as candidates for the ones after them.
    batch_bands: dict[tuple[str, int], list[int]] = {}
    batch: dict[int, tuple[int, int]] = {}
    known = _Known(candidates, batch_bands, batch, unpacked)
    placements = []
    for s in rows:
        row = s.row
        entry, verdict = row.classified.entry, row.classified.verdict
        assert verdict.story is not None
        story = verdict.story
        cluster_id = row.joins or s.id
        signature = None if row.signature is None else cluster.lanes(row.signature)
        if signature is not None and row.joins is None:
            cluster_id = _nearest(story, row.bands, signature, known) or cluster_id
        indexed = _indexed(story, row.bands, candidates, batch_bands)
        if signature is not None:
            batch[s.id] = (cluster_id, signature)
            for key in row.bands:
                batch_bands.setdefault((story, key), []).append(s.id)
        title = _headline(entry)
        if verdict.milestone is None:
            update = None
            if cluster_id == s.id and not row.silent:
                update = told(story, None)
            placements.append(
                Placement(
                    s.id,
                    story,
                    cluster_id,
                    indexed,
                    update=update,
                    title=title,
                    signature=row.signature,
                )
            )
            continue
        event = EventIntent(
            story=story,
            milestone=verdict.milestone,
            title=title,
            url=entry.url,
            outlet=entry.outlet,
            silent=row.silent,
            alert=() if row.silent else told(story, verdict.milestone),
            known=events.get((story, verdict.milestone)),
            confirm={}
            if row.silent or confirming is None
            else confirming(story, verdict.milestone),
        )
        placements.append(
            Placement(s.id, story, cluster_id, indexed, event=event, signature=row.signature)
        )
    return placements


def _indexed(
    story: str,
    bands: Sequence[int],
    candidates: Candidates,
    batch_bands: Mapping[tuple[str, int], Sequence[int]],
) -> tuple[int, ...]:
    """The band keys an item is indexed under: those with fewer than
    `cluster.BUCKET_CAP` holders in the window so far (stored, and earlier in this batch).

    A full bucket is a text many reports share (a wire story's sentence): a later report
    with that band finds the holders, which share the band with this item too, so the
    item adds nothing to find there, and every later lookup of the key would read it.
    """
    return tuple(
        key
        for key in bands
        if len(candidates.by_band.get((story, key), ())) + len(batch_bands.get((story, key), ()))
        < cluster.BUCKET_CAP
    )


@dataclass(frozen=True)
class _Known:
    """What a new item is compared with: stored candidates and this batch's items."""

    stored: Candidates
    batch_bands: Mapping[tuple[str, int], Sequence[int]]
    batch: Mapping[int, tuple[int, int]]
    """Id → (cluster, signature as `cluster.lanes`)."""
    unpacked: dict[int, int]
    """Stored candidates' signatures as `cluster.lanes`, made once per batch."""


def _nearest(story: str, bands: Sequence[int], signature: int, known: _Known) -> int | None:
    """The cluster of the most similar item at or above `cluster.THRESHOLD`, the oldest
    on a tie; None when there is none."""
    best, found = 0.0, None
    # On the day of a big event a story's reports are hundreds of copies and light
    # rewrites of a few texts, all sharing bands. A signature met before cannot beat
    # its older twin, and nothing beats an identical one: both cuts leave the choice
    # as it was.
    compared: set[int] = set()
    for other in _candidates(story, bands, known.stored, known.batch_bands):
        if other in known.batch:
            other_cluster, other_signature = known.batch[other]
        else:
            stored_cluster, packed = known.stored.signed[other]
            other_cluster = stored_cluster or other
            if other not in known.unpacked:
                known.unpacked[other] = cluster.lanes(packed)
            other_signature = known.unpacked[other]
        if other_signature in compared:
            continue
        compared.add(other_signature)
        similarity = cluster.lanes_similarity(signature, other_signature)
        if similarity >= cluster.THRESHOLD and similarity > best:
            best, found = similarity, other_cluster
            if similarity == 1.0:
                break
    return found


def _candidates(
    story: str,
    bands: Sequence[int],
    candidates: Candidates,
    batch_bands: Mapping[tuple[str, int], Sequence[int]],
) -> list[int]:
    """The ids of the items sharing a band with one, oldest first."""
    found: set[int] = set()
    for key in bands:
        found.update(i for i in candidates.by_band.get((story, key), ()) if i in candidates.signed)
        found.update(batch_bands.get((story, key), ()))
    return sorted(found)


def _signature(entry: Entry) -> bytes | None:
    """The entry's packed signature: as the parse worker took it, or taken now."""
    if entry.signature is not None:
        return entry.signature
    signature = cluster.signature(entry.title, entry.summary)
    return None if signature is None else cluster.pack(signature)


def _bands(entry: Entry, signature: bytes | None) -> tuple[int, ...]:
    """The band keys of `signature`: as `read_feed` took them with it, or taken now (an
    entry that did not come through `read_feed`, as `replay`'s do not)."""
    if signature is None:
        return ()
    if entry.bands and signature is entry.signature:
        return entry.bands
    return tuple(cluster.packed_band_keys(signature))


# -- confirmation ------------------------------------------------------------------


def confirmed(waiting: Sequence[Waiting], reporters: Mapping[int, Sequence[Reporter]]) -> list[int]:
    """The waiting alerts whose milestone is now confirmed: reported by as many distinct
    outlets as each waits for, or by one source of a `CONFIRMING_TIERS` tier."""
    released = []
    for alert in waiting:
        reports = reporters.get(alert.event_id, ())
        outlets = {r.outlet for r in reports}
        if len(outlets) >= alert.confirm or any(r.tier in CONFIRMING_TIERS for r in reports):
            released.append(alert.id)
    return released


# -- what the store needs of the ingest stage -------------------------------------


def _signed(title: str, summary: str) -> Signed | None:
    signature = cluster.signature(title, summary)
    if signature is None:
        return None
    return cluster.pack(signature), cluster.band_keys(signature)


DERIVATIONS = Derivations(content_hash=identity.content_hash, signature=_signed)
"""How stored items' digests and signatures are derived, for migrations that fill them in."""


def _published_before(entry: Entry, moment: datetime) -> bool:
    return entry.published is not None and entry.published < moment


def _headline(entry: Entry) -> str:
    """What names a report when it has no title: the start of its summary."""
    return entry.title or entry.summary[:200]


def _terms_json(verdict: Verdict) -> str:
    return json.dumps(
        {rule: list(found) for rule, found in verdict.terms.items()}, ensure_ascii=False
    )
