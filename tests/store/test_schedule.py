"""The database is the schedule: feeds are claimed when due, with a lease, by one
instance at a time; a check's outcome writes the next time and ends the lease."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from monitor.ingest.decide import DERIVATIONS
from monitor.store.store import Store
from monitor.store.views import Notice

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
LEASE = timedelta(minutes=2)


def _feeds(store: Store, *names: str) -> dict[str, timedelta]:
    store.sync_feeds([(name, f"https://{name}.example/rss") for name in names])
    return dict.fromkeys(names, LEASE)


def _claimed(
    store: Store, leases: dict[str, timedelta], now: datetime, limit: int = 50
) -> list[str]:
    return [f.name for f in store.claim_feeds(leases, now=now, owner="me", limit=limit)]


def test_due_feeds_are_claimed_once_until_their_check_is_recorded(store: Store) -> None:
    """Never-checked feeds are due; a claimed one is not claimed again while leased; the
    recorded check ends the lease and sets when it is due again."""
    leases = _feeds(store, "a", "b")
    assert _claimed(store, leases, NOW) == ["a", "b"]
    assert _claimed(store, leases, NOW + timedelta(seconds=1)) == []
    store.record_unchanged("a", NOW, NOW + HOUR)
    store.record_failure("b", "HTTP 503", 503, now=NOW, next_check=NOW + 2 * HOUR)
    assert _claimed(store, leases, NOW + HOUR - timedelta(seconds=1)) == []
    assert _claimed(store, leases, NOW + HOUR) == ["a"]
    store.record_unchanged("a", NOW + HOUR, NOW + 3 * HOUR)
    assert _claimed(store, leases, NOW + 2 * HOUR) == ["b"]


def test_a_lease_its_holder_never_ended_lapses(store: Store) -> None:
    """A claimed feed whose instance died is due again when its lease ends, not before."""
    leases = _feeds(store, "a")
    assert _claimed(store, {"a": timedelta(minutes=15)}, NOW) == ["a"]
    assert _claimed(store, leases, NOW + timedelta(minutes=14)) == []
    assert _claimed(store, leases, NOW + timedelta(minutes=15)) == ["a"]


def test_claims_take_the_longest_overdue_first_within_the_limit(store: Store) -> None:
    """Never checked first, then by how long each has waited; only the named feeds;
    never a feed that answered 410 Gone."""
    leases = _feeds(store, "late", "later", "new", "gone", "other")
    store.record_unchanged("late", NOW - HOUR, NOW - HOUR)
    store.record_unchanged("later", NOW - HOUR, NOW - 2 * HOUR)
    store.record_unchanged("other", NOW - HOUR, NOW - 3 * HOUR)
    store.record_failure("gone", "HTTP 410", 410, now=NOW - HOUR, next_check=NOW - HOUR, gone=True)
    del leases["other"]
    assert _claimed(store, leases, NOW, limit=2) == ["new", "later"]
    assert _claimed(store, leases, NOW, limit=2) == ["late"]


def test_release_gives_back_only_the_owners_claims(store: Store) -> None:
    leases = _feeds(store, "a", "b")
    store.claim_feeds({"a": LEASE}, now=NOW, owner="me", limit=5)
    store.claim_feeds({"b": LEASE}, now=NOW, owner="other", limit=5)
    assert store.release_feeds("me") == 1
    assert _claimed(store, leases, NOW) == ["a"]


def test_a_shortened_interval_brings_the_next_check_forward(store: Store) -> None:
    """Only sooner, and never for a feed waiting out a failure."""
    _feeds(store, "a", "b", "failing")
    store.record_unchanged("a", NOW, NOW + 2 * HOUR)
    store.record_unchanged("b", NOW, NOW + HOUR)
    store.record_failure("failing", "HTTP 503", 503, now=NOW, next_check=NOW + 4 * HOUR)
    moved = store.reschedule({"a": HOUR, "b": 3 * HOUR, "failing": HOUR})
    assert moved == 1
    assert {f.name: f.next_check for f in store.feeds()} == {
        "a": NOW + HOUR,
        "b": NOW + HOUR,
        "failing": NOW + 4 * HOUR,
    }


def test_schedule_counts(store: Store) -> None:
    """What the metrics show: due (and how long the oldest waited), checking, waiting,
    backoff, gone."""
    _feeds(store, "due", "checking", "waiting", "backoff", "gone", "unwatched")
    store.record_unchanged("due", NOW - HOUR, NOW - timedelta(seconds=90))
    store.record_unchanged("waiting", NOW, NOW + HOUR)
    store.record_failure("backoff", "HTTP 503", 503, now=NOW, next_check=NOW + HOUR)
    store.record_failure("gone", "HTTP 410", 410, now=NOW, next_check=NOW, gone=True)
    store.claim_feeds({"checking": LEASE}, now=NOW, owner="me", limit=1)
    counts = store.schedule_counts(["due", "checking", "waiting", "backoff", "gone"], NOW)
    assert counts == {
        "due": 1,
        "checking": 1,
        "waiting": 1,
        "backoff": 1,
        "gone": 1,
        "lag": 90,
    }


def test_concurrent_claimers_never_share_a_feed(store: Store) -> None:
    """Three instances (each its own engine) claiming at once take every due feed once:
    SKIP LOCKED on PostgreSQL, the write lock on SQLite."""
    names = [f"f{n:03}" for n in range(120)]
    leases = _feeds(store, *names)
    url = store.engine.url.render_as_string(hide_password=False)
    claims: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(3)

    def claimer(owner: str) -> None:
        other = Store.open(url, derive=DERIVATIONS)
        try:
            start.wait()
            while batch := other.claim_feeds(leases, now=NOW, owner=owner, limit=7):
                with lock:
                    claims.extend(f.name for f in batch)
        finally:
            other.close()

    threads = [threading.Thread(target=claimer, args=(f"i{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claims) == names
    with store._read() as session:
        owners = Counter(
            row[0] for row in session.execute(text("select lease_owner from feed")).all()
        )
    assert sum(owners.values()) == len(names)
    assert set(owners) <= {"i0", "i1", "i2"}


def test_a_health_change_is_told_once_however_many_judge_it(store: Store) -> None:
    """Two instances judging the same change: the second finds the state moved and
    queues nothing."""
    _feeds(store, "a")
    notice = Notice(dedup_key="health:a:failing:1", targets=["desk"], title="t", body="b")
    later = Notice(dedup_key="health:a:failing:2", targets=["desk"], title="t", body="b")
    assert store.set_health("a", "failing", was=None, now=NOW, notices=[notice]) is True
    assert store.set_health("a", "failing", was=None, now=NOW, notices=[later]) is False
    assert [row.dedup_key for row in store.outbox(["pending"])] == ["health:a:failing:1"]
    assert store.feed("a").health == "failing"


def test_next_due_is_the_soonest_feed_no_one_holds(store: Store) -> None:
    """The claim job wakes for it: a never-checked feed is due now; a held or gone one
    does not count."""
    _feeds(store, "soon", "later", "held", "gone")
    assert store.next_due(["soon", "later"], NOW) == NOW
    store.record_unchanged("soon", NOW, NOW + HOUR)
    store.record_unchanged("later", NOW, NOW + 2 * HOUR)
    store.record_unchanged("held", NOW - HOUR, NOW - HOUR)
    store.record_failure("gone", "HTTP 410", 410, now=NOW, next_check=NOW, gone=True)
    store.claim_feeds({"held": LEASE}, now=NOW, owner="me", limit=1)
    assert store.next_due(["soon", "later", "held", "gone"], NOW) == NOW + HOUR
    assert store.next_due(["later"], NOW) == NOW + 2 * HOUR
    assert store.next_due(["gone"], NOW) is None
