"""Read models: what happened (events, updates, reports) as frozen views, for history,
status, digests and messages."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import Select, func
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from monitor.core.errors import StoreError
from monitor.store.engine import Database, utc
from monitor.store.tables import Delivery, Event, Feed, Item
from monitor.store.views import (
    DEFAULT_TIER,
    DeliveryView,
    DigestMaterial,
    EventView,
    LatestItem,
    SourceView,
    StoredItem,
    UpdateAlertView,
    UpdateView,
)


class ReportStore(Database):
    """What was reported: events, updates, the items behind them, digest material."""

    def digest_material(self, story: str, since: datetime, until: datetime) -> DigestMaterial:
        """A story's non-milestone updates and later milestone reports seen in the period.

        Silent items (a feed's first fetch, old items) and copies of an article already
        stored are left out; rewrites of one update (one cluster) are shown once, and
        counted once per link (an edited version of a report shown is not "one more").
        """
        with self._read() as session:
            # The columns shown, not whole items: a story's period can hold thousands of
            # reports, each with its full text and signature.
            base: Select[*tuple[Any, ...]] = (
                select_columns(
                    col(Item.id),
                    col(Item.cluster_id),
                    col(Item.event_id),
                    col(Item.title),
                    col(Item.url),
                    col(Item.outlet),
                    col(Item.lang),
                    col(Item.seen_at),
                    col(Feed.name).label("feed"),
                )
                .join(Feed, col(Feed.id) == col(Item.feed_id))
                .where(*_in_digest(story, since, until))
                .order_by(col(Item.seen_at), col(Item.id))
            )
            updates = _Rewrites()
            for item in session.execute(base.where(col(Item.event_id).is_(None))):
                updates.add(item)
            events = session.exec(
                select(Event)
                .where(Event.story == story)
                .order_by(col(Event.created_at), col(Event.id))
            ).all()
            # What each event already shows: its first report and its link.
            shown = {e.id: ({e.first_item_id}, {e.url}) for e in events}
            later: dict[int, _Rewrites] = {}
            for item in session.execute(base.where(col(Item.event_id).is_not(None))):
                ids, urls = shown[item.event_id]
                if item.id in ids or (item.url is not None and item.url in urls):
                    continue
                urls.add(item.url)
                later.setdefault(item.event_id, _Rewrites()).add(item)
            timeline = [_event_view(session, row) for row in events]
        by_id = {e.id: e for e in timeline}
        reports = [(by_id[event_id], found.views) for event_id, found in later.items()]
        return DigestMaterial(updates.views, reports, timeline)

    def has_digest_news(self, story: str, since: datetime, until: datetime) -> bool:
        """Whether `digest_material` of the period would not be `empty`, without
        gathering it: whether it holds an update, or a report of a milestone that its
        event does not already show (not the event's first item, not at its link).

        A digest is decided on before it is queued and gathered again when it is sent;
        on a busy story's day, gathering is thousands of rows (60-80 ms on a month-old
        database's 1,666 reports of a day), where one indexed row answers this."""
        in_period = _in_digest(story, since, until)
        update = select_columns(col(Item.id)).where(*in_period, col(Item.event_id).is_(None))
        report = (
            select_columns(col(Item.id))
            .join(Event, col(Event.id) == col(Item.event_id))
            .where(
                *in_period,
                col(Event.first_item_id).is_(None) | (col(Item.id) != col(Event.first_item_id)),
                col(Item.url).is_(None)
                | col(Event.url).is_(None)
                | (col(Item.url) != col(Event.url)),
            )
        )
        with self._read() as session:
            db = session.connection()
            return any(db.execute(q.limit(1)).first() is not None for q in (update, report))

    def event(self, event_id: int) -> EventView:
        with self._read() as session:
            row = session.get(Event, event_id)
            if row is None:
                raise StoreError(f"no event {event_id}")
            return _event_view(session, row)

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

    def events(self, limit: int | None = None, story: str | None = None) -> list[EventView]:
        """Events (of one story, or all), newest first, with their sources and deliveries."""
        with self._read() as session:
            statement = select(Event).order_by(col(Event.created_at).desc(), col(Event.id).desc())
            if story is not None:
                statement = statement.where(Event.story == story)
            if limit is not None:
                statement = statement.limit(limit)
            return [_event_view(session, row) for row in session.exec(statement).all()]

    def update_alert(self, item_id: int) -> UpdateAlertView:
        """The update announcing the development that item `item_id` first reported."""
        with self._read() as session:
            found = session.exec(
                select(Item, Feed.name, Feed.tier)
                .join(Feed, col(Feed.id) == col(Item.feed_id))
                .where(Item.id == item_id)
            ).one_or_none()
            if found is None:
                raise StoreError(f"no item {item_id}")
            return _update_view(session, *found)

    def update_alerts(
        self, limit: int | None = None, story: str | None = None
    ) -> list[UpdateAlertView]:
        """The updates announced (queued for some target) of one story or all, newest first."""
        announced = (
            select(Delivery.item_id).where(Delivery.kind == "update").distinct().scalar_subquery()
        )
        statement = (
            select(Item, Feed.name, Feed.tier)
            .join(Feed, col(Feed.id) == col(Item.feed_id))
            .where(col(Item.id).in_(announced))
            .order_by(col(Item.seen_at).desc(), col(Item.id).desc())
        )
        if story is not None:
            statement = statement.where(Item.story == story)
        if limit is not None:
            statement = statement.limit(limit)
        with self._read() as session:
            return [_update_view(session, *found) for found in session.exec(statement)]

    def history(
        self, limit: int | None = None, story: str | None = None
    ) -> list[EventView | UpdateAlertView]:
        """Milestone events and announced updates (of one story, or all), newest first."""
        merged: list[EventView | UpdateAlertView] = [
            *self.events(limit, story),
            *self.update_alerts(limit, story),
        ]
        merged.sort(key=lambda view: view.created_at, reverse=True)
        return merged[:limit] if limit is not None else merged

    def coverage(self, since: datetime) -> dict[str, dict[date, int]]:
        """Story → day (UTC) → the reports about it that day, from `since`'s day on.

        A report is an article: its copies and later versions are not counted again. Its
        day is the day it was published (never later than it was seen, so a wrong clock
        at the source cannot put it in the future), else the day it was seen: a feed's
        first fetch counts its older reports on their own days.
        """
        statement = select(Item.story, Item.published, Item.seen_at).where(
            col(Item.story).is_not(None),
            col(Item.seen_at) >= since,
            col(Item.duplicate_of).is_(None),
            col(Item.version_of).is_(None),
        )
        first_day = since.astimezone(UTC).date()
        counts: dict[str, dict[date, int]] = {}
        with self._read() as session:
            for story, published, seen_at in session.exec(statement):
                seen = utc(seen_at)
                moment = min(utc(published), seen) if published is not None else seen
                day = moment.astimezone(UTC).date()
                if story is None or day < first_day:
                    continue
                days = counts.setdefault(story, {})
                days[day] = days.get(day, 0) + 1
        return counts

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


def _reports(session: Session, *where: Any) -> list[tuple[Any, str, str | None]]:
    """The items matching `where`, oldest first, with their feed's name and tier, as
    `_distinct_sources` reads them: only the columns a source line shows. An event or
    a cluster can gather thousands of reports, and whole items would bring each one's
    text and signature along."""
    statement: Select[*tuple[Any, ...]] = (
        select_columns(
            col(Item.url),
            col(Item.title),
            col(Item.outlet),
            col(Item.lang),
            col(Item.seen_at),
            col(Feed.name).label("feed"),
            col(Feed.tier).label("tier"),
        )
        .join(Feed, col(Feed.id) == col(Item.feed_id))
        .where(*where)
        .order_by(col(Item.seen_at), col(Item.id))
    )
    return [(report, report.feed, report.tier) for report in session.execute(statement)]


def _event_view(session: Session, row: Event) -> EventView:
    assert row.id is not None
    reports = _reports(session, col(Item.event_id) == row.id)
    first = session.get(Item, row.first_item_id) if row.first_item_id is not None else None
    if first is not None and first.event_id != row.id:
        first = None
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
        summary=first.summary if first else "",
        published=utc(first.published) if first and first.published else None,
    )


def _update_view(session: Session, item: Item, feed_name: str, tier: str | None) -> UpdateAlertView:
    assert item.id is not None
    assert item.story is not None
    members = _reports(
        session, col(Item.cluster_id) == (item.cluster_id or item.id), col(Item.id) != item.id
    )
    deliveries = session.exec(
        select(Delivery)
        .where(Delivery.item_id == item.id, Delivery.kind == "update")
        .order_by(col(Delivery.id))
    ).all()
    return UpdateAlertView(
        id=item.id,
        story=item.story,
        title=headline_of(item.title, item.summary),
        url=item.url,
        outlet=item.outlet,
        created_at=utc(item.seen_at),
        silent=item.silent,
        sources=_distinct_sources([(item, feed_name, tier), *members]),
        deliveries=[_delivery_view(d) for d in deliveries],
        terms=json.loads(item.terms) if item.terms else {},
        summary=item.summary,
        published=utc(item.published) if item.published else None,
    )


def _distinct_sources(reports: Iterable[tuple[_Reported, str, str | None]]) -> list[SourceView]:
    """One source per link, the first report with it (its versions and copies with
    other text add none); reports without a link are each a source."""
    sources: list[SourceView] = []
    seen: set[str] = set()
    for item, feed_name, tier in reports:
        if item.url in seen:
            continue
        if item.url:
            seen.add(item.url)
        sources.append(_source_view(item, feed_name, tier))
    return sources


def _delivery_view(row: Delivery) -> DeliveryView:
    return DeliveryView(
        row.target, row.status, row.attempts, row.last_error, row.sent_at, row.confirm
    )


class _Reported(Protocol):
    """What a source line shows of an item: a whole `Item`, or a row of these columns."""

    @property
    def url(self) -> str | None: ...
    @property
    def title(self) -> str: ...
    @property
    def outlet(self) -> str | None: ...
    @property
    def lang(self) -> str | None: ...
    @property
    def seen_at(self) -> datetime: ...


class _InDigest(_Reported, Protocol):
    """A row of `digest_material`'s columns."""

    @property
    def id(self) -> int: ...
    @property
    def cluster_id(self) -> int | None: ...
    @property
    def feed(self) -> str: ...


class _Rewrites:
    """Reports in the order they came, one per near-duplicate cluster: its first report,
    with how many other links carried the same text (an edited version of a report
    already counted is not "one more")."""

    def __init__(self) -> None:
        self._first: dict[int, UpdateView] = {}
        self._links: dict[int, set[str | None]] = {}

    def add(self, item: _InDigest) -> None:
        group = item.cluster_id or item.id
        first = self._first.get(group)
        if first is None:
            self._first[group] = UpdateView(
                item.title, item.url, item.outlet, item.feed, item.lang, utc(item.seen_at), 0
            )
            self._links[group] = {item.url}
        elif item.url is None or item.url not in self._links[group]:
            self._links[group].add(item.url)
            self._first[group] = dataclasses.replace(first, more=first.more + 1)

    @property
    def views(self) -> list[UpdateView]:
        return list(self._first.values())


def _source_view(item: _Reported, feed_name: str, tier: str | None = None) -> SourceView:
    return SourceView(
        url=item.url,
        title=item.title,
        outlet=item.outlet,
        feed=feed_name,
        lang=item.lang,
        seen_at=utc(item.seen_at),
        tier=tier or DEFAULT_TIER,
    )


def headline_of(title: str, summary: str) -> str:
    """What names a report when it has no title: the start of its summary."""
    return title or summary[:200]


def _in_digest(story: str, since: datetime, until: datetime) -> tuple[Any, ...]:
    """The items a digest of `story` over [since, until) is made of: not silent (a
    feed's first fetch, old items), no copy of an article already stored."""
    return (
        col(Item.story) == story,
        col(Item.seen_at) >= since,
        col(Item.seen_at) < until,
        col(Item.duplicate_of).is_(None),
        col(Item.silent).is_(False),
    )
