"""The store stage: the only SQL in the service.

`ingest` writes a fetch's new items, the events they create and the outbox rows for
those events in one transaction, so a crash never leaves an event without its
deliveries or a delivery without its event. The outbox is drained through `claim_due`
(a lease per row, so a crashed sender's row is retried once the lease ends) and
`finish`.

SQLite is the embedded default (WAL, busy timeout, `BEGIN IMMEDIATE` for writes);
the same code runs on PostgreSQL, where claims use `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, col, create_engine, select

from monitor import cluster
from monitor.entry import Entry
from monitor.errors import StoreError
from monitor.match import Verdict
from monitor.tables import Delivery, Event, Feed, Item, Migration

Router = Callable[[str, str], Sequence[str]]
"""(story, milestone) → the labels of the targets that receive its alert."""

PENDING, FAILED, SENT, DEAD = "pending", "failed", "sent", "dead"
_SQLITE_BUSY_MS = 30_000
_CLUSTER_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Classified:
    """An entry with the verdict the match stage gave it."""

    entry: Entry
    verdict: Verdict


@dataclass(slots=True)
class IngestResult:
    """What one `ingest` call did."""

    new: int = 0
    duplicates: int = 0
    relevant: int = 0
    events: list[tuple[str, str]] = field(default_factory=list)
    attached: int = 0
    deliveries: int = 0


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this process has leased and must now send and `finish`."""

    id: int
    kind: str
    target: str
    event_id: int | None
    attempts: int
    created_at: datetime
    title: str | None
    body: str | None


@dataclass(frozen=True, slots=True)
class SourceView:
    url: str | None
    title: str
    outlet: str | None
    feed: str
    lang: str | None
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryView:
    target: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventView:
    """An event with its reports (first report first) and its deliveries."""

    id: int
    story: str
    milestone: str
    title: str
    url: str | None
    outlet: str | None
    created_at: datetime
    silent: bool
    sources: list[SourceView]
    deliveries: list[DeliveryView]
    terms: dict[str, list[str]] = field(default_factory=dict)
    """The terms that matched in the first report, by rule."""

    @property
    def languages(self) -> list[str]:
        """The distinct languages of the reports, in order of first appearance."""
        return list(dict.fromkeys(s.lang.split("-")[0] for s in self.sources if s.lang))

    @property
    def outlets(self) -> list[str]:
        """The distinct outlets (or feeds, when the outlet is unknown) that reported it."""
        return list(dict.fromkeys(s.outlet or s.feed for s in self.sources))


@dataclass(frozen=True, slots=True)
class LatestItem:
    """The item a feed gave most recently."""

    title: str
    url: str | None
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A delivery as `monitor status` shows it, with its event's title."""

    id: int
    kind: str
    target: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None
    title: str | None
    story: str | None
    milestone: str | None


class Store:
    """Everything monitor remembers, behind one small API."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer = engine.execution_options(monitor_begin="BEGIN IMMEDIATE")
        # SQLite has one writer; queueing writers here beats spinning on busy_timeout.
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to `url`, apply pending migrations, and return the store."""
        try:
            engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
            if engine.dialect.name == "sqlite":
                _configure_sqlite(engine)
            store = cls(engine)
            store.migrate()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database: {_short(exc)}") from None
        except OSError as exc:
            raise StoreError(f"cannot open database: {exc}") from None
        return store

    def close(self) -> None:
        self.engine.dispose()

    # -- sessions -------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._write_lock, Session(self._writer, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        """Apply the named migrations this database has not seen yet, in order."""
        SQLModel.metadata.create_all(self.engine, tables=[SQLModel.metadata.tables["migration"]])
        with self._write() as session:
            done = set(session.exec(select(Migration.name)).all())
            for name, step in MIGRATIONS:
                if name not in done:
                    step(session)
                    session.add(Migration(name=name, applied_at=datetime.now(UTC)))

    # -- feeds ----------------------------------------------------------------

    def sync_feeds(self, feeds: Sequence[tuple[str, str]]) -> None:
        """Make sure every configured (name, url) has a row; a changed URL starts afresh."""
        with self._write() as session:
            existing = {f.name: f for f in session.exec(select(Feed)).all()}
            for name, url in feeds:
                row = existing.get(name)
                if row is None:
                    session.add(Feed(name=name, url=url))
                elif row.url != url:
                    row.url, row.moved_to, row.gone = url, None, False
                    row.etag = row.last_modified = row.content_hash = None
                    row.baseline_done = False
                    row.next_check = None
                    session.add(row)

    def feed(self, name: str) -> Feed:
        with self._read() as session:
            row = session.exec(select(Feed).where(Feed.name == name)).one_or_none()
        if row is None:
            raise StoreError(f"unknown feed {name!r}: call sync_feeds first")
        return row

    def feeds(self) -> list[Feed]:
        with self._read() as session:
            return list(session.exec(select(Feed).order_by(col(Feed.name))).all())

    def record_unchanged(
        self, name: str, now: datetime, next_check: datetime, moved_to: str | None = None
    ) -> None:
        """A 304 or an identical body: the feed is healthy and has nothing new."""
        with self._write() as session:
            row = _feed_row(session, name)
            _mark_ok(row, now, next_check)
            row.last_status = 304
            row.moved_to = moved_to or row.moved_to
            session.add(row)

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
            session.add(row)

    # -- ingest ---------------------------------------------------------------

    def ingest(
        self,
        name: str,
        items: Sequence[Classified],
        *,
        now: datetime,
        next_check: datetime,
        alert_after: datetime,
        route: Router,
        validators: tuple[str | None, str | None] = (None, None),
        content_hash: str | None = None,
        moved_to: str | None = None,
    ) -> IngestResult:
        """Record a fetched feed's entries, their events and outbox rows, atomically.

        Entries already stored for this feed are skipped (identity level 1). A new
        entry whose canonical URL is already stored is a copy (level 2) and changes
        nothing else. Entries from a feed's first fetch, or published before
        `alert_after`, are recorded silently: they may create or join events but
        never alert.
        """
        result = IngestResult()
        with self._write() as session:
            feed = _feed_row(session, name)
            baseline = not feed.baseline_done
            new_ids = self._insert_items(session, feed, items, now)
            fresh = [c for c in items if c.entry.key in new_ids]
            result.new = len(fresh)
            copies = self._copies(session, fresh, new_ids)
            result.duplicates = len(copies)
            for classified in fresh:
                item_id = new_ids[classified.entry.key]
                if item_id in copies or not classified.verdict.relevant:
                    continue
                result.relevant += 1
                silent = baseline or _published_before(classified.entry, alert_after)
                self._place(
                    session, classified, item_id, silent=silent, now=now, route=route, result=result
                )
            _mark_ok(feed, now, next_check)
            feed.last_status = 200
            feed.etag, feed.last_modified = validators
            feed.content_hash = content_hash
            feed.moved_to = moved_to or feed.moved_to
            feed.items_seen += result.new
            feed.baseline_done = True
            if result.new:
                feed.last_item_at = now
            session.add(feed)
        return result

    def _insert_items(
        self, session: Session, feed: Feed, items: Sequence[Classified], now: datetime
    ) -> dict[str, int]:
        rows: dict[str, dict[str, Any]] = {}
        for classified in items:
            entry, verdict = classified.entry, classified.verdict
            if entry.key in rows:
                continue
            rows[entry.key] = {
                "feed_id": feed.id,
                "key": entry.key,
                "url": entry.url,
                "title": entry.title,
                "summary": entry.summary,
                "outlet": entry.outlet,
                "lang": entry.lang,
                "published": entry.published,
                "seen_at": now,
                "story": verdict.story,
                "milestone": verdict.milestone,
                "terms": json.dumps(verdict.terms, ensure_ascii=False) if verdict.story else None,
                "fingerprint": cluster.to_signed(cluster.fingerprint(entry.text))
                if verdict.relevant
                else None,
                "silent": False,
            }
        new: dict[str, int] = {}
        values = list(rows.values())
        for start in range(0, len(values), 500):
            statement = (
                self._insert_statement(Item)
                .values(values[start : start + 500])
                .on_conflict_do_nothing(index_elements=["feed_id", "key"])
                .returning(col(Item.id), col(Item.key))
            )
            for item_id, key in session.execute(statement):
                new[key] = item_id
        return new

    def _insert_statement(self, table: type[SQLModel]) -> Any:
        if self._sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)

    def _copies(
        self, session: Session, fresh: Sequence[Classified], new_ids: dict[str, int]
    ) -> set[int]:
        """Ids of new items whose canonical URL was already stored (identity level 2)."""
        urls = {c.entry.url for c in fresh if c.entry.url}
        if not urls:
            return set()
        first_by_url: dict[str, int] = {}
        statement = (
            select(Item.url, func.min(Item.id))
            .where(col(Item.url).in_(urls), col(Item.duplicate_of).is_(None))
            .group_by(col(Item.url))
        )
        for url, first in session.exec(statement).all():
            if url is not None and first is not None:
                first_by_url[url] = first
        copies: dict[int, int] = {}
        for classified in fresh:
            item_id = new_ids[classified.entry.key]
            first = first_by_url.get(classified.entry.url or "")
            if first is not None and first != item_id:
                copies[item_id] = first
        for item_id, first in copies.items():
            session.execute(update(Item).where(col(Item.id) == item_id).values(duplicate_of=first))
        return set(copies)

    def _place(
        self,
        session: Session,
        classified: Classified,
        item_id: int,
        *,
        silent: bool,
        now: datetime,
        route: Router,
        result: IngestResult,
    ) -> None:
        """Cluster a relevant item and, for a milestone, create or join its event."""
        entry, verdict = classified.entry, classified.verdict
        assert verdict.story is not None
        changes: dict[str, Any] = {
            "cluster_id": self._cluster_of(session, item_id, verdict.story, entry.text, now),
            "silent": silent,
        }
        if verdict.milestone is not None:
            event_id, created = self._event_for(
                session,
                verdict.story,
                verdict.milestone,
                entry=entry,
                item_id=item_id,
                silent=silent,
                now=now,
            )
            changes["event_id"] = event_id
            if created and not silent:
                result.events.append((verdict.story, verdict.milestone))
                result.deliveries += self._enqueue_alert(
                    session, event_id, route(verdict.story, verdict.milestone), now
                )
            elif not created:
                result.attached += 1
        session.execute(update(Item).where(col(Item.id) == item_id).values(**changes))

    def _cluster_of(
        self, session: Session, item_id: int, story: str, text: str, now: datetime
    ) -> int:
        """The cluster (its first item's id) of near-duplicate reports (identity level 3)."""
        mine = cluster.fingerprint(text)
        statement = (
            select(Item.id, Item.fingerprint, Item.cluster_id)
            .where(
                Item.story == story,
                col(Item.seen_at) >= now - _CLUSTER_WINDOW,
                col(Item.fingerprint).is_not(None),
                col(Item.cluster_id).is_not(None),
                Item.id != item_id,
            )
            .order_by(col(Item.id))
        )
        for other_id, other_print, other_cluster in session.exec(statement).all():
            if other_print is None or other_id is None:
                continue
            if cluster.near(mine, cluster.to_unsigned(other_print)):
                return other_cluster or other_id
        return item_id

    def _event_for(
        self,
        session: Session,
        story: str,
        milestone: str,
        *,
        entry: Entry,
        item_id: int,
        silent: bool,
        now: datetime,
    ) -> tuple[int, bool]:
        """Get or create the (story, milestone) event; True when this call created it."""
        statement = (
            self._insert_statement(Event)
            .values(
                story=story,
                milestone=milestone,
                created_at=now,
                first_item_id=item_id,
                title=entry.title or entry.summary[:200],
                url=entry.url,
                outlet=entry.outlet,
                silent=silent,
            )
            .on_conflict_do_nothing(index_elements=["story", "milestone"])
            .returning(col(Event.id))
        )
        created = session.execute(statement).scalar_one_or_none()
        if created is not None:
            return created, True
        existing = session.exec(
            select(Event.id).where(Event.story == story, Event.milestone == milestone)
        ).one()
        assert existing is not None
        return existing, False

    def _enqueue_alert(
        self, session: Session, event_id: int, targets: Sequence[str], now: datetime
    ) -> int:
        for target in targets:
            session.add(
                Delivery(
                    kind="alert",
                    dedup_key=f"event:{event_id}",
                    event_id=event_id,
                    target=target,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
        return len(targets)

    # -- outbox ---------------------------------------------------------------

    def claim_due(
        self,
        now: datetime,
        lease: timedelta,
        *,
        targets: Collection[str],
        limit: int = 100,
        ignore_backoff: bool = False,
    ) -> list[Claim]:
        """Lease the deliveries to `targets` that are due, counting the attempt first.

        Rows addressed to a target no longer configured are left pending, not lost.
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
            if not ignore_backoff:
                statement = statement.where(col(Delivery.next_attempt_at) <= now)
            rows = session.exec(statement).all()
            claims = []
            for row in rows:
                assert row.id is not None
                row.lease_until = now + lease
                row.attempts += 1
                row.last_attempt_at = now
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
            session.execute(
                update(Delivery)
                .where(col(Delivery.id) == claim.id, col(Delivery.attempts) == claim.attempts)
                .values(**values)
            )
        return str(values["status"])

    def release(self, claims: Sequence[Claim]) -> None:
        """Give back claims that were never sent: due again at once, the attempt uncounted."""
        with self._write() as session:
            for claim in claims:
                session.execute(
                    update(Delivery)
                    .where(col(Delivery.id) == claim.id, col(Delivery.attempts) == claim.attempts)
                    .values(lease_until=None, attempts=claim.attempts - 1)
                )

    def event(self, event_id: int) -> EventView:
        with self._read() as session:
            row = session.get(Event, event_id)
            if row is None:
                raise StoreError(f"no event {event_id}")
            return _event_view(session, row)

    # -- history and status ---------------------------------------------------

    def events(self, limit: int | None = None) -> list[EventView]:
        """Events, newest first, with their sources and deliveries."""
        with self._read() as session:
            statement = select(Event).order_by(col(Event.created_at).desc(), col(Event.id).desc())
            if limit is not None:
                statement = statement.limit(limit)
            return [_event_view(session, row) for row in session.exec(statement).all()]

    def undelivered(self, targets: Collection[str]) -> int:
        """How many deliveries to `targets` are still pending or failed."""
        with self._read() as session:
            statement = select(func.count()).where(
                col(Delivery.status).in_([PENDING, FAILED]), col(Delivery.target).in_(targets)
            )
            return int(session.exec(statement).one())

    def delivery_counts(self) -> dict[str, int]:
        """How many deliveries are in each status."""
        with self._read() as session:
            rows = session.exec(
                select(Delivery.status, func.count()).group_by(col(Delivery.status))
            ).all()
        return dict(rows)

    def latest_items(self) -> dict[str, LatestItem]:
        """Each feed's most recently stored item, by feed name."""
        with self._read() as session:
            newest = select(func.max(Item.id)).group_by(col(Item.feed_id)).scalar_subquery()
            rows = session.exec(
                select(Feed.name, Item.title, Item.url, Item.seen_at)
                .join(Item, col(Item.feed_id) == col(Feed.id))
                .where(col(Item.id).in_(newest))
            ).all()
        return {name: LatestItem(title, url, seen_at) for name, title, url, seen_at in rows}

    def outbox(self, statuses: Collection[str], limit: int = 100) -> list[OutboxRow]:
        """Deliveries in `statuses`, oldest first, with their event's title."""
        with self._read() as session:
            rows = session.exec(
                select(Delivery, Event.title, Event.story, Event.milestone)
                .outerjoin(Event, col(Event.id) == col(Delivery.event_id))
                .where(col(Delivery.status).in_(statuses))
                .order_by(col(Delivery.id))
                .limit(limit)
            ).all()
        return [
            OutboxRow(
                id=d.id or 0,
                kind=d.kind,
                target=d.target,
                status=d.status,
                attempts=d.attempts,
                created_at=d.created_at,
                next_attempt_at=d.next_attempt_at,
                last_error=d.last_error,
                title=title or d.title,
                story=story,
                milestone=milestone,
            )
            for d, title, story, milestone in rows
        ]


def _event_view(session: Session, row: Event) -> EventView:
    assert row.id is not None
    sources: list[SourceView] = []
    seen_urls: set[str] = set()
    statement = (
        select(Item, Feed.name)
        .join(Feed, col(Feed.id) == col(Item.feed_id))
        .where(Item.event_id == row.id)
        .order_by(col(Item.seen_at), col(Item.id))
    )
    terms: dict[str, list[str]] = {}
    for item, feed_name in session.exec(statement).all():
        if item.id == row.first_item_id and item.terms:
            terms = json.loads(item.terms)
        if item.url and item.url in seen_urls:
            continue
        if item.url:
            seen_urls.add(item.url)
        sources.append(
            SourceView(
                url=item.url,
                title=item.title,
                outlet=item.outlet,
                feed=feed_name,
                lang=item.lang,
                seen_at=item.seen_at,
            )
        )
    deliveries = [
        DeliveryView(d.target, d.status, d.attempts, d.last_error, d.sent_at)
        for d in session.exec(
            select(Delivery).where(Delivery.event_id == row.id).order_by(col(Delivery.id))
        ).all()
    ]
    return EventView(
        id=row.id,
        story=row.story,
        milestone=row.milestone,
        title=row.title,
        url=row.url,
        outlet=row.outlet,
        created_at=row.created_at,
        silent=row.silent,
        sources=sources,
        deliveries=deliveries,
        terms=terms,
    )


def _feed_row(session: Session, name: str) -> Feed:
    row = session.exec(select(Feed).where(Feed.name == name)).one_or_none()
    if row is None:
        raise StoreError(f"unknown feed {name!r}: call sync_feeds first")
    return row


def _mark_ok(row: Feed, now: datetime, next_check: datetime) -> None:
    row.last_checked = row.last_ok = now
    row.last_error = None
    row.consecutive_failures = 0
    row.failing_since = None
    row.next_check = next_check


def _published_before(entry: Entry, moment: datetime) -> bool:
    return entry.published is not None and entry.published < moment


def _short(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    return str(original) if original is not None else str(exc).splitlines()[0]


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN, so writes can be IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get("monitor_begin", "BEGIN"))


def _initial_schema(session: Session) -> None:
    SQLModel.metadata.create_all(session.connection())


MIGRATIONS: list[tuple[str, Callable[[Session], None]]] = [
    ("0001_initial", _initial_schema),
]
