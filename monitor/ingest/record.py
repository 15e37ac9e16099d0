"""Record a fetched feed: the store's facts, `decide`'s decisions, the store's writes,
in one transaction (`Store.ingest`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.ingest import decide
from monitor.ingest.decide import Classified, Confirming, IngestResult, Router, Stored
from monitor.store.items import Candidates, IngestTransaction, Versions
from monitor.store.store import Store


def ingest(
    store: Store,
    name: str,
    items: Sequence[Classified],
    *,
    now: datetime,
    next_check: datetime,
    alert_after: datetime,
    route: Router,
    confirming: Confirming | None = None,
    validators: tuple[str | None, str | None] = (None, None),
    content_hash: str | None = None,
    moved_to: str | None = None,
) -> IngestResult:
    """Record a fetched feed's entries, their events and outbox rows, atomically.

    What is new, a version, a copy, in which cluster and event, and who is told is
    `monitor.ingest.decide`'s; the facts it needs are read in the transaction that
    writes its decisions. An entry the database refuses is left out and listed in
    the result's `skipped`. Alerts waiting for their milestone to be confirmed
    (`confirming`) are made due in the same transaction as the reports that confirm
    them, whichever process ingests those.
    """

    def work(tx: IngestTransaction) -> IngestResult:
        return _record(
            tx,
            items,
            now=now,
            next_check=next_check,
            alert_after=alert_after,
            route=route,
            confirming=confirming,
            validators=validators,
            content_hash=content_hash,
            moved_to=moved_to,
        )

    return store.ingest_grouped(name, work)


def _record(
    tx: IngestTransaction,
    items: Sequence[Classified],
    *,
    now: datetime,
    next_check: datetime,
    alert_after: datetime,
    route: Router,
    confirming: Confirming | None,
    validators: tuple[str | None, str | None],
    content_hash: str | None,
    moved_to: str | None,
) -> IngestResult:
    result = IngestResult()
    rows = decide.fetched(items)
    rows = decide.unseen(rows, tx.stored(decide.lookup_keys(rows)))
    firsts = decide.firsts(rows)
    versions = tx.versions(firsts) if firsts else Versions()
    events = tx.events() if decide.needs_events(rows, versions) else {}
    identified = decide.identify(
        rows, versions, events, baseline=tx.baseline, alert_after=alert_after
    )
    result.capped = identified.capped
    ids = tx.insert([row.item() for row in identified.rows], now)
    stored = [
        Stored(row, item_id)
        for row, item_id in zip(identified.rows, ids, strict=True)
        if item_id is not None
    ]
    result.skipped = tx.skipped
    result.versions = sum(1 for s in stored if s.row.version_of is not None)
    result.new = len(stored) - result.versions
    copies = decide.copies(stored, tx.earliest(decide.links(stored)))
    tx.mark_copies(copies)
    result.duplicates = len(copies)
    placed = decide.placed(stored, copies)
    result.relevant = len(placed)
    wanted = decide.band_lookup(placed)
    candidates = tx.candidates(wanted, now) if wanted else None
    placements = decide.place(placed, candidates or _NONE, events, route, confirming)
    outcome = tx.place(placements, now)
    waiting = tx.waiting(outcome.touched)
    if waiting:
        reporters = tx.reporters({w.event_id for w in waiting})
        result.confirmed = tx.release(decide.confirmed(waiting, reporters), now)
    result.updates = sum(1 for p in placements if p.update is not None)
    result.events, result.attached = outcome.events, outcome.attached
    result.deliveries = outcome.deliveries + result.confirmed
    tx.record_fetch(
        now,
        next_check,
        new=result.new,
        validators=validators,
        content_hash=content_hash,
        moved_to=moved_to,
    )
    return result


_NONE = Candidates()
