"""Named schema migrations, applied once each, in order (`Store.migrate`).

Two of them backfill values derived from an item's text: its content digest and its
MinHash signature with its band keys. Deriving them is the ingest stage's business
(`monitor.ingest.identity`, `monitor.ingest.cluster`), which the store does not import:
the functions come in as `Derivations` (`Store.open(url, derive=...)`), needed only
when an older database has rows to fill in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    inspect,
    select,
    update,
)
from sqlmodel import Session, SQLModel

from monitor.core.errors import StoreError
from monitor.store.tables import BAND_TABLE as _BAND
from monitor.store.tables import ITEM_TABLE as _ITEM

CLUSTER_WINDOW = timedelta(days=30)
"""How far back near-duplicates are looked for (identity level 3)."""

MIGRATION_LOCK = 0x6D6F6E69746F72
"""The PostgreSQL advisory lock key `Store.migrate` holds ("monitor" in ASCII): one key
for the whole database, so openers of any of its schemas take turns (briefly)."""

_OLD_BAND = Table(
    "cluster_band",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("story", String, nullable=False),
    Column("key", BigInteger, nullable=False),
    Column("item_id", Integer, ForeignKey(_ITEM.c.id), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_cluster_band_key", "key", "item_id"),
    Index("ix_cluster_band_item", "item_id"),
)
"""The band table as it was until `0010_narrow_band_index`, which the migrations before
it write: a database upgraded from any earlier version steps through them on it."""

Signed = tuple[bytes, Sequence[int]]
"""A packed MinHash signature and its band keys."""


@dataclass(frozen=True, slots=True)
class Derivations:
    """How the ingest stage derives an item's stored values from its title and summary."""

    content_hash: Callable[[str, str], str]
    signature: Callable[[str, str], Signed | None]
    """None when the text has no words to sign."""


def _needs(derive: Derivations | None, what: str) -> Derivations:
    if derive is None:
        raise StoreError(f"this database needs its items' {what} computed: open it with derive=")
    return derive


Step = Callable[[Session, Derivations | None], None]


def _initial_schema(session: Session, _derive: Derivations | None) -> None:
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


def _delivery_routing(session: Session, _derive: Derivations | None) -> None:
    _add_missing_columns(
        session, "delivery", ["hold", "folded_into", "story", "since", "until", "reported"]
    )
    _add_missing_columns(session, "feed", ["health", "health_since"])


def _minhash_clusters(session: Session, derive: Derivations | None) -> None:
    """MinHash signatures and their band index replace the SimHash scan; deliveries can
    carry an update. Relevant items of the clustering window are signed and indexed, so
    a rewrite of an item seen before the upgrade still joins its cluster."""
    _add_missing_columns(session, "item", ["signature"])
    _add_missing_columns(session, "delivery", ["item_id"])
    db = session.connection()
    _OLD_BAND.create(db, checkfirst=True)
    recent = db.execute(
        _ITEM.select().where(
            _ITEM.c.story.is_not(None),
            _ITEM.c.duplicate_of.is_(None),
            _ITEM.c.signature.is_(None),
            _ITEM.c.seen_at >= datetime.now(UTC) - CLUSTER_WINDOW,
        )
    ).all()
    for item in recent:
        signed = _needs(derive, "signatures").signature(item.title, item.summary)
        if signed is None:
            continue
        packed, keys = signed
        db.execute(update(_ITEM).where(_ITEM.c.id == item.id).values(signature=packed))
        bands = [
            {"story": item.story, "key": key, "item_id": item.id, "seen_at": item.seen_at}
            for key in keys
        ]
        db.execute(_OLD_BAND.insert(), bands)


def _report_versions(session: Session, derive: Derivations | None) -> None:
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
        digest = _needs(derive, "content digests").content_hash
        db.execute(
            update(_ITEM)
            .where(_ITEM.c.id == bindparam("item_id"))
            .values(content_hash=bindparam("digest")),
            [
                {"item_id": item_id, "digest": digest(title, summary)}
                for item_id, title, summary in batch
            ],
        )
        after = batch[-1][0]


def _band_item_index(session: Session, _derive: Derivations | None) -> None:
    """Bands are found by their item: pruning an item must not scan every band."""
    for index in _OLD_BAND.indexes:
        if index.name == "ix_cluster_band_item":
            index.create(session.connection(), checkfirst=True)


def _feed_lease(session: Session, _derive: Derivations | None) -> None:
    """The database is the schedule: a feed's check is claimed with a lease."""
    _add_missing_columns(session, "feed", ["lease_until", "lease_owner"])


def _arrival_indexes(session: Session, _derive: Derivations | None) -> None:
    """A feed's arrivals come from one index, however many items the feed has brought
    (the feed-id index it replaces is its first column), and the index of later
    versions holds only them, so no planner reads it for `version_of IS NULL`."""
    db = session.connection()
    db.exec_driver_sql("DROP INDEX IF EXISTS ix_item_feed_id")
    db.exec_driver_sql("DROP INDEX IF EXISTS ix_item_version_of")
    for index in _ITEM.indexes:
        if index.name in ("ix_item_feed_seen", "ix_item_version_of"):
            index.create(db, checkfirst=True)


def _one_permutation_signatures(session: Session, derive: Derivations | None) -> None:
    """Signatures are made by one-permutation hashing (`monitor.ingest.cluster`): the
    clustering window's signed items are signed again and their bands replaced, as a
    signature of the old kind never agrees with one of the new. Bands are looked up by
    key alone, in a narrower index."""
    db = session.connection()
    db.exec_driver_sql("DROP INDEX IF EXISTS ix_cluster_band_lookup")
    for index in _OLD_BAND.indexes:
        if index.name == "ix_cluster_band_key":
            index.create(db, checkfirst=True)
    since = datetime.now(UTC) - CLUSTER_WINDOW
    after = 0
    while True:
        batch = db.execute(
            select(_ITEM.c.id, _ITEM.c.title, _ITEM.c.summary, _ITEM.c.story, _ITEM.c.seen_at)
            .where(
                _ITEM.c.signature.is_not(None),
                _ITEM.c.story.is_not(None),
                _ITEM.c.seen_at >= since,
                _ITEM.c.id > after,
            )
            .order_by(_ITEM.c.id)
            .limit(1000)
        ).all()
        if not batch:
            return
        sign = _needs(derive, "signatures").signature
        ids = [item.id for item in batch]
        db.execute(_OLD_BAND.delete().where(_OLD_BAND.c.item_id.in_(ids)))
        signatures, bands = [], []
        for item in batch:
            signed = sign(item.title, item.summary)
            signatures.append({"item_id": item.id, "packed": signed[0] if signed else None})
            bands += [
                {"story": item.story, "key": key, "item_id": item.id, "seen_at": item.seen_at}
                for key in (signed[1] if signed else ())
            ]
        db.execute(
            update(_ITEM)
            .where(_ITEM.c.id == bindparam("item_id"))
            .values(signature=bindparam("packed")),
            signatures,
        )
        if bands:
            db.execute(_OLD_BAND.insert(), bands)
        after = ids[-1]


def _source_tiers(session: Session, _derive: Derivations | None) -> None:
    """Feeds carry their tier; an alert may wait for its milestone to be confirmed."""
    _add_missing_columns(session, "feed", ["tier"])
    _add_missing_columns(session, "delivery", ["confirm"])


def _narrow_band_index(session: Session, _derive: Derivations | None) -> None:
    """A band is its key and its item, in a table that is its own lookup index
    (`tables.ClusterBand`). The bands of the clustering window's items move over (the
    older ones would be pruned anyway), set aside in a temporary table while the old
    table and its indexes are dropped, so the new one is created under its own name
    with its own index and key names on either database. A database created since
    has the new table from its first migration: only the key index the earlier
    migrations gave it goes (its primary key is that index)."""
    db = session.connection()
    db.exec_driver_sql("DROP INDEX IF EXISTS ix_cluster_band_key")
    if "seen_at" not in {c["name"] for c in inspect(db).get_columns(_BAND.name)}:
        return
    kept = Table(
        "cluster_band_window",
        MetaData(),
        Column("key", BigInteger, nullable=False),
        Column("item_id", Integer, nullable=False),
        prefixes=["TEMPORARY"],
    )
    kept.create(db)
    window = (
        select(_OLD_BAND.c.key, _OLD_BAND.c.item_id)
        .join(_ITEM, _ITEM.c.id == _OLD_BAND.c.item_id)
        .where(_ITEM.c.seen_at >= datetime.now(UTC) - CLUSTER_WINDOW)
        .distinct()
    )
    db.execute(kept.insert().from_select(["key", "item_id"], window))
    _OLD_BAND.drop(db)
    _BAND.create(db)
    in_order = select(kept.c.key, kept.c.item_id).order_by(kept.c.key, kept.c.item_id)
    db.execute(_BAND.insert().from_select(["key", "item_id"], in_order))
    kept.drop(db)


MIGRATIONS: list[tuple[str, Step]] = [
    ("0001_initial", _initial_schema),
    ("0002_delivery_routing", _delivery_routing),
    ("0003_minhash_clusters", _minhash_clusters),
    ("0004_report_versions", _report_versions),
    ("0005_band_item_index", _band_item_index),
    ("0006_feed_lease", _feed_lease),
    ("0007_arrival_indexes", _arrival_indexes),
    ("0008_source_tiers", _source_tiers),
    ("0009_one_permutation_signatures", _one_permutation_signatures),
    ("0010_narrow_band_index", _narrow_band_index),
]
