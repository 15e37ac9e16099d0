"""The outbox: one delivery row per (message, target), drained by the notify stage.

Rows are claimed with a lease (`claim_due`, so a crashed sender's row is retried once
the lease ends; `FOR UPDATE SKIP LOCKED` on PostgreSQL) and then finished, deferred
(quiet hours, a cap) or folded into a summary. Alerts and updates are queued by the
ingest (`monitor.store.items`), notices here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from monitor.store.engine import Database, aware, rowcount, utc
from monitor.store.tables import Delivery, Event
from monitor.store.views import DEAD, FAILED, FOLDED, PENDING, SENT, Claim, Notice, OutboxRow


class OutboxStore(Database):
    """Deliveries: queued, claimed, sent, retried, folded, dead."""

    def claim_due(
        self,
        now: datetime,
        lease: timedelta,
        *,
        targets: Collection[str],
        limit: int = 100,
        ignore_backoff: bool = False,
        exclude: Collection[int] = (),
        kinds: Collection[str] | None = None,
    ) -> list[Claim]:
        """Lease the deliveries to `targets` that are due, counting the attempt first.

        `ignore_backoff` also takes rows waiting after a failure, never rows held by
        quiet hours or a rate cap. Rows addressed to a target no longer configured are
        left pending, not lost.
        """
        with self._write() as session:
            statement = (
                select(Delivery)
                .where(
                    col(Delivery.status).in_([PENDING, FAILED]),
                    col(Delivery.target).in_(targets),
                    or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) <= now),
                )
                .order_by(col(Delivery.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if ignore_backoff:
                statement = statement.where(
                    or_(col(Delivery.next_attempt_at) <= now, col(Delivery.hold).is_(None))
                )
            else:
                statement = statement.where(col(Delivery.next_attempt_at) <= now)
            if exclude:
                statement = statement.where(col(Delivery.id).not_in(exclude))
            if kinds is not None:
                statement = statement.where(col(Delivery.kind).in_(kinds))
            rows = session.exec(statement).all()
            claims = []
            for row in rows:
                assert row.id is not None
                row.lease_until = now + lease
                row.attempts += 1
                row.last_attempt_at = now
                row.hold = None
                session.add(row)
                claims.append(
                    Claim(
                        id=row.id,
                        kind=row.kind,
                        target=row.target,
                        event_id=row.event_id,
                        attempts=row.attempts,
                        created_at=row.created_at,
                        title=row.title,
                        body=row.body,
                        story=row.story,
                        since=row.since,
                        until=row.until,
                        item_id=row.item_id,
                    )
                )
        return claims

    def finish(
        self,
        claim: Claim,
        *,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> str:
        """Record a claimed send's outcome: sent, failed (retry at `retry_at`), or dead."""
        if error is None:
            values: dict[str, Any] = {"status": SENT, "sent_at": now, "last_error": None}
        elif retry_at is None:
            values = {"status": DEAD, "last_error": error[:2000]}
        else:
            values = {"status": FAILED, "last_error": error[:2000], "next_attempt_at": retry_at}
        values["lease_until"] = None
        with self._write() as session:
            done = session.execute(
                update(Delivery)
                .where(col(Delivery.id) == claim.id, col(Delivery.attempts) == claim.attempts)
                .values(**values)
            )
            final = values["status"] in (SENT, DEAD)
            if claim.kind == "summary" and final and rowcount(done):
                carried = {"status": values["status"], "last_error": values["last_error"]}
                if values["status"] == SENT:
                    carried["sent_at"] = now
                session.execute(
                    update(Delivery)
                    .where(
                        col(Delivery.folded_into) == claim.id,
                        col(Delivery.status).in_([FOLDED, DEAD]),
                    )
                    .values(**carried)
                )
        return str(values["status"])

    def defer(self, claim: Claim, *, until: datetime, hold: str) -> None:
        """Put a claimed row back untried, to wait until `until` (quiet hours, a cap)."""
        with self._write() as session:
            session.execute(
                update(Delivery)
                .where(col(Delivery.id) == claim.id, col(Delivery.attempts) == claim.attempts)
                .values(
                    attempts=Delivery.attempts - 1,
                    lease_until=None,
                    next_attempt_at=until,
                    hold=hold,
                )
            )

    def fold(self, claim: Claim, *, now: datetime, send_at: datetime) -> int:
        """Carry a claimed alert in its target's open summary (made if none); its id."""
        with self._write() as session:
            open_summary = session.exec(
                select(Delivery)
                .where(
                    Delivery.kind == "summary",
                    Delivery.target == claim.target,
                    col(Delivery.status).in_([PENDING, FAILED]),
                    or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) <= now),
                )
                .order_by(col(Delivery.id))
                .limit(1)
                .with_for_update()
            ).first()
            if open_summary is None:
                open_summary = Delivery(
                    kind="summary",
                    dedup_key=f"summary:{claim.id}",
                    target=claim.target,
                    created_at=now,
                    next_attempt_at=send_at,
                    hold="cap",
                )
                session.add(open_summary)
                session.flush()
            assert open_summary.id is not None
            session.execute(
                update(Delivery)
                .where(col(Delivery.id) == claim.id, col(Delivery.attempts) == claim.attempts)
                .values(
                    status=FOLDED,
                    folded_into=open_summary.id,
                    attempts=Delivery.attempts - 1,
                    lease_until=None,
                )
            )
            return open_summary.id

    def folded(self, summary_id: int) -> list[tuple[int | None, int | None]]:
        """What a summary carries, oldest first: (event id, None) for an alert, (None,
        item id) for an update."""
        with self._read() as session:
            rows = session.exec(
                select(Delivery.event_id, Delivery.item_id)
                .where(Delivery.folded_into == summary_id)
                .order_by(col(Delivery.id))
            ).all()
        return [(event_id, item_id) for event_id, item_id in rows]

    def sent_times(self, target: str, since: datetime) -> list[datetime]:
        """When messages to `target` were sent after `since`, oldest first (one per send)."""
        with self._read() as session:
            rows = session.exec(
                select(Delivery.sent_at)
                .where(
                    Delivery.target == target,
                    Delivery.status == SENT,
                    col(Delivery.sent_at) > since,
                    col(Delivery.folded_into).is_(None),
                )
                .order_by(col(Delivery.sent_at))
            ).all()
        return [r for r in rows if r is not None]

    def enqueue(
        self,
        notices: Sequence[Notice],
        *,
        now: datetime,
        story: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Queue each notice for its targets, once per (key, target); how many were new."""
        with self._write() as session:
            return enqueue_notices(
                self, session, notices, now, story=story, since=since, until=until
            )

    def has_delivery(self, dedup_key: str, target: str) -> bool:
        with self._read() as session:
            found = session.exec(
                select(Delivery.id).where(
                    Delivery.dedup_key == dedup_key, Delivery.target == target
                )
            ).first()
        return found is not None

    # -- dead letters ---------------------------------------------------------

    def unreported_dead(self) -> list[OutboxRow]:
        """Dead deliveries nobody has been warned about yet, oldest first, each with its
        event's story, milestone and (for an alert, which keeps none) title."""
        with self._read() as session:
            rows = session.exec(
                select(Delivery, Event)
                .join(Event, col(Delivery.event_id) == col(Event.id), isouter=True)
                .where(Delivery.status == DEAD, col(Delivery.reported).is_(False))
                .order_by(col(Delivery.id))
            ).all()
        return [_outbox_row(row, event) for row, event in rows]

    def report_dead(self, ids: Collection[int], warning: Notice | None, *, now: datetime) -> None:
        """Mark dead rows as reported and queue the one warning about them, atomically."""
        with self._write() as session:
            session.execute(update(Delivery).where(col(Delivery.id).in_(ids)).values(reported=True))
            if warning is not None:
                enqueue_notices(self, session, [warning], now)

    def retry_dead(self, targets: Collection[str], *, now: datetime) -> int:
        """Give dead deliveries to `targets` one more chance, due now; how many."""
        dead = (col(Delivery.status) == DEAD, col(Delivery.target).in_(targets))
        with self._write() as session:
            done = session.execute(
                update(Delivery)
                .where(*dead, col(Delivery.folded_into).is_(None))
                .values(status=FAILED, next_attempt_at=now, hold=None, reported=False)
            )
            # Alerts carried by a dead summary ride again with it.
            session.execute(
                update(Delivery)
                .where(*dead, col(Delivery.folded_into).is_not(None))
                .values(status=FOLDED, reported=True)
            )
        return rowcount(done)

    def readdress(self, labels: Mapping[str, str]) -> int:
        """Address the deliveries stored for each former target label to its new label."""
        with self._read() as session:
            found = session.exec(
                select(Delivery.id).where(col(Delivery.target).in_(list(labels))).limit(1)
            ).first()
        if found is None:  # the usual case: no write, so no wait for the write lock
            return 0
        moved = 0
        with self._write() as session:
            for former, label in labels.items():
                done = session.execute(
                    update(Delivery).where(col(Delivery.target) == former).values(target=label)
                )
                moved += rowcount(done)
        return moved

    def outbox(self, statuses: Collection[str]) -> list[OutboxRow]:
        """Deliveries in `statuses`, oldest first (for status and warnings)."""
        with self._read() as session:
            rows = session.exec(
                select(Delivery)
                .where(col(Delivery.status).in_(statuses))
                .order_by(col(Delivery.id))
            ).all()
        return [_outbox_row(r) for r in rows]

    def last_digest_until(self, story: str, target: str) -> datetime | None:
        """The end of the period the latest digest of `story` to `target` covered."""
        with self._read() as session:
            value = session.exec(
                select(func.max(Delivery.until)).where(
                    Delivery.kind == "digest", Delivery.story == story, Delivery.target == target
                )
            ).one()
        return aware(value)

    def undelivered(self, targets: Collection[str], now: datetime | None = None) -> int:
        """How many deliveries to `targets` are still pending or failed.

        With `now`, rows held by quiet hours or a rate cap past `now` are not counted:
        they wait by rule, not because a send failed.
        """
        with self._read() as session:
            statement = select(func.count()).where(
                col(Delivery.status).in_([PENDING, FAILED]), col(Delivery.target).in_(targets)
            )
            if now is not None:
                statement = statement.where(
                    or_(col(Delivery.hold).is_(None), col(Delivery.next_attempt_at) <= now)
                )
            return int(session.exec(statement).one())

    def delivery_table(self) -> dict[str, dict[str, int]]:
        """How many deliveries each target has in each status."""
        with self._read() as session:
            rows = session.exec(
                select(Delivery.target, Delivery.status, func.count()).group_by(
                    col(Delivery.target), col(Delivery.status)
                )
            ).all()
        table: dict[str, dict[str, int]] = {}
        for target, status, count in rows:
            table.setdefault(target, {})[status] = count
        return table

    def delivery_counts(self) -> dict[str, int]:
        """How many deliveries are in each status."""
        with self._read() as session:
            rows = session.exec(
                select(Delivery.status, func.count()).group_by(col(Delivery.status))
            ).all()
        return dict(rows)


def enqueue_notices(
    db: Database,
    session: Session,
    notices: Sequence[Notice],
    now: datetime,
    **extra: Any,
) -> int:
    """Queue each notice for its targets, once per (key, target), in `session`; how many
    were new."""
    rows = [
        {
            "kind": notice.kind,
            "dedup_key": notice.dedup_key,
            "target": target,
            "status": PENDING,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
            "title": notice.title,
            "body": notice.body,
            "reported": False,
            **extra,
        }
        for notice in notices
        for target in notice.targets
    ]
    if not rows:
        return 0
    statement = (
        db._insert_statement(Delivery)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["dedup_key", "target"])
        .returning(col(Delivery.id))
    )
    return len(session.execute(statement).all())


def _outbox_row(row: Delivery, event: Event | None = None) -> OutboxRow:
    assert row.id is not None
    return OutboxRow(
        id=row.id,
        kind=row.kind,
        dedup_key=row.dedup_key,
        target=row.target,
        status=row.status,
        attempts=row.attempts,
        created_at=utc(row.created_at),
        next_attempt_at=utc(row.next_attempt_at),
        hold=row.hold,
        last_error=row.last_error,
        title=row.title or (event.title if event else None),
        event_id=row.event_id,
        confirm=row.confirm,
        story=event.story if event else None,
        milestone=event.milestone if event else None,
    )
