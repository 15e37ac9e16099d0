"""Retention: what an old database may forget, pruned in short transactions.

An item first seen before the cutoff goes unless something still needs it:

- it is attached to an event (`item.event_id`) or is an event's first report
  (`event.first_item_id`): events and their reports are history, kept forever;
- a delivery that stays names it (`delivery.item_id`, an update);
- it is in its feed's latest batch (the items of the feed's newest `seen_at`), so a
  quiet feed keeps what it last listed;
- an item that stays points at it (`version_of`, `duplicate_of`, `cluster_id` all point
  at earlier items): kept, transitively, so no stored reference dangles.

Bands of items older than the clustering window go (ingest never reads them), and so do the
bands of pruned items. Sent deliveries, and dead ones already reported, created before
the cutoff go; pending, failed, folded and unreported dead rows stay, and so does a
row folded into a summary that stays.

Items are deleted newest first in batches of `BATCH`, one write transaction each, so a
year of backlog never holds the write lock for long; each batch checks again, inside
its transaction, what a concurrent ingest may have attached since the plan was made
(events, deliveries, versions, clusters). A copy marked by a concurrent ingest in the
same moment may keep a `duplicate_of` naming a pruned item: readers only test it for
NULL, so it still reads as a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, exists, func, not_, or_, select
from sqlalchemy.orm import aliased

from monitor.store.engine import Database, rowcount
from monitor.store.migrations import CLUSTER_WINDOW
from monitor.store.tables import BAND_TABLE as _BAND
from monitor.store.tables import DELIVERY_TABLE as _DELIVERY
from monitor.store.tables import EVENT_TABLE as _EVENT
from monitor.store.tables import ITEM_TABLE as _ITEM
from monitor.store.views import DEAD, SENT

BATCH = 1000
"""Rows per delete transaction: a few milliseconds of write lock each."""
_REFERENCES = ("version_of", "duplicate_of", "cluster_id")


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune removed (or, dry, would remove), per table."""

    before: datetime
    """Items and deliveries older than this were eligible."""
    items: int
    bands: int
    deliveries: int
    kept: int
    """Items older than `before` kept because something still needs them."""
    dry_run: bool


class RetentionStore(Database):
    """Pruning what is older than the retention."""

    def prune(
        self, before: datetime, *, now: datetime | None = None, dry_run: bool = False
    ) -> PruneReport:
        """Delete what `before` makes old (module docstring); with `dry_run`, only count.
        `now` dates the clustering window for bands (default: the clock)."""
        bands_before = (now or datetime.now(UTC)) - CLUSTER_WINDOW
        deliveries = self._old_deliveries(before)
        protected = self._protected(before, gone=set(deliveries))
        removed_deliveries = self._delete_ids(_DELIVERY, deliveries, dry_run)
        removed_bands = self._prune_old_bands(bands_before, dry_run)
        items = bands = kept = 0
        cursor: int | None = None
        while True:
            with self._read() as session:
                old = _old_items(session.connection(), before, cursor)
            if not old:
                break
            cursor = old[-1]
            batch = [i for i in old if i not in protected]
            kept += len(old) - len(batch)
            if not batch:
                continue
            if dry_run:
                with self._read() as session:
                    bands += _count_bands(session.connection(), batch, since=bands_before)
                items += len(batch)
                continue
            with self._write() as session:
                db = session.connection()
                blocked = _still_needed(db, batch)
                kept += len(blocked)
                doomed = [i for i in batch if i not in blocked]
                if doomed:
                    bands += rowcount(db.execute(delete(_BAND).where(_BAND.c.item_id.in_(doomed))))
                    items += rowcount(db.execute(delete(_ITEM).where(_ITEM.c.id.in_(doomed))))
        return PruneReport(before, items, removed_bands + bands, removed_deliveries, kept, dry_run)

    def _old_deliveries(self, before: datetime) -> list[int]:
        """Sent rows, and dead rows already reported, created before `before`; a row
        folded into a summary only with it."""
        d = _DELIVERY
        summary = aliased(d)
        finished = or_(d.c.status == SENT, and_(d.c.status == DEAD, d.c.reported.is_(True)))
        summary_stays = exists().where(
            summary.c.id == d.c.folded_into,
            not_(
                and_(
                    summary.c.created_at < before,
                    or_(
                        summary.c.status == SENT,
                        and_(summary.c.status == DEAD, summary.c.reported.is_(True)),
                    ),
                )
            ),
        )
        with self._read() as session:
            rows = session.connection().execute(
                select(d.c.id)
                .where(d.c.created_at < before, finished, not_(summary_stays))
                .order_by(d.c.id)
            )
            return [row[0] for row in rows]

    def _protected(self, before: datetime, *, gone: set[int]) -> set[int]:
        """The ids of items seen before `before` that stay (module docstring); `gone`:
        the deliveries this prune removes, which protect nothing."""
        i = _ITEM
        old = i.c.seen_at < before
        with self._read() as session:
            db = session.connection()
            keep: set[int] = set()
            keep.update(_ids(db, select(i.c.id).where(old, i.c.event_id.is_not(None))))
            keep.update(_ids(db, select(_EVENT.c.first_item_id)))
            for delivery_id, item_id in db.execute(
                select(_DELIVERY.c.id, _DELIVERY.c.item_id).where(_DELIVERY.c.item_id.is_not(None))
            ):
                if delivery_id not in gone:
                    keep.add(item_id)
            latest = (
                select(i.c.feed_id, func.max(i.c.seen_at).label("seen_at"))
                .group_by(i.c.feed_id)
                .subquery()
            )
            keep.update(
                _ids(
                    db,
                    select(i.c.id).join(
                        latest,
                        and_(i.c.feed_id == latest.c.feed_id, i.c.seen_at == latest.c.seen_at),
                    ),
                )
            )
            referrer = aliased(i)
            for name in _REFERENCES:
                pointer = referrer.c[name]
                keep.update(
                    _ids(
                        db,
                        select(pointer)
                        .where(referrer.c.seen_at >= before, pointer.is_not(None))
                        .distinct(),
                    )
                )
            # What the kept items point at stays too (references go to earlier items).
            frontier = set(keep)
            while frontier:
                found: set[int] = set()
                for chunk in _chunks(sorted(frontier)):
                    for row in db.execute(
                        select(*(i.c[name] for name in _REFERENCES)).where(i.c.id.in_(chunk))
                    ):
                        found.update(ref for ref in row if ref is not None)
                frontier = found - keep
                keep |= frontier
        return keep

    def _delete_ids(self, table: Table, ids: Sequence[int], dry_run: bool) -> int:
        if dry_run:
            return len(ids)
        removed = 0
        for chunk in _chunks(ids):
            with self._write() as session:
                db = session.connection()
                removed += rowcount(db.execute(delete(table).where(table.c.id.in_(chunk))))
        return removed

    def _prune_old_bands(self, before: datetime, dry_run: bool) -> int:
        """Bands of items seen before `before` (or gone), oldest items first.

        Walked through the bands' item index, a batch of banded items at a time, each
        batch's items read by id, until a batch whose items are all inside the window:
        the work is the bands that go plus a batch or two, however many items the
        database holds (bands of items older than the window went the day before, so
        the walk starts near the window's edge). No band of an item inside the window
        goes. Ids follow arrival order, except that on PostgreSQL two writers can
        commit a few seconds apart in the other order (an id is drawn at insert, the
        time is the ingest's clock): a late old item among recent ones does not stop
        the walk, and one beyond the batch that stops it keeps its bands until the next
        prune, which costs nothing (ingest checks the window on the items it finds)."""
        removed = 0
        cursor = -1
        while True:
            with self._read() as session:
                db = session.connection()
                banded = _ids(
                    db,
                    select(_BAND.c.item_id)
                    .where(_BAND.c.item_id > cursor)
                    .distinct()
                    .order_by(_BAND.c.item_id)
                    .limit(BATCH),
                )
                recent = set(
                    _ids(
                        db,
                        select(_ITEM.c.id).where(_ITEM.c.id.in_(banded), _ITEM.c.seen_at >= before),
                    )
                )
            old = [i for i in banded if i not in recent]
            if old:
                removed += self._delete_bands(old, dry_run)
            if not old or len(banded) < BATCH:
                return removed
            cursor = banded[-1]

    def _delete_bands(self, items: Sequence[int], dry_run: bool) -> int:
        """The bands of `items`, deleted (or counted) in one transaction."""
        where = _BAND.c.item_id.in_(items)
        if dry_run:
            with self._read() as session:
                return int(
                    session.connection().execute(select(func.count()).where(where)).scalar_one()
                )
        with self._write() as session:
            return rowcount(session.connection().execute(delete(_BAND).where(where)))


def _old_items(db: Connection, before: datetime, cursor: int | None) -> list[int]:
    """The next batch of items seen before `before`, newest first, below `cursor`."""
    query = select(_ITEM.c.id).where(_ITEM.c.seen_at < before)
    if cursor is not None:
        query = query.where(_ITEM.c.id < cursor)
    return _ids(db, query.order_by(_ITEM.c.id.desc()).limit(BATCH))


def _still_needed(db: Connection, batch: Sequence[int]) -> set[int]:
    """Of `batch`, what a concurrent ingest attached since the plan: an event, a
    delivery, or a version or cluster member outside the batch (indexed lookups)."""
    i = _ITEM
    needed = set(_ids(db, select(i.c.id).where(i.c.id.in_(batch), i.c.event_id.is_not(None))))
    needed.update(_ids(db, select(_EVENT.c.first_item_id).where(_EVENT.c.first_item_id.in_(batch))))
    needed.update(_ids(db, select(_DELIVERY.c.item_id).where(_DELIVERY.c.item_id.in_(batch))))
    for name in ("version_of", "cluster_id"):
        pointer = i.c[name]
        needed.update(
            _ids(db, select(pointer).where(pointer.in_(batch), i.c.id.not_in(batch)).distinct())
        )
    return needed


def _count_bands(db: Connection, batch: Sequence[int], *, since: datetime) -> int:
    """Bands of `batch` inside the window (those before it are counted on their own)."""
    query = (
        select(func.count())
        .select_from(_BAND.join(_ITEM, _ITEM.c.id == _BAND.c.item_id))
        .where(_BAND.c.item_id.in_(batch), _ITEM.c.seen_at >= since)
    )
    return int(db.execute(query).scalar_one())


def _ids(db: Connection, query: Any) -> list[int]:
    return [int(row[0]) for row in db.execute(query) if row[0] is not None]


def _chunks(values: Sequence[int], size: int = BATCH) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
