"""A database as weeks or months of ingest leave it, written straight into the tables.

Shared by bench/retention.py (a year, to prune) and bench/history.py (a month, to poll
on): the ingest path would take hours for a million items, so rows are inserted in
chunks of `CHUNK` as the ingest would have left them. Items are spread evenly over the
period across the feeds; one in `relevant_every` is about `story`, with `bands` cluster
bands; one in `milestone_every` is a milestone's report attached to its event; one in
`delivery_every` was announced by an update delivery that was sent.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from monitor.store.store import Store
from monitor.store.tables import BAND_TABLE, DELIVERY_TABLE, EVENT_TABLE, FEED_TABLE, ITEM_TABLE

CHUNK = 20_000
_TEXT = (
    "government minister said on Tuesday that the new budget would include funding for "
    "regional hospitals schools and roads after months of debate in parliament while "
    "opposition leaders criticised the plan as too little too late and warned of rising "
    "prices energy costs and a shortage of workers in several industries across the country"
)
_WORDS = _TEXT.split()


@dataclass(frozen=True)
class History:
    """What the rows look like. The defaults are bench/retention.py's year."""

    story: str = "story"
    milestones: Sequence[str] = ("m0", "m1", "m2", "m3")
    relevant_every: int = 20
    bands: int = 16
    milestone_every: int = 500
    delivery_every: int = 50
    lead_chars: int = 0
    """Summary length of an item no story admits (the title and lead the store keeps);
    0 for retention's fixed 150-character summary."""
    full_chars: int = 0
    """Summary length of a relevant item (its whole text); 0: as `lead_chars`."""
    signatures: bool = False
    """Whether relevant items carry a (random) packed 512-byte MinHash signature."""
    baseline_done: bool = False
    """Whether every feed's first fetch is marked done, as after a month of polling."""


def build(
    store: Store,
    feeds: Sequence[tuple[str, str]],
    items: int,
    days: int,
    now: datetime,
    *,
    shape: History = History(),
) -> None:
    """`items` rows over the `days` before `now` across `feeds` (name, url)."""
    rng = random.Random(12)
    store.sync_feeds(list(feeds))
    with store._read() as session:
        feed_ids = [int(i) for i in session.execute(select(FEED_TABLE.c.id)).scalars()]
    start = now - timedelta(days=days)
    step = timedelta(days=days) / items
    with store._write() as session:
        db = session.connection()
        db.execute(
            EVENT_TABLE.insert(),
            [
                {
                    "story": shape.story,
                    "milestone": milestone,
                    "created_at": start,
                    "title": f"event {i}",
                    "silent": False,
                }
                for i, milestone in enumerate(shape.milestones)
            ],
        )
        if shape.baseline_done:
            db.execute(update(FEED_TABLE).values(baseline_done=True, last_ok=now))
    events = len(shape.milestones)
    next_id = 1
    for first in range(0, items, CHUNK):
        rows: list[dict[str, Any]] = []
        bands: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        for n in range(first, min(first + CHUNK, items)):
            item_id = next_id
            next_id += 1
            seen = start + step * n
            relevant = n % shape.relevant_every == 0
            milestone = n % shape.milestone_every == 0
            rows.append(
                {
                    "id": item_id,
                    "feed_id": feed_ids[n % len(feed_ids)],
                    "key": f"k{n}",
                    "url": f"https://news.example/{n}",
                    "title": f"Headline number {n} about something",
                    "summary": _summary(n, shape.full_chars if relevant else shape.lead_chars),
                    "seen_at": seen,
                    "published": seen,
                    "story": shape.story if relevant else None,
                    "milestone": shape.milestones[n % events] if milestone else None,
                    "signature": rng.randbytes(512) if relevant and shape.signatures else None,
                    "cluster_id": item_id if relevant else None,
                    "event_id": (n // shape.milestone_every) % events + 1 if milestone else None,
                    "content_hash": f"{n:032x}",
                    "silent": False,
                }
            )
            if relevant:
                bands += [
                    {"key": rng.getrandbits(62), "item_id": item_id} for _ in range(shape.bands)
                ]
            if n % shape.delivery_every == 0:
                deliveries.append(
                    {
                        "kind": "update",
                        "dedup_key": f"update:{item_id}",
                        "target": "desk",
                        "status": "sent",
                        "attempts": 1,
                        "created_at": seen,
                        "next_attempt_at": seen,
                        "sent_at": seen,
                        "item_id": item_id,
                        "reported": False,
                    }
                )
        with store._write() as session:
            db = session.connection()
            db.execute(ITEM_TABLE.insert(), rows)
            db.execute(BAND_TABLE.insert(), bands)
            if deliveries:
                db.execute(DELIVERY_TABLE.insert(), deliveries)


def _summary(n: int, chars: int) -> str:
    if chars == 0:
        return "A summary of a typical length for a feed entry. " * 3
    start = n % len(_WORDS)
    text = " ".join(_WORDS[start:] + _WORDS[:start])
    return (text * (chars // len(text) + 1))[:chars]
