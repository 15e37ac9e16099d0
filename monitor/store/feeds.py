"""Feeds: one row per configured feed, what its fetches taught us, and its health."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, update
from sqlmodel import Session, col, select

from monitor.core.errors import StoreError
from monitor.store.engine import Database, rowcount, utc
from monitor.store.outbox import enqueue_notices
from monitor.store.tables import FEED_TABLE as _FEED
from monitor.store.tables import Feed, Item
from monitor.store.views import FeedView, Notice

UPDATE_FEED_BY_NAME = update(_FEED).where(_FEED.c.name == bindparam("feed_name"))
_NAMES_CHUNK = 400
"""Feed names per statement: well under any database's limit on parameters."""


class FeedStore(Database):
    """The feeds' rows: configured, checked, failed, judged healthy or not."""

    def sync_feeds(
        self, feeds: Sequence[tuple[str, str]], *, tiers: Mapping[str, str] | None = None
    ) -> None:
        """Make sure every configured (name, url) has a row; a changed URL starts afresh.
        With `tiers` (name → tier), each named feed's tier is set as configured.

        Instances sharing a database sync the same config at once (a fleet started or
        reloaded together): a new feed is inserted with ON CONFLICT DO NOTHING, so the
        one that loses the race finds the row made rather than failing, and a changed
        URL is set to the same values by whichever comes second."""
        tiers = tiers or {}
        with self._write() as session:
            existing = {f.name: f for f in session.exec(select(Feed)).all()}
            new = []
            for name, url in feeds:
                row = existing.get(name)
                tier = tiers.get(name)
                if row is None:
                    new.append({"name": name, "url": url, "tier": tier})
                    continue
                changed = False
                if row.url != url:
                    row.url, row.moved_to, row.gone = url, None, False
                    row.etag = row.last_modified = row.content_hash = None
                    row.baseline_done = False
                    row.next_check = None
                    changed = True
                if tier is not None and row.tier != tier:
                    row.tier, changed = tier, True
                if changed:
                    session.add(row)
            if new:
                insert = self._insert_statement(_FEED).on_conflict_do_nothing(
                    index_elements=[_FEED.c.name]
                )
                session.connection().execute(insert, new)

    # -- the schedule ---------------------------------------------------------

    def claim_feeds(
        self, leases: Mapping[str, timedelta], *, now: datetime, owner: str, limit: int
    ) -> list[FeedView]:
        """Lease up to `limit` of the feeds named in `leases` whose check is due, the
        longest overdue (and the never checked) first; each for its own lease.

        A feed is due when its `next_check` has come (or it has none) and no one holds
        it: instances sharing the database never claim one feed at once (`FOR UPDATE
        SKIP LOCKED` on PostgreSQL, so they do not wait on each other; SQLite's write
        lock serialises claims). The check's outcome (`record_unchanged`,
        `record_failure`, the ingest) writes the next time and ends the lease; a lease
        its holder never ended (the process died) lapses at its end. A feed that
        answered 410 Gone is never due."""
        if not leases or limit <= 0:
            return []
        with self._write() as session:
            rows = session.exec(
                select(Feed)
                .where(
                    col(Feed.name).in_(sorted(leases)),
                    col(Feed.gone).is_(False),
                    or_(col(Feed.next_check).is_(None), col(Feed.next_check) <= now),
                    or_(col(Feed.lease_until).is_(None), col(Feed.lease_until) <= now),
                )
                .order_by(col(Feed.next_check).asc().nulls_first(), col(Feed.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                row.lease_until = now + leases[row.name]
                row.lease_owner = owner
                session.add(row)
            return [feed_view(row) for row in rows]

    def next_due(self, names: Collection[str], now: datetime) -> datetime | None:
        """When the next of the named feeds that no one holds comes due (`now` for one
        never checked); None when none will."""
        if not names:
            return None
        with self._read() as session:
            never, soonest = session.execute(
                select(
                    func.count(col(Feed.id)).filter(col(Feed.next_check).is_(None)),
                    func.min(col(Feed.next_check)),
                ).where(
                    col(Feed.name).in_(sorted(names)),
                    col(Feed.gone).is_(False),
                    or_(col(Feed.lease_until).is_(None), col(Feed.lease_until) <= now),
                )
            ).one()
        if never:
            return now
        return utc(soonest) if soonest is not None else None

    def release_feeds(self, owner: str) -> int:
        """End the leases `owner` still holds (its checks were abandoned at shutdown):
        those feeds are due again at once for any instance. How many were released."""
        with self._write() as session:
            done = session.execute(
                update(Feed)
                .where(col(Feed.lease_owner) == owner)
                .values(lease_until=None, lease_owner=None)
            )
            return rowcount(done)

    def reschedule(self, intervals: Mapping[str, timedelta]) -> int:
        """Bring forward the next check of feeds whose interval was shortened, to their
        last check plus the new interval (a feed in backoff keeps its retry time); how
        many moved. A longer interval applies from the next check on."""
        moved = 0
        with self._write() as session:
            for chunk in _chunks(sorted(intervals)):
                rows = session.exec(
                    select(Feed).where(
                        col(Feed.name).in_(chunk),
                        col(Feed.consecutive_failures) == 0,
                        col(Feed.last_checked).is_not(None),
                        col(Feed.next_check).is_not(None),
                    )
                ).all()
                for row in rows:
                    if row.last_checked is None or row.next_check is None:
                        continue
                    sooner = utc(row.last_checked) + intervals[row.name]
                    if sooner < utc(row.next_check):
                        row.next_check = sooner
                        session.add(row)
                        moved += 1
        return moved

    def schedule_counts(self, names: Collection[str], now: datetime) -> dict[str, float]:
        """The schedule of the named feeds at `now`, as the metrics show it: how many are
        `due` (unclaimed and their time has come), `checking` (leased), `waiting`, in
        `backoff` and `gone`; and `lag`, the seconds the longest-overdue one has waited."""
        counts: dict[str, float] = dict.fromkeys(
            ("due", "checking", "waiting", "backoff", "gone", "lag"), 0
        )
        with self._read() as session:
            for chunk in _chunks(sorted(names)):
                rows = session.execute(
                    select(
                        Feed.gone, Feed.consecutive_failures, Feed.next_check, Feed.lease_until
                    ).where(col(Feed.name).in_(chunk))
                ).all()
                for gone, failures, next_check, lease_until in rows:
                    due_at = utc(next_check) if next_check is not None else None
                    if gone:
                        counts["gone"] += 1
                    elif lease_until is not None and utc(lease_until) > now:
                        counts["checking"] += 1
                    elif due_at is None or due_at <= now:
                        counts["due"] += 1
                        waited = (now - due_at).total_seconds() if due_at else 0.0
                        counts["lag"] = max(counts["lag"], waited)
                    elif failures:
                        counts["backoff"] += 1
                    else:
                        counts["waiting"] += 1
        return counts

    def feed(self, name: str) -> FeedView:
        with self._read() as session:
            row = session.exec(select(Feed).where(Feed.name == name)).one_or_none()
            if row is None:
                raise StoreError(f"unknown feed {name!r}: call sync_feeds first")
            return feed_view(row)

    def feeds(self, names: Collection[str] | None = None) -> list[FeedView]:
        """Every feed, or only the named ones, by name."""
        with self._read() as session:
            if names is None:
                rows = list(session.exec(select(Feed).order_by(col(Feed.name))).all())
            else:
                rows = []
                for chunk in _chunks(sorted(names)):
                    rows += session.exec(select(Feed).where(col(Feed.name).in_(chunk))).all()
                rows.sort(key=lambda row: row.name)
            return [feed_view(row) for row in rows]

    def record_unchanged(
        self,
        name: str,
        now: datetime,
        next_check: datetime,
        moved_to: str | None = None,
        *,
        status: int = 304,
        validators: tuple[str | None, str | None] | None = None,
    ) -> None:
        """A 304 or an identical body: the feed is healthy and has nothing new."""
        values: dict[str, Any] = {**ok_values(now, next_check), "last_status": status}
        if moved_to:
            values["moved_to"] = moved_to
        if validators is not None:
            values["etag"], values["last_modified"] = validators
        with self._write() as session:
            done = session.connection().execute(UPDATE_FEED_BY_NAME, {"feed_name": name, **values})
            if done.rowcount == 0:
                raise StoreError(f"unknown feed {name!r}: call sync_feeds first")

    def record_failure(
        self,
        name: str,
        error: str,
        status: int | None,
        *,
        now: datetime,
        next_check: datetime,
        gone: bool = False,
    ) -> None:
        """One more failure of this feed; it will be tried again at `next_check`."""
        with self._write() as session:
            row = _feed_row(session, name)
            row.last_checked = now
            row.last_status = status
            row.last_error = error[:1000]
            row.consecutive_failures += 1
            row.failing_since = row.failing_since or now
            row.next_check = next_check
            row.gone = row.gone or gone
            row.lease_until = row.lease_owner = None
            session.add(row)

    # -- health ---------------------------------------------------------------

    def arrivals(self, name: str, since: datetime, limit: int = 200) -> list[datetime]:
        """When fetches of the feed brought new items (distinct times, oldest first; a
        new version of an item is no new item)."""
        with self._read() as session:
            rows = session.exec(
                select(Item.seen_at)
                .join(Feed, col(Feed.id) == col(Item.feed_id))
                .where(
                    Feed.name == name,
                    col(Item.seen_at) >= since,
                    col(Item.version_of).is_(None),
                )
                .group_by(col(Item.seen_at))
                .order_by(col(Item.seen_at).desc())
                .limit(limit)
            ).all()
        return sorted(utc(r) for r in rows)

    def arrivals_by_feed(
        self, names: Collection[str], since: datetime, limit: int = 200
    ) -> dict[str, list[datetime]]:
        """`arrivals` for many feeds in one query per few hundred feeds: feed name ->
        times, oldest first. Only the named feeds' items are read, so checking one feed
        costs the same however many other feeds have history."""
        found: dict[str, list[datetime]] = {name: [] for name in names}
        with self._read() as session:
            for chunk in _chunks(sorted(found)):
                rows = session.execute(
                    select(Feed.name, Item.seen_at)
                    .join(Feed, col(Feed.id) == col(Item.feed_id))
                    .where(
                        col(Feed.name).in_(chunk),
                        col(Item.seen_at) >= since,
                        col(Item.version_of).is_(None),
                    )
                    .group_by(col(Feed.name), col(Item.seen_at))
                ).all()
                for name, seen_at in rows:
                    found[name].append(utc(seen_at))
        return {name: sorted(times)[-limit:] for name, times in found.items()}

    def set_health(
        self,
        name: str,
        state: str | None,
        *,
        was: str | None,
        now: datetime,
        notices: Sequence[Notice],
    ) -> bool:
        """Move a feed's health from `was` to `state` and queue the notices about it,
        atomically; False (and nothing queued) when its health is no longer `was`:
        another instance of a fleet judged the same change first, and told it."""
        same = col(Feed.health).is_(None) if was is None else col(Feed.health) == was
        with self._write() as session:
            done = session.execute(
                update(Feed)
                .where(col(Feed.name) == name, same)
                .values(health=state, health_since=now if state else None)
            )
            if not rowcount(done):
                return False
            enqueue_notices(self, session, notices, now)
            return True


def feed_view(row: Feed) -> FeedView:
    """The row's values, detached (`FeedView` names the columns the service reads)."""
    return FeedView(**{name: getattr(row, name) for name in _VIEW_FIELDS})


_VIEW_FIELDS = tuple(f.name for f in dataclasses.fields(FeedView))


def ok_values(now: datetime, next_check: datetime) -> dict[str, Any]:
    """A successful check: the failure count, backoff and any gone mark are cleared."""
    return {
        "last_checked": now,
        "last_ok": now,
        "gone": False,
        "last_error": None,
        "consecutive_failures": 0,
        "failing_since": None,
        "next_check": next_check,
        "lease_until": None,
        "lease_owner": None,
    }


def _feed_row(session: Session, name: str) -> Feed:
    row = session.exec(select(Feed).where(Feed.name == name)).one_or_none()
    if row is None:
        raise StoreError(f"unknown feed {name!r}: call sync_feeds first")
    return row


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _NAMES_CHUNK):
        yield values[start : start + _NAMES_CHUNK]
