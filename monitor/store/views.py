"""What leaves the store: frozen values read from the database, never ORM rows, so
no caller can touch a session or trigger a load after it closed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

PENDING, FAILED, SENT, DEAD = "pending", "failed", "sent", "dead"
WAITING = "waiting"
"""An alert to a target with `confirm: N`, waiting for its milestone to be confirmed;
made `pending` (due at once) by the ingest that confirms it."""
DEFAULT_TIER = "press"
"""The tier of a source that names none."""
FOLDED = "folded"
"""An alert over its target's hourly cap, carried by a summary delivery (`folded_into`)."""


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
    confirm: int | None = None
    """For a waiting alert: the distinct outlets it waits for."""
    story: str | None = None
    """The story and milestone of its event, when it announces one (dead-letter warnings
    name the event by them: its id is shown nowhere)."""
    milestone: str | None = None


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
    """A report shown once for its near-duplicate cluster (a story update that is no
    milestone, or a later report of one), with how many other links carried it."""

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
    reports: list[tuple[EventView, list[UpdateView]]]
    """Each event with later reports in the period, and those reports; every such
    event is in `timeline` too."""
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
    tier: str = DEFAULT_TIER
    """The tier of the feed it came from."""


@dataclass(frozen=True, slots=True)
class DeliveryView:
    target: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    confirm: int | None = None
    """For an alert that waited (or waits) for confirmation: the outlets it wanted."""


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
    summary: str = ""
    """The first report's text (its summary or lead as the feed gave it, as plain text)."""
    published: datetime | None = None
    """When the first report says it was published, if it says."""

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


@dataclass(frozen=True, slots=True)
class FeedView:
    """A feed's row as the rest of the service reads it: what the last fetches taught
    us (validators, failures, health), detached from any session."""

    name: str
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

    @property
    def state(self) -> str:
        """new (never checked), ok, silent (nothing new for unusually long), failing
        (backing off), unmatched (a page whose selector matches nothing), or gone (410:
        no longer polled): the feed's health as `status` and the page show it."""
        if self.gone:
            return "gone"
        if self.consecutive_failures:
            # A page whose selector matches nothing answers: it is unmatched, not down.
            return "unmatched" if self.health == "unmatched" else "failing"
        if self.last_checked is None:
            return "new"
        return "silent" if self.health == "silent" else "ok"
