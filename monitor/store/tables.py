"""The database schema: what was seen, what happened, and what must be sent.

    feed          one row per configured feed: validators, health, backoff
    item          every version of every entry seen (identity level 1: feed + key +
                  content), with its verdict
    cluster_band  the LSH bands of relevant items' MinHash signatures (identity level 3)
    event         one row per (story, milestone): the thing people are alerted about
    delivery      the outbox: one row per (message, target), drained by the notify stage

All datetimes are timezone-aware UTC (sqlmodel >= 0.0.45 rejects naive ones).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel


class Feed(SQLModel, table=True):
    """A configured feed and what the last fetches taught us about it."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    url: str
    moved_to: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    last_checked: datetime | None = None
    last_ok: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    next_check: datetime | None = None
    items_seen: int = 0
    last_item_at: datetime | None = None
    items_skipped: int = 0
    """Items the store could not write (a row the database refused), each time one was
    tried; they were left out and the rest of the feed was stored."""
    baseline_done: bool = False
    gone: bool = False
    health: str | None = None
    """The trouble the health targets were last told about: failing, silent, unmatched, or none."""
    health_since: datetime | None = None
    lease_until: datetime | None = None
    """While a check of the feed is in flight: until when the instance that claimed it
    holds it (`FeedStore.claim_feeds`); no other instance claims it before."""
    lease_owner: str | None = None
    """The instance holding the lease (host, pid and a random part)."""
    tier: str | None = None
    """Who the source is, from its config (`official`, `agency`, `press`, `aggregator`);
    None (a row synced before tiers) reads as `press`."""


class Item(SQLModel, table=True):
    """One version of one entry of one feed: stored once, judged once.

    The first version of an entry has the entry's key (`monitor.ingest.identity.keys`); a later
    one, whose title or summary changed materially, has `identity.version_key(key,
    content_hash)` and points at the first in `version_of`. Old versions stay as history.
    """

    __table_args__ = (
        UniqueConstraint("feed_id", "key"),
        Index("ix_item_story_seen", "story", "seen_at"),
        Index(
            "ix_item_version_of",
            "version_of",
            sqlite_where=text("version_of IS NOT NULL"),
            postgresql_where=text("version_of IS NOT NULL"),
        ),
        Index("ix_item_url_content", "url", "content_hash"),
        Index("ix_item_feed_seen", "feed_id", "seen_at", "version_of"),
    )
    """`ix_item_feed_seen`: a feed's arrivals (its health check after every fetch) read
    from the index alone, not from one table row per item the feed ever brought.
    `ix_item_version_of` holds later versions only: over all items, SQLite's planner
    took it for `version_of IS NULL`, true of nearly every row, and read the whole
    table to find a few hundred feeds' arrivals."""

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feed.id")  # first column of ix_item_feed_seen
    key: str
    url: str | None = None
    title: str = Field(sa_column=Column(Text, nullable=False))
    summary: str = Field(sa_column=Column(Text, nullable=False))
    outlet: str | None = None
    lang: str | None = None
    published: datetime | None = None
    seen_at: datetime = Field(index=True)
    story: str | None = None
    milestone: str | None = None
    terms: str | None = Field(default=None, sa_column=Column(Text))
    fingerprint: int | None = Field(default=None, sa_column=Column(BigInteger))
    """The SimHash earlier versions clustered by; no longer written or read."""
    signature: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    """A relevant item's MinHash signature (`monitor.ingest.cluster`), packed."""
    cluster_id: int | None = Field(default=None, index=True)
    """For a relevant item: the first item of its near-duplicate cluster (maybe itself)."""
    duplicate_of: int | None = None
    """For a copy (the same canonical link and content already stored): the first item."""
    content_hash: str | None = None
    """`monitor.ingest.identity.content_hash` of the title and summary: what the rules read."""
    version_of: int | None = None
    """For a later version of an entry: the id of its first version."""
    silent: bool = False
    event_id: int | None = Field(default=None, foreign_key="event.id", index=True)


class ClusterBand(SQLModel, table=True):
    """One band of a relevant item's MinHash signature: near-duplicates share a band.

    `key` hashes the band's number with its values. Candidates for an item are the
    items sharing any of its keys: an indexed lookup, however many items the story
    has; story and clustering window are checked on the items found, and bands of
    items older than the window are pruned daily (`retention`). The table is its own
    lookup index, keyed by (key, item): SQLite keeps it `WITHOUT ROWID`, so a band is
    one narrow entry in one b-tree, not a table row plus an index entry. Its keys are
    random, so each commit rewrites most of its pages, and narrow entries make those
    pages few.
    """

    __tablename__ = "cluster_band"
    __table_args__ = (
        Index("ix_cluster_band_item", "item_id"),
        {"sqlite_with_rowid": False},
    )
    """`ix_cluster_band_item`: an item's bands, found by the item (retention deletes
    them before the item, and walks old bands item by item; without it each pruned
    batch of items would scan the whole table); item ids grow with time, so each
    commit appends at the index's right edge. No foreign key to `item`: bands are
    derived from the item's signature, retention deletes them first, and the check
    cost every insert a lookup of the item. Measured CPU of 320,000 bands written in
    400 transactions (16,000 items x 20, in key order, SQLite as the store opens it,
    over 640,000 bands already stored; a stand-alone microbenchmark): the old rowid
    table 3.6 s (87 MB file); this table alone 2.2-2.3 s (19 MB), with the item index
    2.4-2.8 s (36 MB), with the foreign key as well 2.7 s. `bench/stages.py --relevant
    1.0` ingest, CPU, best of 3: the old table 9.23 s; this one 8.06 s without the
    item index, 8.28 s with it (8.37 s best of 5), 8.43 s with the foreign key too."""

    key: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    item_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))


class Event(SQLModel, table=True):
    """A milestone of a story; created by its first report, joined by later ones."""

    __table_args__ = (UniqueConstraint("story", "milestone"),)

    id: int | None = Field(default=None, primary_key=True)
    story: str
    milestone: str
    created_at: datetime
    first_item_id: int | None = None
    title: str = Field(sa_column=Column(Text, nullable=False))
    url: str | None = None
    outlet: str | None = None
    silent: bool = False
    """Found on a feed's first fetch or too old: recorded, never alerted."""


class Delivery(SQLModel, table=True):
    """One message to one target. Pending until sent, retried until dead."""

    __table_args__ = (
        UniqueConstraint("dedup_key", "target"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    dedup_key: str
    event_id: int | None = Field(default=None, foreign_key="event.id", index=True)
    target: str
    status: str = "pending"
    attempts: int = 0
    created_at: datetime
    next_attempt_at: datetime
    lease_until: datetime | None = None
    last_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    title: str | None = Field(default=None, sa_column=Column(Text))
    body: str | None = Field(default=None, sa_column=Column(Text))
    hold: str | None = None
    """Why a due row waits though nothing failed: `quiet` (quiet hours), `cap` (rate limit)."""
    folded_into: int | None = None
    """For an alert over its target's hourly cap: the summary delivery that carries it."""
    story: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """For a digest: its story and the period it covers."""
    reported: bool = False
    """For a dead row: a warning about it has been queued (or there was no one to tell)."""
    confirm: int | None = None
    """For an alert to a target with `confirm: N`: the distinct outlets it waits for
    (status `waiting` until they, or one official or agency source, have reported)."""
    item_id: int | None = None
    """For an update: the item it announces, the first report of a new development.
    (No foreign key: a database that gains the column by migration could not add one.)"""


class Migration(SQLModel, table=True):
    """Named schema migrations already applied to this database."""

    name: str = Field(primary_key=True)
    applied_at: datetime


def _table(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


FEED_TABLE, ITEM_TABLE, BAND_TABLE, EVENT_TABLE, DELIVERY_TABLE = (
    _table(model) for model in (Feed, Item, ClusterBand, Event, Delivery)
)
"""The tables themselves, for Core statements on the hot paths (no ORM bookkeeping)."""
