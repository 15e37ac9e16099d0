"""Ingest persistence: the facts an ingest decides on, and its decisions written, in
one transaction.

The store decides nothing here. `monitor.ingest.decide` judges a fetch's entries (what
is new, a version, a copy, which cluster, which event, who is told) over the values
an `IngestTransaction` reads; the transaction writes what was decided, and the
feed's new state, and commits once: a crash never leaves an event without its
deliveries or a delivery without its event. Two phases, because what the later
decisions see depends on what the database took: rows are inserted first (a row the
database refuses, or one another process inserted first, is left out and judged no
further), then copies, clusters and events are decided over the rows that got ids.

Events stay insert-on-conflict-do-nothing, so of several processes ingesting the same
milestone at once only the one whose insert creates the event queues its alerts.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError, StatementError
from sqlmodel import Session

from monitor.core.errors import StoreError
from monitor.store.engine import Database, rowcount, short, utc
from monitor.store.feeds import ok_values
from monitor.store.migrations import CLUSTER_WINDOW
from monitor.store.tables import BAND_TABLE as _BAND
from monitor.store.tables import DELIVERY_TABLE as _DELIVERY
from monitor.store.tables import EVENT_TABLE as _EVENT
from monitor.store.tables import FEED_TABLE as _FEED
from monitor.store.tables import ITEM_TABLE as _ITEM
from monitor.store.views import DEFAULT_TIER, PENDING, WAITING

# The hot path's statements, built once: building one costs more than running it.
_FEED_KEY = select(_FEED.c.id, _FEED.c.baseline_done).where(_FEED.c.name == bindparam("feed_name"))
_UPDATE_FEED_BY_ID = (
    update(_FEED)
    .where(_FEED.c.id == bindparam("feed_id"))
    .values(
        items_seen=_FEED.c.items_seen + bindparam("added"),
        items_skipped=_FEED.c.items_skipped + bindparam("skipped"),
    )
)
_STORED_KEYS = select(_ITEM.c.id, _ITEM.c.key, _ITEM.c.content_hash).where(
    _ITEM.c.feed_id == bindparam("feed_id"), _ITEM.c.key.in_(bindparam("keys", expanding=True))
)
_VERSIONS = (
    select(_ITEM.c.id, _ITEM.c.version_of, _ITEM.c.story, _ITEM.c.cluster_id)
    .where(
        or_(
            _ITEM.c.id.in_(bindparam("firsts", expanding=True)),
            _ITEM.c.version_of.in_(bindparam("of_firsts", expanding=True)),
        )
    )
    .order_by(_ITEM.c.id)
)
# Links and contents as two lists (a superset of the pairs wanted): SQLite seeks the
# (url, content_hash) index for two IN lists, but scans it for a list of row values.
# It seeks by link alone and checks the content on the entries found: given both lists
# as index terms it seeks every (link, content) pair, 1,600 seeks for a feed's 40 items,
# each a descent of a million-item index on a database that has lived a month.
# (`|| ''` keeps the planner off the second column; a NULL digest still matches none.)
_FIRST_BY_CONTENT = (
    select(_ITEM.c.url, _ITEM.c.content_hash, func.min(_ITEM.c.id))
    .where(
        _ITEM.c.url.in_(bindparam("urls", expanding=True)),
        (_ITEM.c.content_hash + "").in_(bindparam("contents", expanding=True)),
        _ITEM.c.duplicate_of.is_(None),
    )
    .group_by(_ITEM.c.url, _ITEM.c.content_hash)
)
_SIGNED = select(
    _ITEM.c.id, _ITEM.c.story, _ITEM.c.cluster_id, _ITEM.c.seen_at, _ITEM.c.signature
).where(_ITEM.c.id.in_(bindparam("ids", expanding=True)), _ITEM.c.signature.is_not(None))
_INSERT_DELIVERY = _DELIVERY.insert()
_EVENT_IDS = select(_EVENT.c.story, _EVENT.c.milestone, _EVENT.c.id)
_EVENT_ID = select(_EVENT.c.id).where(
    _EVENT.c.story == bindparam("story"), _EVENT.c.milestone == bindparam("milestone")
)
_MARK_COPY = (
    update(_ITEM).where(_ITEM.c.id == bindparam("item_id")).values(duplicate_of=bindparam("first"))
)
_SET_CLUSTER = (
    update(_ITEM).where(_ITEM.c.id == bindparam("item_id")).values(cluster_id=bindparam("cluster"))
)
_SET_CLUSTER_AND_EVENT = (
    update(_ITEM)
    .where(_ITEM.c.id == bindparam("item_id"))
    .values(cluster_id=bindparam("cluster"), event_id=bindparam("event"))
)
_WAITING = (
    select(_DELIVERY.c.id, _DELIVERY.c.event_id, _DELIVERY.c.target, _DELIVERY.c.confirm)
    .where(
        _DELIVERY.c.event_id.in_(bindparam("ids", expanding=True)),
        _DELIVERY.c.status == WAITING,
    )
    .order_by(_DELIVERY.c.id)
)
# FOR NO KEY UPDATE on PostgreSQL: it queues confirmers one behind the other, yet
# leaves alone the KEY SHARE locks an item's foreign key to its event takes (a FOR
# UPDATE would wait on another confirmer's, which would wait on this one's: deadlock).
_LOCK_EVENTS = (
    select(_EVENT.c.id)
    .where(_EVENT.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_EVENT.c.id)
    .with_for_update(key_share=True)
)
_REPORTERS = (
    select(_ITEM.c.event_id, _ITEM.c.outlet, _FEED.c.name, _FEED.c.tier)
    .join(_FEED, _FEED.c.id == _ITEM.c.feed_id)
    .where(_ITEM.c.event_id.in_(bindparam("ids", expanding=True)))
    .order_by(_ITEM.c.seen_at, _ITEM.c.id)
)
_RELEASE = (
    update(_DELIVERY)
    .where(
        _DELIVERY.c.id.in_(bindparam("ids", expanding=True)),
        _DELIVERY.c.status == WAITING,
    )
    .values(status=PENDING, created_at=bindparam("now"), next_attempt_at=bindparam("now"))
)
SIGNED_CACHE = 8192
"""Stored signatures an ingesting process keeps (`SignedCache`): about 6 MB when full."""
_LOOKUP_CHUNK = 400
"""Keys or links per lookup statement: well under any database's limit on parameters."""
_T = TypeVar("_T")
_ROW_FAULTS = (SQLAlchemyError, UnicodeError, ValueError)
"""What an insert can raise; `_row_fault` tells a refused row from a failing database."""


# -- facts: what the ingest transaction reads --------------------------------------


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key the feed has stored: its item and that item's content digest."""

    id: int
    content: str | None


@dataclass(frozen=True, slots=True)
class Versions:
    """What the feed's stored reports have of versions."""

    counts: Mapping[int, int] = field(default_factory=dict)
    """First version's id → how many versions of it are stored (itself included)."""
    clusters: Mapping[tuple[int, str], int] = field(default_factory=dict)
    """(first version's id, story) → the cluster the latest such version is in."""


@dataclass(frozen=True, slots=True)
class Candidates:
    """Stored relevant items sharing a band with the batch, within the clustering window."""

    by_band: Mapping[tuple[str, int], tuple[int, ...]] = field(default_factory=dict)
    """(story, band key) → the ids of the items that have that band."""
    signed: Mapping[int, tuple[int | None, bytes]] = field(default_factory=dict)
    """Item id → (its cluster, its packed signature), for items with a signature."""


Signed = tuple[str, int | None, datetime, bytes]
"""A stored relevant item as clustering reads it: story, cluster, seen at, signature."""


class SignedCache:
    """The signatures of relevant items this process has committed or read, by id.

    On the day of a surge each new report has hundreds of stored candidates, nearly all
    of them written or read by this process's earlier ingests: reading each one's row
    again (its signature, story, cluster) was a third of an ingest. What is kept never
    changes once committed: an item's signature, story, cluster and arrival are written
    in the transaction that inserts it, and only migrations, which run before ingests,
    rewrite them. Entries are learned only after the transaction that wrote or read
    them committed, so a rolled-back insert, whose id may be given again, is never
    kept. The oldest learned entry goes first once `size` are kept.
    """

    def __init__(self, size: int = SIGNED_CACHE) -> None:
        self._size = size
        self._entries: dict[int, Signed] = {}
        self._lock = threading.Lock()

    def get(self, item_id: int) -> Signed | None:
        return self._entries.get(item_id)

    def learn(self, entries: Mapping[int, Signed]) -> None:
        with self._lock:
            kept = self._entries
            for item_id, signed in entries.items():
                kept.pop(item_id, None)  # read again: kept as the newest
                kept[item_id] = signed
            for oldest in list(islice(kept, max(len(kept) - self._size, 0))):
                del kept[oldest]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


# -- intents: what the ingest transaction writes -----------------------------------


@dataclass(frozen=True, slots=True)
class NewItem:
    """A row to insert: a new item, or a new version of a stored one."""

    key: str
    url: str | None
    title: str
    summary: str
    outlet: str | None
    lang: str | None
    published: datetime | None
    story: str | None
    milestone: str | None
    terms: str | None
    """The verdict's matched terms, JSON."""
    signature: bytes | None
    content_hash: str
    version_of: int | None
    silent: bool


@dataclass(frozen=True, slots=True)
class EventIntent:
    """The (story, milestone) event an item creates or joins."""

    story: str
    milestone: str
    title: str
    url: str | None
    outlet: str | None
    silent: bool
    alert: Sequence[str]
    """The targets alerted if this item's insert is the one that creates the event."""
    known: int | None = None
    """The event's id when it existed before this ingest: joined without an insert."""
    confirm: Mapping[str, int] = field(default_factory=dict)
    """Targets whose alert waits for confirmation, with the outlets each waits for:
    queued `waiting` if this item's insert creates the event."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an inserted relevant item goes: its cluster, its bands, its event, and who
    hears of it as an update."""

    item_id: int
    story: str
    cluster_id: int
    bands: Sequence[int]
    event: EventIntent | None = None
    update: Sequence[str] | None = None
    """For the first report of a new development that is no milestone (and not silent):
    the targets of its update (maybe none)."""
    title: str = ""
    """The headline an update carries."""
    signature: bytes | None = None
    """The item's packed signature, as inserted."""


@dataclass(frozen=True, slots=True)
class Placed:
    """What placing the items did."""

    events: list[tuple[str, str]]
    """(story, milestone) of each event created and alerted."""
    attached: int
    """Items that joined an event that already existed."""
    deliveries: int
    """Deliveries queued due (alerts waiting for confirmation not counted)."""
    touched: list[int] = field(default_factory=list)
    """The ids of the events created or joined, each once: whose waiting alerts the
    reports placed may confirm."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """An alert waiting for its milestone to be confirmed."""

    id: int
    event_id: int
    target: str
    confirm: int
    """The distinct outlets it waits for."""


@dataclass(frozen=True, slots=True)
class Reporter:
    """One report attached to an event, as confirmation counts it."""

    outlet: str
    """The outlet named in the report, else its feed's name."""
    tier: str


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """An entry the database refused to store: left out, the rest of its feed stored."""

    key: str
    title: str
    url: str | None
    error: str


class IngestTransaction:
    """One feed's ingest: reads the facts, writes the intents, all in one transaction."""

    def __init__(self, store: ItemStore, db: Connection, feed_id: int, baseline: bool) -> None:
        self._store = store
        self._db = db
        self._feed_id = feed_id
        self.baseline = baseline
        """The feed's first fetch: its items are recorded silently."""
        self.skipped: list[SkippedItem] = []
        self.learned: dict[int, Signed] = {}
        """Signatures this transaction read or wrote: `SignedCache` learns them once it
        has committed."""

    # -- facts --

    def stored(self, keys: Sequence[str]) -> dict[str, StoredKey]:
        """Which of `keys` the feed has stored, with their content."""
        found: dict[str, StoredKey] = {}
        for chunk in _chunks(keys):
            for item_id, key, digest in self._db.execute(
                _STORED_KEYS, {"feed_id": self._feed_id, "keys": chunk}
            ):
                found[key] = StoredKey(item_id, digest)
        return found

    def versions(self, firsts: Sequence[int]) -> Versions:
        """The versions stored of the reports whose first versions are `firsts`."""
        counts: dict[int, int] = {}
        clusters: dict[tuple[int, str], int] = {}
        for chunk in _chunks(firsts):
            found = self._db.execute(_VERSIONS, {"firsts": chunk, "of_firsts": chunk})
            for item_id, version_of, story, cluster_id in found:  # oldest first
                first = version_of or item_id
                counts[first] = counts.get(first, 0) + 1
                if story is not None and cluster_id is not None:
                    clusters[(first, story)] = cluster_id
        return Versions(counts, clusters)

    def events(self) -> dict[tuple[str, str], int]:
        """(story, milestone) → id of every event so far (a handful per story)."""
        return {(story, milestone): i for story, milestone, i in self._db.execute(_EVENT_IDS)}

    def earliest(self, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """(canonical link, content digest) → the first item with both that is no copy
        (this ingest's inserted rows included)."""
        first: dict[tuple[str, str], int] = {}
        for chunk in _chunks(sorted(pairs)):
            urls = sorted({url for url, _ in chunk})
            contents = sorted({digest for _, digest in chunk})
            found = self._db.execute(_FIRST_BY_CONTENT, {"urls": urls, "contents": contents})
            for url, digest, item_id in found:
                first[(url, digest)] = item_id
        return first

    def candidates(self, bands: Mapping[str, Collection[int]], now: datetime) -> Candidates:
        """The stored items of each story sharing any of its band keys, seen within the
        clustering window: an indexed lookup of a few hundred keys, then the items
        found, by id (those of another story, or older, are left out), from this
        process's `SignedCache` or else read."""
        hits: dict[int, list[int]] = {}
        keys = sorted({key for wanted in bands.values() for key in wanted})
        for chunk in _chunks(keys):
            # The driver's own SQL and one fetchall: a surge looks up some 300,000 keys,
            # and SQLAlchemy's expanding IN and row-by-row iteration cost a third more
            # than the database's lookups (0.47 against 0.35 s for 200,000 keys).
            sql = self._store.band_hits_sql(len(chunk))
            for key, item_id in self._db.exec_driver_sql(sql, tuple(chunk)).fetchall():
                hits.setdefault(key, []).append(item_id)
        cache = self._store.signed_cache
        found: dict[int, Signed] = {}
        missing = []
        for item_id in sorted({i for ids in hits.values() for i in ids}):
            known = cache.get(item_id)
            if known is None:
                missing.append(item_id)
            else:
                found[item_id] = known
        for chunk in _chunks(missing):
            for item_id, story, cluster_id, seen_at, packed in self._db.execute(
                _SIGNED, {"ids": chunk}
            ).all():
                found[item_id] = self.learned[item_id] = (story, cluster_id, utc(seen_at), packed)
        since = now - CLUSTER_WINDOW
        signed = {i: (f[1], f[3]) for i, f in found.items() if f[2] >= since}
        by_band: dict[tuple[str, int], tuple[int, ...]] = {}
        for story, wanted in bands.items():
            for key in wanted:
                holders = tuple(
                    i for i in hits.get(key, ()) if i in signed and found[i][0] == story
                )
                if holders:
                    by_band[(story, key)] = holders
        return Candidates(by_band, signed)

    # -- intents --

    def insert(self, rows: Sequence[NewItem], now: datetime) -> list[int | None]:
        """Insert the rows; each one's id, or None if another process inserted it first
        or the database refused it (then it is in `skipped`). In one batch, or, when
        the database refuses the batch, one by one."""
        values = [
            {
                "feed_id": self._feed_id,
                "key": row.key,
                "url": row.url,
                "title": row.title,
                "summary": row.summary,
                "outlet": row.outlet,
                "lang": row.lang,
                "published": row.published,
                "seen_at": now,
                "story": row.story,
                "milestone": row.milestone,
                "terms": row.terms,
                "signature": row.signature,
                "content_hash": row.content_hash,
                "version_of": row.version_of,
                "silent": row.silent,
            }
            for row in rows
        ]
        if not values:
            return []
        statement = self._store._insert_items_sql
        try:
            # One statement with the rows as parameters (executemany): SQLAlchemy
            # compiles it once and batches the rows itself. Rows inlined with
            # .values(list) compiled a new statement of thousands of parameters per feed,
            # most of an ingest's cost. The savepoint keeps the transaction usable (on
            # PostgreSQL an error aborts it) if the database refuses the batch.
            with self._db.begin_nested():
                inserted = self._db.execute(statement, values).all()
        except _ROW_FAULTS as exc:
            if not _row_fault(exc):
                raise
            inserted = []
            for row, one in zip(rows, values, strict=True):
                try:
                    with self._db.begin_nested():
                        inserted += self._db.execute(statement, [one]).all()
                except _ROW_FAULTS as refused:
                    if not _row_fault(refused):
                        raise
                    error = short(refused) if isinstance(refused, SQLAlchemyError) else refused
                    # The first line: PostgreSQL's DETAIL repeats the whole row.
                    reason = f"{error}".split("\n", 1)[0][:500]
                    self.skipped.append(SkippedItem(row.key, row.title, row.url, reason))
        ids = {key: item_id for item_id, key in inserted}
        return [ids.get(row.key) for row in rows]

    def mark_copies(self, copies: Mapping[int, int]) -> None:
        """Record each copy's first item (copy id → first id)."""
        if copies:
            self._db.execute(_MARK_COPY, [{"item_id": i, "first": f} for i, f in copies.items()])

    def place(self, placements: Sequence[Placement], now: datetime) -> Placed:
        """Write each placement, in order: bands, clusters, events created or joined,
        and the deliveries of the alerts and updates it was decided to send."""
        self._index(placements, now)
        events: list[tuple[str, str]] = []
        attached = 0
        deliveries: list[dict[str, Any]] = []
        clusters: list[dict[str, Any]] = []
        with_events: list[dict[str, Any]] = []
        made: dict[tuple[str, str], int] = {}
        touched: list[int] = []
        for p in placements:
            if p.event is None:
                clusters.append({"item_id": p.item_id, "cluster": p.cluster_id})
                for target in p.update or ():
                    deliveries.append(
                        _delivery(target, now, "update", f"update:{p.item_id}", item=p.item_id)
                    )
                    deliveries[-1]["title"] = p.title
                continue
            event_id, created = self._event(p.event, p.item_id, now, made)
            with_events.append({"item_id": p.item_id, "cluster": p.cluster_id, "event": event_id})
            if event_id not in touched:
                touched.append(event_id)
            if created and not p.event.silent:
                events.append((p.event.story, p.event.milestone))
                deliveries += [
                    _delivery(target, now, "alert", f"event:{event_id}", event=event_id)
                    for target in p.event.alert
                ]
                for target, needed in p.event.confirm.items():
                    deliveries.append(
                        _delivery(target, now, "alert", f"event:{event_id}", event=event_id)
                    )
                    deliveries[-1].update(status=WAITING, confirm=needed)
            elif not created:
                attached += 1
        if deliveries:
            self._db.execute(_INSERT_DELIVERY, deliveries)
        if clusters:
            self._db.execute(_SET_CLUSTER, clusters)
        if with_events:
            self._db.execute(_SET_CLUSTER_AND_EVENT, with_events)
        due = sum(1 for d in deliveries if d["status"] == PENDING)
        return Placed(events, attached, due, touched)

    def _index(self, placements: Sequence[Placement], now: datetime) -> None:
        """Write the placed items' band keys, and remember their signatures."""
        bands = sorted((key, p.item_id) for p in placements for key in p.bands)
        if bands:
            # The driver's executemany, with the rows as plain tuples: a surge writes
            # about twenty band rows per relevant item, and SQLAlchemy's per-row
            # parameter handling cost more than the database's insert of them. In key
            # order, the table's own: about a tenth less CPU for SQLite's insert of them
            # (stand-alone; within a whole ingest, less than its noise).
            self._db.exec_driver_sql(self._store.insert_band_sql, bands)
        for p in placements:
            if p.signature is not None:
                self.learned[p.item_id] = (p.story, p.cluster_id, now, p.signature)

    def waiting(self, event_ids: Collection[int]) -> list[Waiting]:
        """The alerts of these events waiting for confirmation, oldest first. The events'
        rows are locked first (a no-op on SQLite, whose writers take turns anyway), so of
        two ingests confirming one event on PostgreSQL the second counts the first's
        reports: no confirmation is missed for having been split between them."""
        if not event_ids:
            return []
        ids = sorted(event_ids)
        found = self._db.execute(_WAITING, {"ids": ids}).all()
        if not found:
            return []
        self._db.execute(_LOCK_EVENTS, {"ids": sorted({row.event_id for row in found})})
        # Read again under the lock: another ingest may have released some meanwhile.
        again = self._db.execute(_WAITING, {"ids": ids}).all()
        return [Waiting(r.id, r.event_id, r.target, r.confirm or 0) for r in again]

    def reporters(self, event_ids: Collection[int]) -> dict[int, list[Reporter]]:
        """Event id → its reports in order of arrival, each with its outlet and tier."""
        found: dict[int, list[Reporter]] = {}
        for event_id, outlet, feed, tier in self._db.execute(
            _REPORTERS, {"ids": sorted(event_ids)}
        ):
            found.setdefault(event_id, []).append(Reporter(outlet or feed, tier or DEFAULT_TIER))
        return found

    def release(self, ids: Collection[int], now: datetime) -> int:
        """Make confirmed alerts due now (queued now: their age counts from here); how
        many were still waiting."""
        if not ids:
            return 0
        return rowcount(self._db.execute(_RELEASE, {"ids": sorted(ids), "now": now}))

    def _event(
        self, intent: EventIntent, item_id: int, now: datetime, made: dict[tuple[str, str], int]
    ) -> tuple[int, bool]:
        """The event's id, and True when this insert created it (insert-on-conflict-do-
        nothing: of concurrent ingests only the one that creates it alerts)."""
        key = (intent.story, intent.milestone)
        if intent.known is not None:
            return intent.known, False
        if key in made:
            return made[key], False
        statement = (
            self._store._insert_statement(_EVENT)
            .values(
                story=intent.story,
                milestone=intent.milestone,
                created_at=now,
                first_item_id=item_id,
                title=intent.title,
                url=intent.url,
                outlet=intent.outlet,
                silent=intent.silent,
            )
            .on_conflict_do_nothing(index_elements=["story", "milestone"])
            .returning(_EVENT.c.id)
        )
        created = self._db.execute(statement).scalar_one_or_none()
        if created is not None:
            made[key] = created
            return created, True
        existing = self._db.execute(
            _EVENT_ID, {"story": intent.story, "milestone": intent.milestone}
        ).scalar_one()
        made[key] = existing
        return int(existing), False

    def record_fetch(
        self,
        now: datetime,
        next_check: datetime,
        *,
        new: int,
        validators: tuple[str | None, str | None],
        content_hash: str | None,
        moved_to: str | None,
    ) -> None:
        """The feed's state after a fetch with a body: healthy, baseline done, counted."""
        values: dict[str, Any] = {
            **ok_values(now, next_check),
            "last_status": 200,
            "etag": validators[0],
            "last_modified": validators[1],
            "content_hash": content_hash,
            "baseline_done": True,
        }
        if moved_to:
            values["moved_to"] = moved_to
        if new:
            values["last_item_at"] = now
        self._db.execute(
            _UPDATE_FEED_BY_ID,
            {"feed_id": self._feed_id, "added": new, "skipped": len(self.skipped), **values},
        )


class ItemStore(Database):
    """The items of every feed, as ingests write them."""

    @property
    def _insert_items_sql(self) -> Any:
        # Built once per store: the dialect's INSERT ... ON CONFLICT DO NOTHING RETURNING.
        cached = self.__dict__.get("_items_sql")
        if cached is None:
            cached = (
                self._insert_statement(_ITEM)
                .on_conflict_do_nothing(index_elements=["feed_id", "key"])
                .returning(_ITEM.c.id, _ITEM.c.key)
            )
            self.__dict__["_items_sql"] = cached
        return cached

    def known_keys(self, name: str, keys: Sequence[str]) -> set[str]:
        """Which of `keys` feed `name` has stored (none, for a feed never recorded)."""
        known: set[str] = set()
        with self._read() as session:
            db = session.connection()
            found = db.execute(_FEED_KEY, {"feed_name": name}).one_or_none()
            if found is None:
                return known
            for chunk in _chunks(keys):
                params = {"feed_id": found[0], "keys": chunk}
                known.update(key for _, key, _ in db.execute(_STORED_KEYS, params))
        return known

    @contextmanager
    def ingest(self, name: str) -> Iterator[IngestTransaction]:
        """One transaction for a fetch of feed `name`: committed when the block ends,
        rolled back when it raises."""
        with self._write() as session:
            yield self._transaction(session, name)

    def ingest_grouped(self, name: str, work: Callable[[IngestTransaction], _T]) -> _T:
        """`work` over a fetch of feed `name`, atomically: in a savepoint of a write
        transaction it may share with other feeds' ingests waiting at the same moment,
        and whose commit it returns after (group commit, `Database._grouped`). Raising,
        it leaves nothing written."""
        transactions: list[IngestTransaction] = []

        def run(session: Session) -> _T:
            transactions.append(self._transaction(session, name))
            return work(transactions[-1])

        result = self._grouped(run)  # raises unless committed: nothing is learned then
        self.signed_cache.learn(transactions[-1].learned)
        return result

    @functools.cached_property
    def insert_band_sql(self) -> str:
        """INSERT of one band row in the driver's own SQL (`IngestTransaction._index`).
        A band already there is left alone: an ingest retried after its commit was in
        doubt cannot fail on it (measured: no cost)."""
        mark = self._driver_mark
        return (
            f"INSERT INTO {_BAND.name} (key, item_id) VALUES ({mark}, {mark})"
            " ON CONFLICT DO NOTHING"
        )

    @functools.cached_property
    def _driver_mark(self) -> str:
        """The driver's own placeholder: sqlite3's qmark, psycopg's format style."""
        return "?" if self._sqlite else "%s"

    def band_hits_sql(self, count: int) -> str:
        """SELECT of the bands holding any of `count` keys, in the driver's own SQL (built
        once per count: a lookup's chunks are all `_LOOKUP_CHUNK` long but its last)."""
        built: dict[int, str] = self.__dict__.setdefault("_band_hits_sql", {})
        sql = built.get(count)
        if sql is None:
            marks = ", ".join([self._driver_mark] * count)
            sql = built[count] = f"SELECT key, item_id FROM {_BAND.name} WHERE key IN ({marks})"
        return sql

    @functools.cached_property
    def signed_cache(self) -> SignedCache:
        """Signatures this process's ingests committed or read (`SignedCache`)."""
        return SignedCache()

    def _transaction(self, session: Session, name: str) -> IngestTransaction:
        db = session.connection()
        found = db.execute(_FEED_KEY, {"feed_name": name}).one_or_none()
        if found is None:
            raise StoreError(f"unknown feed {name!r}: call sync_feeds first")
        feed_id, baseline_done = found
        return IngestTransaction(self, db, feed_id, baseline=not baseline_done)


def _delivery(
    target: str,
    now: datetime,
    kind: str,
    dedup_key: str,
    *,
    event: int | None = None,
    item: int | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "dedup_key": dedup_key,
        "target": target,
        "status": PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        "event_id": event,
        "item_id": item,
        "title": None,
        "reported": False,
        "confirm": None,
    }


def _chunks(values: Sequence[_T], size: int = _LOOKUP_CHUNK) -> Iterator[Sequence[_T]]:
    """`values` in slices of at most `size`, for lookups with one parameter per value."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _row_fault(exc: BaseException) -> bool:
    """Whether an insert failed for the row's own values (a text the database refuses,
    a constraint it breaks), as opposed to the database failing (locked, full, gone):
    a refused row is left out; a failing database fails the feed's ingest."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, StatementError):  # the driver could not even bind the values
        return isinstance(exc.orig, UnicodeError | ValueError)
    return isinstance(exc, UnicodeError | ValueError)
