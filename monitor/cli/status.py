"""`monitor status`: what the service is doing, from what the store remembers.

`collect` gathers one `StatusReport` (each configured feed's health, last and next
check, errors and backoff, the last item it gave; the deliveries still pending and the
dead ones); `feed_rows` and `delivery_rows` turn it into JSON lines, and `render` into
rich tables for a terminal. Everything shown goes through the redactor first: error
texts from apprise can carry a target's URL, and a table may wrap a secret across
lines where no stream-level filter would recognise it. Every cell is plain text (never
rich markup: a headline "[/]" would stop the command), its control characters shown
escaped and its length capped at `CELL_MAX_CHARS`, so a stored megabyte prints as
a few lines.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.config.settings import Config
from monitor.core.clock import span
from monitor.core.safetext import cap, shown
from monitor.store.store import Store
from monitor.store.views import (
    DEAD,
    FAILED,
    FOLDED,
    PENDING,
    SENT,
    WAITING,
    EventView,
    LatestItem,
    OutboxRow,
)

Redact = Callable[[str], str]
SHOWN_DELIVERIES = 100
"""At most this many pending and this many dead deliveries are listed (all are counted)."""
STATES = (WAITING, PENDING, FAILED, SENT, DEAD, FOLDED)
CELL_MAX_CHARS = 200
"""The most of one value a table cell shows."""
NOTE_MAX_CHARS = 100
"""The most of an error or an address a feed's notes show (they share one cell)."""


@dataclass(frozen=True, slots=True)
class FeedStatus:
    name: str
    url: str
    health: str
    """new (never checked), ok, silent (nothing new for unusually long), failing (backing
    off), or gone (410: no longer polled)."""
    last_checked: datetime | None
    last_ok: datetime | None
    next_check: datetime | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    failing_since: datetime | None
    items_seen: int
    moved_to: str | None
    last_item: LatestItem | None
    items_skipped: int = 0
    """Items the store could not write (each try counted); the rest of the feed was."""
    told: str | None = None
    """The trouble the health targets were last told about (failing, silent, unmatched)."""
    told_since: datetime | None = None

    @property
    def backoff_until(self) -> datetime | None:
        """When a failing feed will be tried again."""
        return self.next_check if self.health == "failing" else None


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """A delivery not yet sent, with the alert it carries (an update's title is that of
    the development's first report)."""

    id: int
    kind: str
    target: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    hold: str | None
    """Why it waits untried: quiet (the target's quiet hours), cap (its hourly cap), or
    its milestone's confirmation (`confirm: N`: how many outlets reported it so far)."""
    last_error: str | None
    title: str | None
    milestone: str | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    generated_at: datetime
    feeds: list[FeedStatus]
    counts: dict[str, int]
    by_target: dict[str, dict[str, int]] = field(default_factory=dict)
    pending: list[DeliveryStatus] = field(default_factory=list)
    """Deliveries still to be sent: pending (perhaps held), or failed and to be retried."""
    dead: list[DeliveryStatus] = field(default_factory=list)


def collect(config: Config, store: Store, now: datetime, redact: Redact = str) -> StatusReport:
    """The status of every configured feed and of the outbox, secrets redacted."""
    store.sync_feeds([(f.name, f.url) for f in config.feeds])
    rows = {row.name: row for row in store.feeds()}
    latest = store.latest_items()
    feeds = []
    for feed in config.feeds:
        row = rows[feed.name]
        feeds.append(
            FeedStatus(
                name=feed.name,
                url=feed.url,
                health=row.state,
                last_checked=row.last_checked,
                last_ok=row.last_ok,
                next_check=row.next_check,
                last_status=row.last_status,
                last_error=redact(row.last_error) if row.last_error else None,
                consecutive_failures=row.consecutive_failures,
                failing_since=row.failing_since,
                items_seen=row.items_seen,
                items_skipped=row.items_skipped,
                moved_to=row.moved_to,
                last_item=latest.get(feed.name),
                told=row.health,
                told_since=row.health_since,
            )
        )
    waiting = store.outbox([WAITING, PENDING, FAILED])[:SHOWN_DELIVERIES]
    dead = store.outbox([DEAD])[-SHOWN_DELIVERIES:]
    return StatusReport(
        generated_at=now,
        feeds=feeds,
        counts=store.delivery_counts(),
        by_target={redact(t): c for t, c in sorted(store.delivery_table().items())},
        pending=_deliveries(store, waiting, redact),
        dead=_deliveries(store, dead, redact),
    )


def _deliveries(store: Store, rows: list[OutboxRow], redact: Redact) -> list[DeliveryStatus]:
    events = {i: store.event(i) for i in {r.event_id for r in rows if r.event_id is not None}}
    shown = []
    for row in rows:
        event = events.get(row.event_id) if row.event_id is not None else None
        shown.append(
            DeliveryStatus(
                id=row.id,
                kind=row.kind,
                target=redact(row.target),
                status=row.status,
                attempts=row.attempts,
                created_at=row.created_at,
                next_attempt_at=row.next_attempt_at,
                hold=_confirmation(row, event) if row.status == WAITING else row.hold,
                last_error=redact(row.last_error) if row.last_error else None,
                title=event.title if event else row.title,
                milestone=event.milestone if event else None,
            )
        )
    return shown


def _confirmation(row: OutboxRow, event: EventView | None) -> str:
    """What a waiting alert waits for: `confirmation: 1 of 2 outlets`."""
    so_far = len(event.outlets) if event is not None else 0
    return f"confirmation: {so_far} of {row.confirm} outlets"


# -- JSON -------------------------------------------------------------------------


def feed_rows(report: StatusReport) -> list[dict[str, Any]]:
    """One JSON-ready row per configured feed; times are ISO 8601 in UTC, or null."""
    return [
        {
            "name": f.name,
            "url": f.url,
            "health": f.health,
            "moved_to": f.moved_to,
            "last_checked": _iso(f.last_checked),
            "last_ok": _iso(f.last_ok),
            "next_check": _iso(f.next_check),
            "backoff_until": _iso(f.backoff_until),
            "last_status": f.last_status,
            "last_error": f.last_error,
            "consecutive_failures": f.consecutive_failures,
            "failing_since": _iso(f.failing_since),
            "items_seen": f.items_seen,
            "items_skipped": f.items_skipped,
            "health_told": f.told,
            "health_told_since": _iso(f.told_since),
            "last_item": (
                {
                    "title": f.last_item.title,
                    "url": f.last_item.url,
                    "seen_at": _iso(f.last_item.seen_at),
                }
                if f.last_item
                else None
            ),
        }
        for f in report.feeds
    ]


def delivery_rows(report: StatusReport) -> list[dict[str, Any]]:
    """The outbox as JSON-ready rows: one per target with its counts by status, then one
    per delivery still pending or failed, then one per dead delivery."""
    rows: list[dict[str, Any]] = [
        {"type": "target", "target": target, "counts": {s: counts.get(s, 0) for s in STATES}}
        for target, counts in report.by_target.items()
    ]
    rows += [{"type": "delivery", **_delivery(r)} for r in [*report.pending, *report.dead]]
    return rows


def _delivery(row: DeliveryStatus) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "target": row.target,
        "status": row.status,
        "hold": row.hold,
        "attempts": row.attempts,
        "created_at": _iso(row.created_at),
        "next_attempt_at": _iso(row.next_attempt_at),
        "last_error": row.last_error,
        "title": row.title,
        "milestone": row.milestone,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# -- terminal ---------------------------------------------------------------------

_HEALTH_STYLE = {
    "ok": "green",
    "new": "cyan",
    "silent": "yellow",
    "unmatched": "yellow",
    "failing": "bold red",
    "gone": "magenta",
}


def render(report: StatusReport, console: Console) -> None:
    """Readable tables: the feeds, the outbox by target, then what is not sent yet."""
    console.print(_feeds_table(report))
    counts = ", ".join(f"{s} {report.counts.get(s, 0)}" for s in STATES)
    console.print(f"Deliveries: {counts}")
    if report.by_target:
        console.print(_targets_table(report))
    if report.pending:
        console.print(_deliveries_table("Waiting to be sent", report.pending, report, waiting=True))
    if report.dead:
        console.print(_deliveries_table("Dead", report.dead, report, waiting=False))


def _feeds_table(report: StatusReport) -> Table:
    now = report.generated_at
    table = Table(title="Feeds", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("feed", overflow="fold", max_width=28)
    table.add_column("health")
    table.add_column("last check", no_wrap=True)
    table.add_column("next check", no_wrap=True)
    table.add_column("items", justify="right")
    table.add_column("last item", overflow="fold", max_width=40)
    table.add_column("error / backoff", overflow="fold", max_width=40)
    for f in report.feeds:
        last_check = ago(f.last_checked, now)
        if f.last_status:
            last_check += f" ({f.last_status})"
        item = (
            Text(f"{shown(f.last_item.title, CELL_MAX_CHARS)} · {ago(f.last_item.seen_at, now)}")
            if f.last_item
            else "-"
        )
        notes = _feed_notes(f, now)
        table.add_row(
            _cell(f.name),
            _cell(f.health, _HEALTH_STYLE.get(f.health, "")),
            last_check,
            until(f.next_check, now),
            str(f.items_seen),
            item,
            _cell("; ".join(notes), "red" if f.last_error else "", None) if notes else "-",
        )
    return table


def _feed_notes(feed: FeedStatus, now: datetime) -> list[str]:
    notes = []
    if feed.last_error:
        notes.append(f"{cap(feed.last_error, NOTE_MAX_CHARS)} ({feed.consecutive_failures}x)")
    if feed.backoff_until:
        notes.append(f"backoff until {until(feed.backoff_until, now)}")
    if feed.moved_to:
        notes.append(f"moved to {cap(feed.moved_to, NOTE_MAX_CHARS)}")
    if feed.items_skipped:
        notes.append(f"items not stored: {feed.items_skipped} (item.skipped in the log)")
    if feed.told:
        notes.append(f"health targets told: {feed.told} {ago(feed.told_since, now)}")
    return notes


def _targets_table(report: StatusReport) -> Table:
    table = Table(title="Deliveries by target", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("target", overflow="fold", max_width=40)
    for state in STATES:
        table.add_column(state, justify="right")
    for target, by_state in report.by_target.items():
        table.add_row(_cell(target), *(str(by_state.get(s, 0)) for s in STATES))
    return table


def _deliveries_table(
    title: str, rows: list[DeliveryStatus], report: StatusReport, *, waiting: bool
) -> Table:
    now = report.generated_at
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("target", overflow="fold", max_width=30)
    table.add_column("kind")
    table.add_column("status")
    table.add_column("tries", justify="right")
    table.add_column("next try" if waiting else "queued", no_wrap=True)
    table.add_column("alert", overflow="fold", max_width=40)
    table.add_column("last error", overflow="fold", max_width=40)
    for row in rows:
        alert = row.title or "-"
        if row.milestone:
            alert = f"{row.milestone}: {alert}"
        elif row.kind == "update":
            alert = f"update: {alert}"
        table.add_row(
            _cell(row.target),
            row.kind,
            f"held ({row.hold})" if row.hold else row.status,
            str(row.attempts),
            until(row.next_attempt_at, now) if waiting else ago(row.created_at, now),
            _cell(alert),
            _cell(row.last_error or "-"),
        )
    return table


def _cell(value: str, style: str = "", limit: int | None = CELL_MAX_CHARS) -> Text:
    """`value` as a cell: plain text (not markup), escaped and capped."""
    return Text(shown(value, limit), style=style)


def ago(moment: datetime | None, now: datetime) -> str:
    """`5 minutes ago`, `3.5 hours ago`; `-` for never."""
    if moment is None:
        return "-"
    delta = now - moment
    if delta < timedelta(0):
        return "in " + span(delta)
    return span(delta) + " ago"


def until(moment: datetime | None, now: datetime) -> str:
    """`in 5 minutes`; `due` once the moment has passed; `-` for none."""
    if moment is None:
        return "-"
    delta = moment - now
    return "due" if delta <= timedelta(0) else "in " + span(delta)


# -- compact: one line per feed ------------------------------------------------------

COMPACT_MIN_WIDTH = 60
"""Narrower terminals get this width anyway (lines then wrap, whole)."""
_NAME_MAX = 24


def render_compact(report: StatusReport, width: int) -> list[str]:
    """The default view: one line per feed (health, last and next check, items, the error
    in a few words), then one line for the outbox and one per target with something stuck.
    No line is longer than `width`; a cut ends at a word, marked `…`."""
    width = max(width, COMPACT_MIN_WIDTH)
    now = report.generated_at
    names = [shown(f.name, CELL_MAX_CHARS) for f in report.feeds]
    name_width = min(max((len(n) for n in names), default=4), _NAME_MAX)
    header = f"{'health':<9} {'feed':<{name_width}} {'checked':>7} {'next':>7} {'items':>6}  note"
    lines = [fit(header, width)]
    for feed, name in zip(report.feeds, names, strict=True):
        row = (
            f"{feed.health:<9} {fit(name, name_width):<{name_width}} "
            f"{short_ago(feed.last_checked, now):>7} {short_until(feed.next_check, now):>7} "
            f"{feed.items_seen:>6}  {_short_note(feed)}"
        )
        lines.append(fit(row.rstrip(), width))
    counts = ", ".join(f"{s} {report.counts.get(s, 0)}" for s in STATES)
    lines.append(fit(f"Deliveries: {counts}", width))
    for target, by_state in report.by_target.items():
        waiting = by_state.get(PENDING, 0) + by_state.get(FAILED, 0)
        dead = by_state.get(DEAD, 0)
        if waiting or dead:
            line = f"  {shown(target, CELL_MAX_CHARS)}: {waiting} waiting, {dead} dead"
            lines.append(fit(line, width))
    lines.append(fit("Details: monitor status --wide, or monitor status FEED", width))
    return lines


def _short_note(feed: FeedStatus) -> str:
    """The feed's trouble in a few words: its error (and how often), a move, skipped items."""
    if feed.last_error:
        note = _few_words(shown(feed.last_error, NOTE_MAX_CHARS))
        return f"{note} ({feed.consecutive_failures}x)" if feed.consecutive_failures else note
    if feed.moved_to:
        return "moved (see status FEED)"
    if feed.items_skipped:
        return f"{feed.items_skipped} items not stored"
    return ""


_FEW_WORDS = 6


def _few_words(text: str) -> str:
    words = text.split()
    return " ".join(words[:_FEW_WORDS]) + (" …" if len(words) > _FEW_WORDS else "")


def fit(text: str, width: int) -> str:
    """`text` cut to `width` characters at a word boundary, ending in `…` when cut."""
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    head, space, _ = cut.rpartition(" ")
    if space and head.strip():
        cut = head.rstrip()
    return cut + "…"


def short_ago(moment: datetime | None, now: datetime) -> str:
    """`5m ago`-style, in a few characters: `42s`, `5m`, `3.5h`, `2d`; `-` for never."""
    return "-" if moment is None else _short(now - moment)


def short_until(moment: datetime | None, now: datetime) -> str:
    """`in 5m` as `5m`; `due` once passed; `-` for none."""
    if moment is None:
        return "-"
    delta = moment - now
    return "due" if delta <= timedelta(0) else _short(delta)


def _short(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            amount = f"{seconds / size:.1f}".removesuffix(".0")
            return f"{amount}{unit}"
    return f"{round(seconds)}s"


# -- one feed in full -----------------------------------------------------------------


def render_feed(report: StatusReport, name: str, width: int) -> list[str] | None:
    """Everything about one feed, a `key: value` line each, wrapped at word boundaries to
    `width`; None when no configured feed has that name."""
    feed = next((f for f in report.feeds if f.name == name), None)
    if feed is None:
        return None
    now = report.generated_at

    def when(moment: datetime | None) -> str:
        return f"{moment:%Y-%m-%d %H:%M} UTC ({ago(moment, now)})" if moment else "-"

    fields = [
        ("feed", feed.name),
        ("url", feed.url),
        ("health", feed.health),
        ("last check", when(feed.last_checked)),
        ("last status", str(feed.last_status or "-")),
        ("last success", when(feed.last_ok)),
        ("next check", until(feed.next_check, now)),
        ("items seen", str(feed.items_seen)),
    ]
    if feed.items_skipped:
        fields.append(("items not stored", f"{feed.items_skipped} (item.skipped in the log)"))
    if feed.last_error:
        fields.append(("last error", feed.last_error))
        fields.append(("failures in a row", str(feed.consecutive_failures)))
        fields.append(("failing since", when(feed.failing_since)))
    if feed.moved_to:
        fields.append(("moved to", feed.moved_to))
    if feed.told:
        fields.append(("health targets told", f"{feed.told} {ago(feed.told_since, now)}"))
    if feed.last_item:
        fields.append(("last item", feed.last_item.title))
        fields.append(("  link", feed.last_item.url or "-"))
        fields.append(("  seen", when(feed.last_item.seen_at)))
    label_width = max(len(label) for label, _ in fields) + 2
    lines = []
    for label, value in fields:
        lines.extend(
            textwrap.wrap(
                shown(value, CELL_MAX_CHARS * 2),
                width=max(width, COMPACT_MIN_WIDTH),
                initial_indent=f"{label + ':':<{label_width}}",
                subsequent_indent=" " * label_width,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [f"{label}:"]
        )
    return lines
