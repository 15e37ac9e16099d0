"""The page to look at, and the Atom feed of events: what the store knows, read-only.

`Page` answers three paths of the loopback HTTP endpoint (`monitor run` with
`http.listen`, or `monitor serve`):

    /               every story: its timeline, its coverage per day, then the feeds' health
    /story/ID       one story (and the feeds' health)
    /events.atom    the milestone events and announced updates, newest first, as Atom 1.0

A story's timeline is its milestone events and announced updates, oldest first, each
with its first report, the other outlets that reported it grouped by language, and the
state of its delivery to each target (by the target's name or masked label: a target's
URL is never shown). The coverage chart is plain SVG drawn here, no script. Nothing is
written: the page reads the store as `history` and `status` do, and every text that
came from outside (an error from a server, a target's label) passes the redactor.
Times are shown in `digest.timezone`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

from monitor.config.settings import Config
from monitor.core.clock import Clock, utcnow
from monitor.core.safetext import cap, cleaned
from monitor.delivery.messages import (
    UPDATE_LABEL,
    corroboration,
    corroboration_line,
    first_reports,
    local_time,
    milestone_label,
)
from monitor.match.rules import Story
from monitor.store.store import Store
from monitor.store.views import DEFAULT_TIER, WAITING, EventView, FeedView, UpdateAlertView
from monitor.templates.render import page as render_page
from monitor.templates.render import web_url

Redact = Callable[[str], str]

CHART_DAYS = 30
"""Days of coverage the chart shows, today included."""
TIMELINE_ENTRIES = 200
"""The newest entries of a story's timeline the page shows (`monitor history` has all)."""
ATOM_ENTRIES = 50
"""The newest entries the Atom feed carries."""
ERROR_CHARS = 160
"""The most of an error text the page shows."""
ATOM = "http://www.w3.org/2005/Atom"

_STORY_PATH = re.compile(r"^/story/([^/]+)/?$")
_BAR_WIDTH, _BAR_GAP, _CHART_HEIGHT, _CHART_TOP, _CHART_LEFT = 16, 4, 120, 16, 36

Entry = EventView | UpdateAlertView


@dataclass(frozen=True, slots=True)
class Page:
    """The page and the Atom feed of `store`, as the config `config()` returns names them
    (a function: the daemon's config changes on reload)."""

    store: Store
    config: Callable[[], Config]
    redact: Redact = str
    clock: Clock = utcnow

    # -- WSGI -----------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path == "/events.atom":
            body = self.atom(_base_url(environ))
            return _answer(start_response, "200 OK", "application/atom+xml; charset=utf-8", body)
        story: str | None = None
        if path != "/":
            found = _STORY_PATH.match(path)
            story = unquote(found.group(1)) if found else None
            if story is None or story not in {s.id for s in self.config().stories}:
                body = b"no such story: see / for every story\n"
                return _answer(start_response, "404 Not Found", "text/plain", body)
        body = self.html(story).encode("utf-8")
        return _answer(start_response, "200 OK", "text/html; charset=utf-8", body)

    # -- the page -------------------------------------------------------------------

    def html(self, story: str | None = None) -> str:
        """The page: every story (or the one with id `story`), then the feeds' health."""
        return self.redact(render_page(self.context(story)))

    def context(self, story: str | None = None) -> dict[str, Any]:
        """What the page shows, as the template reads it."""
        config = self.config()
        tz = config.digest.tz
        now = self.clock()
        stories = [s for s in config.stories if story is None or s.id == story]
        since = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC) - timedelta(
            days=CHART_DAYS - 1
        )
        coverage = self.store.coverage(since)
        return {
            "title": stories[0].name if story is not None else "monitor",
            "generated_at": local_time(now, tz),
            "timezone": config.digest.timezone,
            "single": story is not None,
            "stories": [
                {
                    "id": s.id,
                    "name": s.name,
                    "timeline": self._timeline(s, tz),
                    "chart": chart(
                        coverage.get(s.id, {}), since.date(), now.astimezone(UTC).date()
                    ),
                }
                for s in stories
            ],
            "all_stories": [{"id": s.id, "name": s.name} for s in config.stories],
            "feeds": self._feeds(config, tz),
        }

    def _timeline(self, story: Story, tz: tzinfo) -> list[dict[str, Any]]:
        entries = self.store.history(limit=TIMELINE_ENTRIES, story=story.id)
        return [self._entry(e, story, tz) for e in reversed(entries)]

    def _entry(self, entry: Entry, story: Story, tz: tzinfo) -> dict[str, Any]:
        found = corroboration(entry.sources, tz)
        reporters = first_reports(entry.sources)
        first = reporters[0] if reporters else None
        by_language: dict[str, list[dict[str, Any]]] = {}
        for source in reporters[1:]:
            lang = source.lang.split("-")[0] if source.lang else "?"
            by_language.setdefault(lang, []).append(
                {
                    "outlet": source.outlet or source.feed,
                    "tier": _tier(source.tier),
                    "url": source.url,
                    "at": local_time(source.seen_at, tz),
                }
            )
        return {
            "kind": "milestone" if entry.milestone else "update",
            "label": milestone_label(story, entry.milestone) if entry.milestone else UPDATE_LABEL,
            "title": entry.title,
            "url": entry.url,
            "at": local_time(entry.created_at, tz),
            "iso": entry.created_at.astimezone(UTC).isoformat(),
            "silent": entry.silent,
            "first": None
            if first is None
            else {
                "outlet": first.outlet or first.feed,
                "tier": _tier(first.tier),
                "lang": first.lang.split("-")[0] if first.lang else None,
                "url": first.url,
                "at": local_time(first.seen_at, tz),
            },
            "languages": [{"lang": k, "outlets": v} for k, v in by_language.items()],
            "outlets": found["outlets"] if found else 0,
            "language_count": found["languages"] if found else 0,
            "deliveries": [
                {
                    "target": self.redact(d.target),
                    "status": d.status,
                    "attempts": d.attempts,
                    "note": self._delivery_note(d.status, d.confirm, d.last_error, entry),
                }
                for d in entry.deliveries
            ],
        }

    def _delivery_note(
        self, status: str, confirm: int | None, error: str | None, entry: Entry
    ) -> str | None:
        if status == WAITING and confirm is not None:
            so_far = len(entry.outlets)
            return (
                f"waiting for {confirm} outlets or one official or agency source ({so_far} so far)"
            )
        if error:
            return cap(self.redact(error), ERROR_CHARS)
        return None

    def _feeds(self, config: Config, tz: tzinfo) -> list[dict[str, Any]]:
        rows = {row.name: row for row in self.store.feeds([f.name for f in config.feeds])}
        return [_feed(f.name, rows.get(f.name), tz, self.redact) for f in config.feeds]

    # -- the Atom feed -------------------------------------------------------------

    def atom(self, base: str) -> bytes:
        """The newest events and announced updates as an Atom 1.0 document; `base` is the
        page's address (`http://127.0.0.1:9108/`), which the feed links to."""
        config = self.config()
        stories = {s.id: s for s in config.stories}
        entries = self.store.history(limit=ATOM_ENTRIES)
        ElementTree.register_namespace("", ATOM)
        feed = ElementTree.Element(f"{{{ATOM}}}feed")
        _add(feed, "id", "urn:monitor:events")
        _add(feed, "title", "monitor: events")
        _add(feed, "subtitle", ", ".join(s.name for s in config.stories))
        newest = entries[0].created_at if entries else self.clock()
        _add(feed, "updated", _iso(newest))
        _add(feed, "link", rel="self", href=f"{base}events.atom", type="application/atom+xml")
        _add(feed, "link", rel="alternate", href=base, type="text/html")
        author = _add(feed, "author")
        _add(author, "name", "monitor")
        _add(feed, "generator", "monitor")
        for entry in entries:
            story = stories.get(entry.story)
            label = milestone_label(story, entry.milestone) if entry.milestone else UPDATE_LABEL
            element = _add(feed, "entry")
            _add(element, "id", _entry_id(entry))
            _add(element, "title", self._clean(f"{label}: {entry.title}"))
            _add(
                element, "link", rel="alternate", href=web_url(entry.url) or _story_url(base, entry)
            )
            _add(element, "updated", _iso(entry.created_at))
            _add(element, "published", _iso(entry.created_at))
            _add(element, "category", term=entry.story, label=story.name if story else entry.story)
            _add(element, "summary", self._clean(_summary(entry, story, label)), type="text")
        document = ElementTree.tostring(feed, encoding="unicode", xml_declaration=False)
        return ('<?xml version="1.0" encoding="utf-8"?>\n' + self.redact(document)).encode()

    def _clean(self, text: str) -> str:
        """Feed text safe for XML (no control characters) and with no secret in it."""
        return self.redact(str(cleaned(text)))


def chart(days: dict[date, int], first: date, last: date) -> dict[str, Any]:
    """The geometry of a bar chart of reports per day from `first` to `last` (SVG units)."""
    span = (last - first).days + 1
    highest = max(days.values(), default=0)
    bars = []
    for index in range(span):
        day = first + timedelta(days=index)
        count = days.get(day, 0)
        height = round(_CHART_HEIGHT * count / highest) if highest else 0
        if count and not height:
            height = 1  # one report on a busy chart is still seen
        bars.append(
            {
                "day": day.isoformat(),
                "label": day.strftime("%d %b"),
                "count": count,
                "x": _CHART_LEFT + index * (_BAR_WIDTH + _BAR_GAP),
                "y": _CHART_TOP + _CHART_HEIGHT - height,
                "width": _BAR_WIDTH,
                "height": height,
            }
        )
    return {
        "bars": bars,
        "total": sum(b["count"] for b in bars),
        "highest": highest,
        "width": _CHART_LEFT + span * (_BAR_WIDTH + _BAR_GAP) + 24,  # room for the last date
        "height": _CHART_TOP + _CHART_HEIGHT + 20,
        "top": _CHART_TOP,
        "base": _CHART_TOP + _CHART_HEIGHT,
        "left": _CHART_LEFT,
    }


def _feed(name: str, row: FeedView | None, tz: tzinfo, redact: Redact) -> dict[str, Any]:
    """A feed's health as `status` shows it (its address is not shown: it may hold a token)."""

    def when(moment: datetime | None) -> str | None:
        return local_time(moment, tz) if moment is not None else None

    if row is None:  # configured, not yet in the store: never checked
        row = FeedView(name=name, url="")
    return {
        "name": name,
        "state": row.state,
        "last_checked": when(row.last_checked),
        "last_ok": when(row.last_ok),
        "next_check": when(row.next_check),
        "items_seen": row.items_seen,
        "failures": row.consecutive_failures,
        "error": cap(redact(row.last_error), ERROR_CHARS) if row.last_error else None,
    }


def _tier(tier: str) -> str | None:
    """A tier worth saying: press is the default, so it is not."""
    return None if tier == DEFAULT_TIER else tier


def _summary(entry: Entry, story: Story | None, label: str) -> str:
    lines = [f"{story.name if story else entry.story}: {label}", entry.title]
    if entry.url:
        lines.append(entry.url)
    found = corroboration(entry.sources, UTC)
    if found is not None:
        lines.append(f"{corroboration_line(found)} (UTC)")
    if entry.silent:
        lines.append("Recorded without alerting: first fetch of its feed, or too old.")
    lines += [f"→ {d.target}: {d.status}" for d in entry.deliveries]
    return "\n".join(lines)


def _entry_id(entry: Entry) -> str:
    """Permanent: a milestone happens once per story; an update is its first report."""
    if entry.milestone:
        return f"urn:monitor:event:{entry.story}:{entry.milestone}"
    return f"urn:monitor:update:{entry.story}:{entry.id}"


def _story_url(base: str, entry: Entry) -> str:
    return f"{base}story/{entry.story}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _add(
    parent: ElementTree.Element, tag: str, text: str | None = None, **attributes: str
) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
    if text is not None:
        element.text = text
    return element


def _base_url(environ: dict[str, Any]) -> str:
    """The address the request came to, as the client named it (`http://HOST:PORT/`)."""
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return f"http://{host}/"


def _answer(
    start_response: Callable[..., Any], status: str, content_type: str, body: bytes
) -> Sequence[bytes]:
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [body]
