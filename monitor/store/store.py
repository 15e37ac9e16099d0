"""The store stage: the only SQL in the service.

`ingest` writes a fetch's new items, the events they create and the outbox rows for
those events in one transaction, so a crash never leaves an event without its
deliveries or a delivery without its event. What is new is decided by content, not by
the link alone ("seen" is not "judged", `monitor.ingest.identity`): a stored item whose
headline or summary changed is stored again as a new version and judged; a link
already stored with another headline is judged; only the same link with the same
content is a copy. Alerting keeps its own identity: one event per story and milestone,
whichever version or copy reports it, so re-judging never alerts twice. One row the
database refuses is left out of its feed's ingest and reported, never the feed.

The outbox is drained through `claim_due` (a lease per row, so a crashed sender's row
is retried once the lease ends) and `finish`.

SQLite is the embedded default (WAL, busy timeout, `BEGIN IMMEDIATE` for writes);
the same code runs on PostgreSQL, where claims use `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, Table, bindparam, event, func, inspect, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError, StatementError
from sqlmodel import Session, SQLModel, col, create_engine, select

from monitor.core.errors import StoreError
from monitor.ingest import cluster, identity
from monitor.ingest.entry import Entry
from monitor.match.classify import Verdict
from monitor.store.tables import ClusterBand, Delivery, Event, Feed, Item, Migration

_FEED = cast(Table, Feed.__table__)  # type: ignore[attr-defined]
_ITEM = cast(Table, Item.__table__)  # type: ignore[attr-defined]
"""The tables themselves, for Core statements on the hot paths (no ORM bookkeeping)."""

# The hot paths' statements, built once: building one costs more than running it.
_FEED_KEY = select(_FEED.c.id, _FEED.c.baseline_done).where(_FEED.c.name == bindparam("feed_name"))
_UPDATE_FEED_BY_NAME = update(_FEED).where(_FEED.c.name == bindparam("feed_name"))
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
_FIRST_BY_CONTENT = (
    select(_ITEM.c.url, _ITEM.c.content_hash, func.min(_ITEM.c.id))
    .where(
        _ITEM.c.url.in_(bindparam("urls", expanding=True)),
        _ITEM.c.content_hash.in_(bindparam("contents", expanding=True)),
        _ITEM.c.duplicate_of.is_(None),
    )
    .group_by(_ITEM.c.url, _ITEM.c.content_hash)
)
_BAND = cast(Table, ClusterBand.__table__)  # type: ignore[attr-defined]
_CANDIDATES = (
    select(_ITEM.c.id, _ITEM.c.cluster_id, _ITEM.c.signature)
    .where(
        _ITEM.c.id.in_(
            select(_BAND.c.item_id).where(
                _BAND.c.story == bindparam("story"),
                _BAND.c.key.in_(bindparam("keys", expanding=True)),
                _BAND.c.seen_at >= bindparam("since"),
                _BAND.c.item_id != bindparam("item_id"),
            )
        ),
        _ITEM.c.signature.is_not(None),
    )
    .order_by(_ITEM.c.id)
)
_INSERT_BAND = _BAND.insert()
_EVENT = cast(Table, Event.__table__)  # type: ignore[attr-defined]
_EVENT_KEYS = select(_EVENT.c.story, _EVENT.c.milestone)
_MARK_COPY = (
    update(_ITEM).where(_ITEM.c.id == bindparam("item_id")).values(duplicate_of=bindparam("first"))
)

Router = Callable[[str, str | None], Sequence[str]]
"""(story, milestone) → the labels of the targets that receive its alert; (story, None)
→ those that receive updates (the first report of each new development)."""

PENDING, FAILED, SENT, DEAD = "pending", "failed", "sent", "dead"
FOLDED = "folded"
"""An alert over its target's hourly cap, carried by a summary delivery (`folded_into`)."""
_SQLITE_BUSY_MS = 30_000
_CLUSTER_WINDOW = timedelta(days=30)
_LOOKUP_CHUNK = 400
"""Keys or links per lookup statement: well under any database's limit on parameters."""
_T = TypeVar("_T")
_ROW_FAULTS = (SQLAlchemyError, UnicodeError, ValueError)
"""What an insert can raise; `_row_fault` tells a refused row from a failing database."""


@dataclass(frozen=True, slots=True)
class Classified:
    """An entry with the verdict the match stage gave it."""

    entry: Entry
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """An entry the database refused to store: left out, the rest of its feed stored."""

    key: str
    title: str
    url: str | None
    error: str


@dataclass(slots=True)
class IngestResult:
    """What one `ingest` call did."""

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
    capped: int = 0
    """Changed versions left out: their item has `identity.MAX_VERSIONS` versions and
    they report no milestone that lacks an event."""
    skipped: list[SkippedItem] = field(default_factory=list)


@dataclass(slots=True)
class _Row:
    """An entry an ingest stores: a new item, or a new version of a stored one."""

    classified: Classified
    key: str
    """The row's key: the entry's identity (`identity.keys`), or a version's key."""
    content: str
    """`identity.content_hash` of the entry."""
    version_of: int | None = None
    """For a version: its item's first version."""
    joins: int | None = None
    """For a version: the cluster its item's earlier versions of the same story are in."""
    signature: cluster.Signature | None = None
    id: int | None = None
    """Once inserted; None if another process inserted it first or the database refused it."""


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
    story: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    item_id: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A delivery as status and warnings show it."""

    id: int
    kind: str
    dedup_key: str
    target: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    hold: str | None
    last_error: str | None
    title: str | None
    event_id: int | None


@dataclass(frozen=True, slots=True)
class Notice:
    """A message decided and worded now, queued for some targets (deduplicated by key)."""

    dedup_key: str
    targets: Sequence[str]
    title: str
    body: str
    kind: str = "notice"


@dataclass(frozen=True, slots=True)
class UpdateView:
    """A story update that is no milestone, with how many rewrites of it came in."""

    title: str
    url: str | None
    outlet: str | None
    feed: str
    lang: str | None
    seen_at: datetime
    more: int


@dataclass(frozen=True, slots=True)
class DigestMaterial:
    """What a digest of one story over one period is made of."""

    updates: list[UpdateView]
    reports: list[tuple[EventView, list[SourceView]]]
    timeline: list[EventView]

    @property
    def empty(self) -> bool:
        """Nothing new in the period (the timeline alone is not news)."""
        return not self.updates and not self.reports


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as stored, with the verdict it was given when it arrived."""

    id: int
    feed: str
    title: str
    summary: str
    url: str | None
    outlet: str | None
    lang: str | None
    published: datetime | None
    seen_at: datetime
    story: str | None
    milestone: str | None
    silent: bool


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
class _Reported:
    """Something reported: its first report's headline and link, all its reports (first
    report first), and the deliveries announcing it."""

    id: int
    story: str
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


@dataclass(frozen=True, slots=True, kw_only=True)
class EventView(_Reported):
    """A milestone event (`id` is the event's) with its reports and its deliveries."""

    milestone: str


@dataclass(frozen=True, slots=True)
class UpdateAlertView(_Reported):
    """A new development that is no milestone, announced as an update: its first
    report (`id` is that item's), the rewrites that joined its cluster, its deliveries."""

    @property
    def milestone(self) -> None:
        """An update reports no milestone (the same reading as `EventView.milestone`)."""
        return None


@dataclass(frozen=True, slots=True)
class LatestItem:
    """The item a feed gave most recently."""

    title: str
    url: str | None
    seen_at: datetime


class Store:
    """Everything monitor remembers, behind one small API."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer = engine.execution_options(monitor_begin="BEGIN IMMEDIATE")
        # SQLite has one writer; queueing writers here beats spinning on busy_timeout.
        self._write_lock = threading.Lock()
        self._insert_items_sql = (
            self._insert_statement(_ITEM)
            .on_conflict_do_nothing(index_elements=["feed_id", "key"])
            .returning(_ITEM.c.id, _ITEM.c.key)
        )

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to `url`, apply pending migrations, and return the store."""
        try:
            store = cls(_engine(url))
            store.migrate()
        except StoreError as exc:
            raise StoreError(f"cannot open database: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot open database: {exc}") from None
        return store

    @staticmethod
    def check(url: str) -> None:
        """Raise StoreError when `url` names a driver that cannot be loaded (no connection)."""
        _engine(url).dispose()

    def close(self) -> None:
        self.engine.dispose()

    # -- sessions -------------------------------------------------------------

    # Both wrap the database's failures (a read-only or full disk, a corrupt file, a lost
    # server) into a one-line StoreError: no SQLAlchemy exception leaves the store.

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with (
            _storage_errors(),
            self._write_lock,
            Session(self._writer, expire_on_commit=False) as session,
        ):
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        """Apply the named migrations this database has not seen yet, in order."""
        with _storage_errors():
            SQLModel.metadata.create_all(
                self.engine, tables=[SQLModel.metadata.tables["migration"]]
            )
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
        values: dict[str, Any] = {**_ok_values(now, next_check), "last_status": status}
        if moved_to:
            values["moved_to"] = moved_to
        if validators is not None:
            values["etag"], values["last_modified"] = validators
        with self._write() as session:
            done = session.connection().execute(_UPDATE_FEED_BY_NAME, {"feed_name": name, **values})
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

        Identity (DESIGN.md, `monitor.ingest.identity`): an entry this feed stored with the
        same content is skipped (level 1); one whose content changed is stored as a new
        version and judged again. A new item or version whose canonical link and
        content were already stored, by any feed, is a copy and changes nothing else
        (level 2); everything else relevant is clustered (level 3) and, if it reports a
        milestone, creates or joins that milestone's one event (level 4), so a
        milestone alerts once whichever version, feed or outlet reports it first.
        Entries from a feed's first fetch, or published before `alert_after`, are
        recorded silently: they may create or join events but never alert. An entry
        the database refuses is left out and listed in the result's `skipped`.
        """
        result = IngestResult()
        with self._write() as session:
            db = session.connection()
            found = db.execute(_FEED_KEY, {"feed_name": name}).one_or_none()
            if found is None:
                raise StoreError(f"unknown feed {name!r}: call sync_feeds first")
            feed_id, baseline_done = found
            baseline = not baseline_done

            def silent(entry: Entry) -> bool:
                return baseline or _published_before(entry, alert_after)

            rows = self._within_cap(db, self._unseen(db, feed_id, items), result)
            self._insert_items(db, feed_id, rows, now=now, silent=silent, result=result)
            stored = [row for row in rows if row.id is not None]
            result.versions = sum(1 for row in stored if row.version_of is not None)
            result.new = len(stored) - result.versions
            copies = self._copies(db, stored)
            result.duplicates = len(copies)
            for row in stored:
                if row.id in copies or not row.classified.verdict.relevant:
                    continue
                result.relevant += 1
                self._place(
                    session,
                    row,
                    silent=silent(row.classified.entry),
                    now=now,
                    route=route,
                    result=result,
                )
            values: dict[str, Any] = {
                **_ok_values(now, next_check),
                "last_status": 200,
                "etag": validators[0],
                "last_modified": validators[1],
                "content_hash": content_hash,
                "baseline_done": True,
            }
            if moved_to:
                values["moved_to"] = moved_to
            if result.new:
                values["last_item_at"] = now
            db.execute(
                _UPDATE_FEED_BY_ID,
                {"feed_id": feed_id, "added": result.new, "skipped": len(result.skipped), **values},
            )
        return result

    def _unseen(self, db: Connection, feed_id: int, items: Sequence[Classified]) -> list[_Row]:
        """The entries this feed has not stored with this content (identity level 1): new
        items, and new versions of stored ones (a changed title or summary)."""
        hashes = [
            c.entry.content or identity.content_hash(c.entry.title, c.entry.summary) for c in items
        ]
        keys = identity.keys([c.entry for c in items], hashes)
        fetched: dict[str, _Row] = {}
        for classified, key, digest in zip(items, keys, hashes, strict=True):
            fetched.setdefault(key, _Row(classified, key, digest))
        lookup = [*fetched, *(identity.version_key(r.key, r.content) for r in fetched.values())]
        stored: dict[str, tuple[int, str | None]] = {}
        for chunk in _chunks(lookup):
            for item_id, key, digest in db.execute(
                _STORED_KEYS, {"feed_id": feed_id, "keys": chunk}
            ):
                stored[key] = (item_id, digest)
        unseen = []
        for row in fetched.values():
            first = stored.get(row.key)
            version = identity.version_key(row.key, row.content)
            if version in stored or (first is not None and first[1] == row.content):
                continue
            if first is not None:
                row.key, row.version_of = version, first[0]
            unseen.append(row)
        return unseen

    def _within_cap(self, db: Connection, rows: list[_Row], result: IngestResult) -> list[_Row]:
        """Give each version the cluster of its item's earlier versions; leave out the
        versions of items that have `identity.MAX_VERSIONS` already, unless they report
        a milestone that has no event yet."""
        firsts = sorted({row.version_of for row in rows if row.version_of is not None})
        if not firsts:
            return rows
        counts: dict[int, int] = {}
        clusters: dict[tuple[int, str], int] = {}
        for chunk in _chunks(firsts):
            found = db.execute(_VERSIONS, {"firsts": chunk, "of_firsts": chunk})
            for item_id, version_of, story, cluster_id in found:  # oldest first
                first = version_of or item_id
                counts[first] = counts.get(first, 0) + 1
                if story is not None and cluster_id is not None:
                    clusters[(first, story)] = cluster_id
        events: set[tuple[str, str]] | None = None
        kept = []
        for row in rows:
            verdict = row.classified.verdict
            if row.version_of is not None and verdict.story is not None:
                row.joins = clusters.get((row.version_of, verdict.story))
            if (
                row.version_of is not None
                and counts.get(row.version_of, 0) >= identity.MAX_VERSIONS
            ):
                if events is None:
                    events = {(story, milestone) for story, milestone in db.execute(_EVENT_KEYS)}
                if verdict.milestone is None or (verdict.story, verdict.milestone) in events:
                    result.capped += 1
                    continue
            kept.append(row)
        return kept

    def _insert_items(
        self,
        db: Connection,
        feed_id: int,
        rows: Sequence[_Row],
        *,
        now: datetime,
        silent: Callable[[Entry], bool],
        result: IngestResult,
    ) -> None:
        """Insert the rows and set their ids: in one batch, or, when the database
        refuses the batch, one by one, leaving out the rows it refuses."""
        values = []
        for row in rows:
            entry, verdict = row.classified.entry, row.classified.verdict
            # Only relevant items are signed (clustering is for them alone).
            if verdict.relevant:
                row.signature = cluster.signature(entry.title, entry.summary)
            values.append(
                {
                    "feed_id": feed_id,
                    "key": row.key,
                    "url": entry.url,
                    "title": entry.title,
                    "summary": entry.summary,
                    "outlet": entry.outlet,
                    "lang": entry.lang,
                    "published": entry.published,
                    "seen_at": now,
                    "story": verdict.story,
                    "milestone": verdict.milestone,
                    "terms": _terms_json(verdict) if verdict.story else None,
                    "signature": cluster.pack(row.signature) if row.signature else None,
                    "content_hash": row.content,
                    "version_of": row.version_of,
                    "silent": silent(entry),
                }
            )
        if not values:
            return
        try:
            # One statement with the rows as parameters (executemany): SQLAlchemy
            # compiles it once and batches the rows itself. Rows inlined with
            # .values(list) compiled a new statement of thousands of parameters per feed,
            # most of an ingest's cost. The savepoint keeps the transaction usable (on
            # PostgreSQL an error aborts it) if the database refuses the batch.
            with db.begin_nested():
                inserted = db.execute(self._insert_items_sql, values).all()
        except _ROW_FAULTS as exc:
            if not _row_fault(exc):
                raise
            inserted = []
            for row, one in zip(rows, values, strict=True):
                try:
                    with db.begin_nested():
                        inserted += db.execute(self._insert_items_sql, [one]).all()
                except _ROW_FAULTS as refused:
                    if not _row_fault(refused):
                        raise
                    entry = row.classified.entry
                    error = _short(refused) if isinstance(refused, SQLAlchemyError) else refused
                    # The first line: PostgreSQL's DETAIL repeats the whole row.
                    reason = f"{error}".split("\n", 1)[0][:500]
                    result.skipped.append(SkippedItem(row.key, entry.title, entry.url, reason))
        ids = {key: item_id for item_id, key in inserted}
        for row in rows:
            row.id = ids.get(row.key)

    def _insert_statement(self, table: type[SQLModel] | Table) -> Any:
        if self._sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)

    def _copies(self, db: Connection, rows: Sequence[_Row]) -> set[int]:
        """Ids of the stored rows whose canonical link and content an earlier item has
        (identity level 2): copies, not judged again. The same link with other content
        is no copy: it is a new report, or a new version of one."""
        linked = [row for row in rows if row.classified.entry.url]
        first: dict[tuple[str, str], int] = {}
        for chunk in _chunks(linked):
            urls = sorted({row.classified.entry.url or "" for row in chunk})
            contents = sorted({row.content for row in chunk})
            found = db.execute(_FIRST_BY_CONTENT, {"urls": urls, "contents": contents})
            for url, digest, item_id in found:
                first[(url, digest)] = item_id
        copies: dict[int, int] = {}
        for row in rows:
            assert row.id is not None
            earliest = first.get((row.classified.entry.url or "", row.content))
            if earliest is not None and earliest != row.id:
                copies[row.id] = earliest
        if copies:
            db.execute(_MARK_COPY, [{"item_id": i, "first": f} for i, f in copies.items()])
        return set(copies)

    def _place(
        self,
        session: Session,
        row: _Row,
        *,
        silent: bool,
        now: datetime,
        route: Router,
        result: IngestResult,
    ) -> None:
        """Cluster a relevant item; a milestone creates or joins its event, and the first
        report of a new development (a new cluster) that is no milestone is an update.

        A version stays in its item's cluster: an edited report is the same report, so
        a headline rewritten in place is judged (its milestone alerts) but never
        announced again as a new development.
        """
        entry, verdict = row.classified.entry, row.classified.verdict
        assert verdict.story is not None
        assert row.id is not None
        item_id = row.id
        cluster_id = self._cluster_of(
            session.connection(), item_id, verdict.story, row.signature, now, joined=row.joins
        )
        changes: dict[str, Any] = {"cluster_id": cluster_id}
        if verdict.milestone is None:
            if cluster_id == item_id and not silent:
                result.updates += 1
                result.deliveries += self._enqueue_for(
                    session,
                    route(verdict.story, None),
                    now,
                    kind="update",
                    dedup_key=f"update:{item_id}",
                    item_id=item_id,
                    title=_headline(entry),
                )
        else:
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
                result.deliveries += self._enqueue_for(
                    session,
                    route(verdict.story, verdict.milestone),
                    now,
                    kind="alert",
                    dedup_key=f"event:{event_id}",
                    event_id=event_id,
                )
            elif not created:
                result.attached += 1
        session.execute(update(Item).where(col(Item.id) == item_id).values(**changes))

    def _cluster_of(
        self,
        db: Connection,
        item_id: int,
        story: str,
        signature: cluster.Signature | None,
        now: datetime,
        *,
        joined: int | None = None,
    ) -> int:
        """The cluster (its first item's id) of near-duplicate reports (identity level 3).

        Candidates share a band with the item (an indexed lookup); the most similar one
        at or above `cluster.THRESHOLD` gives its cluster, else the item starts one.
        `joined` (a version's item's cluster) is taken as it is. The item's own bands
        are recorded for the items that come after it.
        """
        if signature is None:
            return joined or item_id
        keys = cluster.band_keys(signature)
        found = joined or item_id
        if joined is None:
            candidates = db.execute(
                _CANDIDATES,
                {"story": story, "keys": keys, "since": now - _CLUSTER_WINDOW, "item_id": item_id},
            ).all()
            best = 0.0
            for other_id, other_cluster, packed in candidates:  # oldest first: it wins a tie
                similarity = cluster.similarity(signature, cluster.unpack(packed))
                if similarity >= cluster.THRESHOLD and similarity > best:
                    best, found = similarity, other_cluster or other_id
        db.execute(
            _INSERT_BAND,
            [{"story": story, "key": key, "item_id": item_id, "seen_at": now} for key in keys],
        )
        return found

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
                title=_headline(entry),
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

    def _enqueue_for(
        self, session: Session, targets: Sequence[str], now: datetime, **fields: Any
    ) -> int:
        """One delivery row per target for an alert or an update; how many."""
        for target in targets:
            session.add(Delivery(target=target, created_at=now, next_attempt_at=now, **fields))
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
            if claim.kind == "summary" and final and _rowcount(done):
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
            return self._enqueue(session, notices, now, story=story, since=since, until=until)

    def _enqueue(
        self,
        session: Session,
        notices: Sequence[Notice],
        now: datetime,
        **extra: Any,
    ) -> int:
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
            self._insert_statement(Delivery)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["dedup_key", "target"])
            .returning(col(Delivery.id))
        )
        return len(session.execute(statement).all())

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
        """Dead deliveries nobody has been warned about yet, oldest first."""
        with self._read() as session:
            rows = session.exec(
                select(Delivery)
                .where(Delivery.status == DEAD, col(Delivery.reported).is_(False))
                .order_by(col(Delivery.id))
            ).all()
        return [_outbox_row(r) for r in rows]

    def report_dead(self, ids: Collection[int], warning: Notice | None, *, now: datetime) -> None:
        """Mark dead rows as reported and queue the one warning about them, atomically."""
        with self._write() as session:
            session.execute(update(Delivery).where(col(Delivery.id).in_(ids)).values(reported=True))
            if warning is not None:
                self._enqueue(session, [warning], now)

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
        return _rowcount(done)

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
                moved += _rowcount(done)
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

    # -- digests --------------------------------------------------------------

    def last_digest_until(self, story: str, target: str) -> datetime | None:
        """The end of the period the latest digest of `story` to `target` covered."""
        with self._read() as session:
            value = session.exec(
                select(func.max(Delivery.until)).where(
                    Delivery.kind == "digest", Delivery.story == story, Delivery.target == target
                )
            ).one()
        return _aware(value)

    def digest_material(self, story: str, since: datetime, until: datetime) -> DigestMaterial:
        """A story's non-milestone updates and later milestone reports seen in the period.

        Silent items (a feed's first fetch, old items) and copies of an article already
        stored are left out; rewrites of one update (one cluster) are shown once, and
        counted once per link (an edited version of a report shown is not "one more").
        """
        with self._read() as session:
            base = (
                select(Item, Feed.name)
                .join(Feed, col(Feed.id) == col(Item.feed_id))
                .where(
                    Item.story == story,
                    col(Item.seen_at) >= since,
                    col(Item.seen_at) < until,
                    col(Item.duplicate_of).is_(None),
                    col(Item.silent).is_(False),
                )
                .order_by(col(Item.seen_at), col(Item.id))
            )
            updates: dict[int, UpdateView] = {}
            links: dict[int, set[str | None]] = {}
            for item, feed in session.exec(base.where(col(Item.event_id).is_(None))).all():
                assert item.id is not None
                group = item.cluster_id or item.id
                if group not in updates:
                    updates[group] = UpdateView(
                        item.title, item.url, item.outlet, feed, item.lang, _utc(item.seen_at), 0
                    )
                    links[group] = {item.url}
                elif item.url is None or item.url not in links[group]:
                    links[group].add(item.url)
                    first = updates[group]
                    updates[group] = dataclasses.replace(first, more=first.more + 1)
            events = session.exec(
                select(Event)
                .where(Event.story == story)
                .order_by(col(Event.created_at), col(Event.id))
            ).all()
            # What each event already shows: its first report and its link.
            shown = {e.id: ({e.first_item_id}, {e.url}) for e in events}
            later: dict[int, list[SourceView]] = {}
            for item, feed in session.exec(base.where(col(Item.event_id).is_not(None))).all():
                assert item.event_id is not None
                ids, urls = shown[item.event_id]
                if item.id in ids or (item.url is not None and item.url in urls):
                    continue
                urls.add(item.url)
                later.setdefault(item.event_id, []).append(_source_view(item, feed))
            timeline = [_event_view(session, row) for row in events]
        by_id = {e.id: e for e in timeline}
        reports = [(by_id[event_id], sources) for event_id, sources in later.items()]
        return DigestMaterial(list(updates.values()), reports, timeline)

    # -- feed health ----------------------------------------------------------

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
        return sorted(_utc(r) for r in rows)

    def arrivals_by_feed(
        self, names: Collection[str], since: datetime, limit: int = 200
    ) -> dict[str, list[datetime]]:
        """`arrivals` for many feeds in one query: feed name -> times, oldest first."""
        found: dict[str, list[datetime]] = {name: [] for name in names}
        with self._read() as session:
            rows = session.execute(
                select(Feed.name, Item.seen_at)
                .join(Feed, col(Feed.id) == col(Item.feed_id))
                .where(col(Item.seen_at) >= since, col(Item.version_of).is_(None))
                .group_by(col(Feed.name), col(Item.seen_at))
            ).all()
        for name, seen_at in rows:
            if name in found:
                found[name].append(_utc(seen_at))
        return {name: sorted(times)[-limit:] for name, times in found.items()}

    def set_health(
        self, name: str, state: str | None, *, now: datetime, notices: Sequence[Notice]
    ) -> None:
        """Record a feed's new health state and queue the notices about it, atomically."""
        with self._write() as session:
            row = _feed_row(session, name)
            row.health = state
            row.health_since = now if state else None
            session.add(row)
            self._enqueue(session, notices, now)

    def event(self, event_id: int) -> EventView:
        with self._read() as session:
            row = session.get(Event, event_id)
            if row is None:
                raise StoreError(f"no event {event_id}")
            return _event_view(session, row)

    # -- history and status ---------------------------------------------------

    def items(self, since: datetime | None = None) -> Iterator[StoredItem]:
        """Stored items, every version of each (not copies), oldest first, for re-running
        rules over them."""
        statement = (
            select(Item, Feed.name)
            .join(Feed, col(Feed.id) == col(Item.feed_id))
            .where(col(Item.duplicate_of).is_(None))
            .order_by(col(Item.seen_at), col(Item.id))
        )
        if since is not None:
            statement = statement.where(col(Item.seen_at) >= since)
        with self._read() as session:
            for item, feed_name in session.exec(statement):
                assert item.id is not None
                yield StoredItem(
                    id=item.id,
                    feed=feed_name,
                    title=item.title,
                    summary=item.summary,
                    url=item.url,
                    outlet=item.outlet,
                    lang=item.lang,
                    published=item.published,
                    seen_at=item.seen_at,
                    story=item.story,
                    milestone=item.milestone,
                    silent=item.silent,
                )

    def event_keys(self) -> dict[tuple[str, str], datetime]:
        """(story, milestone) → when its event was created, for every event so far."""
        with self._read() as session:
            rows = session.exec(select(Event.story, Event.milestone, Event.created_at)).all()
        return {(story, milestone): created for story, milestone, created in rows}

    def events(self, limit: int | None = None) -> list[EventView]:
        """Events, newest first, with their sources and deliveries."""
        with self._read() as session:
            statement = select(Event).order_by(col(Event.created_at).desc(), col(Event.id).desc())
            if limit is not None:
                statement = statement.limit(limit)
            return [_event_view(session, row) for row in session.exec(statement).all()]

    def update_alert(self, item_id: int) -> UpdateAlertView:
        """The update announcing the development that item `item_id` first reported."""
        with self._read() as session:
            found = session.exec(
                select(Item, Feed.name)
                .join(Feed, col(Feed.id) == col(Item.feed_id))
                .where(Item.id == item_id)
            ).one_or_none()
            if found is None:
                raise StoreError(f"no item {item_id}")
            return _update_view(session, *found)

    def update_alerts(self, limit: int | None = None) -> list[UpdateAlertView]:
        """The updates announced (queued for some target), newest first."""
        announced = (
            select(Delivery.item_id).where(Delivery.kind == "update").distinct().scalar_subquery()
        )
        statement = (
            select(Item, Feed.name)
            .join(Feed, col(Feed.id) == col(Item.feed_id))
            .where(col(Item.id).in_(announced))
            .order_by(col(Item.seen_at).desc(), col(Item.id).desc())
        )
        if limit is not None:
            statement = statement.limit(limit)
        with self._read() as session:
            return [_update_view(session, item, feed) for item, feed in session.exec(statement)]

    def history(self, limit: int | None = None) -> list[EventView | UpdateAlertView]:
        """Milestone events and announced updates together, newest first."""
        merged: list[EventView | UpdateAlertView] = [
            *self.events(limit),
            *self.update_alerts(limit),
        ]
        merged.sort(key=lambda view: view.created_at, reverse=True)
        return merged[:limit] if limit is not None else merged

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


def _event_view(session: Session, row: Event) -> EventView:
    assert row.id is not None
    statement = (
        select(Item, Feed.name)
        .join(Feed, col(Feed.id) == col(Item.feed_id))
        .where(Item.event_id == row.id)
        .order_by(col(Item.seen_at), col(Item.id))
    )
    reports = session.exec(statement).all()
    first = next((item for item, _ in reports if item.id == row.first_item_id), None)
    terms: dict[str, list[str]] = json.loads(first.terms) if first and first.terms else {}
    deliveries = [
        _delivery_view(d)
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
        sources=_distinct_sources(reports),
        deliveries=deliveries,
        terms=terms,
    )


def _update_view(session: Session, item: Item, feed_name: str) -> UpdateAlertView:
    assert item.id is not None
    assert item.story is not None
    members = session.exec(
        select(Item, Feed.name)
        .join(Feed, col(Feed.id) == col(Item.feed_id))
        .where(Item.cluster_id == (item.cluster_id or item.id), Item.id != item.id)
        .order_by(col(Item.seen_at), col(Item.id))
    ).all()
    deliveries = session.exec(
        select(Delivery)
        .where(Delivery.item_id == item.id, Delivery.kind == "update")
        .order_by(col(Delivery.id))
    ).all()
    return UpdateAlertView(
        id=item.id,
        story=item.story,
        title=_headline_of(item.title, item.summary),
        url=item.url,
        outlet=item.outlet,
        created_at=_utc(item.seen_at),
        silent=item.silent,
        sources=_distinct_sources([(item, feed_name), *members]),
        deliveries=[_delivery_view(d) for d in deliveries],
        terms=json.loads(item.terms) if item.terms else {},
    )


def _distinct_sources(reports: Iterable[tuple[Item, str]]) -> list[SourceView]:
    """One source per link, the first report with it (its versions and copies with
    other text add none); reports without a link are each a source."""
    sources: list[SourceView] = []
    seen: set[str] = set()
    for item, feed_name in reports:
        if item.url in seen:
            continue
        if item.url:
            seen.add(item.url)
        sources.append(_source_view(item, feed_name))
    return sources


def _delivery_view(row: Delivery) -> DeliveryView:
    return DeliveryView(row.target, row.status, row.attempts, row.last_error, row.sent_at)


def _source_view(item: Item, feed_name: str) -> SourceView:
    return SourceView(
        url=item.url,
        title=item.title,
        outlet=item.outlet,
        feed=feed_name,
        lang=item.lang,
        seen_at=_utc(item.seen_at),
    )


def _outbox_row(row: Delivery) -> OutboxRow:
    assert row.id is not None
    return OutboxRow(
        id=row.id,
        kind=row.kind,
        dedup_key=row.dedup_key,
        target=row.target,
        status=row.status,
        attempts=row.attempts,
        created_at=_utc(row.created_at),
        next_attempt_at=_utc(row.next_attempt_at),
        hold=row.hold,
        last_error=row.last_error,
        title=row.title,
        event_id=row.event_id,
    )


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


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (SQLAlchemy types `execute` as returning a plain Result)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _utc(moment: datetime) -> datetime:
    """Aware UTC (SQLite hands back naive datetimes from aggregate queries)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _aware(moment: object) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    assert isinstance(moment, datetime)
    return _utc(moment)


def _headline(entry: Entry) -> str:
    return _headline_of(entry.title, entry.summary)


def _headline_of(title: str, summary: str) -> str:
    """What names a report when it has no title: the start of its summary."""
    return title or summary[:200]


def _terms_json(verdict: Verdict) -> str:
    return json.dumps(
        {rule: list(found) for rule, found in verdict.terms.items()}, ensure_ascii=False
    )


def _feed_row(session: Session, name: str) -> Feed:
    row = session.exec(select(Feed).where(Feed.name == name)).one_or_none()
    if row is None:
        raise StoreError(f"unknown feed {name!r}: call sync_feeds first")
    return row


def _ok_values(now: datetime, next_check: datetime) -> dict[str, Any]:
    """A successful check: the failure count, backoff and any gone mark are cleared."""
    return {
        "last_checked": now,
        "last_ok": now,
        "gone": False,
        "last_error": None,
        "consecutive_failures": 0,
        "failing_since": None,
        "next_check": next_check,
    }


def _published_before(entry: Entry, moment: datetime) -> bool:
    return entry.published is not None and entry.published < moment


def _engine(url: str) -> Engine:
    """An engine for `url` (nothing connects yet); StoreError when its driver is unusable."""
    try:
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    except ImportError as exc:
        driver = url.split("://", 1)[0]
        raise StoreError(f"the driver of {driver} is not installed ({exc})") from None
    except SQLAlchemyError as exc:
        raise StoreError(_short(exc)) from None
    if engine.dialect.is_async:
        engine.dispose()
        raise StoreError(
            f"{engine.dialect.driver} is an asyncio driver; monitor needs a synchronous one "
            "(postgresql+psycopg, sqlite)"
        )
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


@contextmanager
def _storage_errors() -> Iterator[None]:
    """SQLAlchemy's (and so the driver's) failures, as StoreError: the store's boundary."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(_short(exc)) from None


def _short(exc: SQLAlchemyError) -> str:
    """The driver's own message, first line only (no SQL, no parameters, no traceback)."""
    original = getattr(exc, "orig", None)
    text = str(original) if original is not None else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(original or exc).__name__


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


def _add_missing_columns(session: Session, table: str, names: Sequence[str]) -> None:
    """ALTER TABLE ... ADD COLUMN for each of `names` the table lacks (a fresh database
    already has them: its first migration creates the tables as they are now)."""
    connection = session.connection()
    existing = {c["name"] for c in inspect(connection).get_columns(table)}
    columns = SQLModel.metadata.tables[table].c
    for name in names:
        if name in existing:
            continue
        column = columns[name]
        kind = column.type.compile(dialect=connection.dialect)
        default = ""
        if kind.upper().startswith("BOOL"):
            default = " NOT NULL DEFAULT FALSE"
        elif not column.nullable:  # a count: the model's default, a literal integer
            default = f" NOT NULL DEFAULT {int(column.default.arg)}"  # type: ignore[union-attr]
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}{default}")


def _delivery_routing(session: Session) -> None:
    _add_missing_columns(
        session, "delivery", ["hold", "folded_into", "story", "since", "until", "reported"]
    )
    _add_missing_columns(session, "feed", ["health", "health_since"])


def _minhash_clusters(session: Session) -> None:
    """MinHash signatures and their band index replace the SimHash scan; deliveries can
    carry an update. Relevant items of the clustering window are signed and indexed, so
    a rewrite of an item seen before the upgrade still joins its cluster."""
    _add_missing_columns(session, "item", ["signature"])
    _add_missing_columns(session, "delivery", ["item_id"])
    db = session.connection()
    SQLModel.metadata.create_all(db, tables=[_BAND])
    recent = db.execute(
        _ITEM.select().where(
            _ITEM.c.story.is_not(None),
            _ITEM.c.duplicate_of.is_(None),
            _ITEM.c.signature.is_(None),
            _ITEM.c.seen_at >= datetime.now(UTC) - _CLUSTER_WINDOW,
        )
    ).all()
    for item in recent:
        signature = cluster.signature(item.title, item.summary)
        if signature is None:
            continue
        db.execute(
            update(_ITEM).where(_ITEM.c.id == item.id).values(signature=cluster.pack(signature))
        )
        bands = [
            {"story": item.story, "key": key, "item_id": item.id, "seen_at": item.seen_at}
            for key in cluster.band_keys(signature)
        ]
        db.execute(_INSERT_BAND, bands)


def _report_versions(session: Session) -> None:
    """Items carry their content's digest and, for a later version, its first version;
    copies are found by link and content together; feeds count the items they could not
    store. Every stored item gets its digest, so nothing seen before the upgrade is
    taken for changed after it."""
    _add_missing_columns(session, "item", ["content_hash", "version_of"])
    _add_missing_columns(session, "feed", ["items_skipped"])
    db = session.connection()
    db.exec_driver_sql("DROP INDEX IF EXISTS ix_item_url")
    for index in _ITEM.indexes:
        if index.name in ("ix_item_version_of", "ix_item_url_content"):
            index.create(db, checkfirst=True)
    after = 0
    while True:
        batch = db.execute(
            select(_ITEM.c.id, _ITEM.c.title, _ITEM.c.summary)
            .where(_ITEM.c.content_hash.is_(None), _ITEM.c.id > after)
            .order_by(_ITEM.c.id)
            .limit(1000)
        ).all()
        if not batch:
            return
        db.execute(
            update(_ITEM)
            .where(_ITEM.c.id == bindparam("item_id"))
            .values(content_hash=bindparam("digest")),
            [
                {"item_id": item_id, "digest": identity.content_hash(title, summary)}
                for item_id, title, summary in batch
            ],
        )
        after = batch[-1][0]


MIGRATIONS: list[tuple[str, Callable[[Session], None]]] = [
    ("0001_initial", _initial_schema),
    ("0002_delivery_routing", _delivery_routing),
    ("0003_minhash_clusters", _minhash_clusters),
    ("0004_report_versions", _report_versions),
]
