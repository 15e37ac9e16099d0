"""A news listing page without a feed, read with the CSS selectors its config gives.

`items` selects each item: its link (`<a href>`), or an element holding one (the
first `a[href]` inside it is the link). `title`, `date` and `summary`, when given,
are looked for inside the item; without `title` the link's text is the title. An
item's identity is its link, resolved against the page's address (or its `<base>`)
and made canonical, so the same article listed twice is one entry.

A page on which `items` matches nothing raises NoMatches: the site changed its
markup, and that must be seen (feed health tells it), never read as a quiet day.
Selectors are compiled with cssselect (checked at config load) and run over lxml;
no script runs and no browser is involved.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urljoin

from lxml import etree

from monitor.core.errors import NoMatches
from monitor.ingest import normalize
from monitor.ingest.entry import Entry, ParsedFeed
from monitor.ingest.html import html_document, inner_html, matches, selector
from monitor.ingest.sources import PageSource
from monitor.ingest.urls import canonical_url

MAX_ITEMS = 500
"""Items read from one page: a listing shows dozens; a page matching thousands is noise."""

_DOTTED_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[,\s]+(\d{1,2}):(\d{2}))?")


def parse_page(
    body: bytes, base_url: str, content_type: str | None, source: PageSource
) -> ParsedFeed:
    """The items of a listing page, in page order."""
    root = html_document(body, content_type)
    base = _base(root, base_url)
    matched = matches(selector(source.items), root)
    if not matched:
        raise NoMatches(f"the items selector {source.items!r}")
    entries: list[Entry] = []
    seen: set[str] = set()
    for item in matched:
        entry = _item(item, base, source)
        if entry is None or entry.url is None or entry.url in seen:
            continue
        seen.add(entry.url)
        entries.append(entry)
        if len(entries) == MAX_ITEMS:
            break
    if not entries:
        raise NoMatches(
            f"the items selector {source.items!r} with a link: "
            f"none of its {len(matched)} matches holds an http(s) link"
        )
    head_title = root.find(".//title")
    title = _text(head_title) if head_title is not None else None
    return ParsedFeed(
        entries=entries,
        title=normalize.feed_title(title),
        lang=normalize.language(root.get("lang")),
        parser="page",
    )


def _base(root: etree._Element, base_url: str) -> str:
    """The address relative links resolve against: `<base href>` if the page sets one."""
    base = root.find("head/base[@href]")
    if base is not None:
        # Not made canonical: that would drop the trailing slash a directory needs.
        resolved = urljoin(base_url, (base.get("href") or "").strip())
        if resolved.lower().startswith(("http://", "https://")):
            return resolved
    return base_url


def _item(item: etree._Element, base: str, source: PageSource) -> Entry | None:
    link = item if item.tag == "a" and item.get("href") else _first(item, "a[href]")
    if link is None:
        return None
    url = canonical_url(link.get("href"), base)
    if url is None:
        return None
    title = _first(item, source.title) if source.title else link
    summary = _first(item, source.summary) if source.summary else None
    date = _first(item, source.date) if source.date else None
    return normalize.entry(
        guid=None,
        link=url,
        title=inner_html(title) if title is not None else "",
        summary=inner_html(summary) if summary is not None else "",
        published=_date(date) if date is not None else None,
        base_url=base,
        outlet=None,
        lang=None,
    )


def _first(item: etree._Element, css: str) -> etree._Element | None:
    found = matches(selector(css), item)
    return found[0] if found else None


def _date(element: etree._Element) -> datetime | None:
    """A date from `datetime`/`content` attributes (the element's, or a `<time>` inside
    it) or the text, in the forms sites use:
    RFC 3339, RFC 822, ISO 8601 (a date alone is its midnight) and `30.11.2026 14:05`.
    A time without a zone is taken as UTC."""
    inner = element.find(".//time[@datetime]")
    candidates = [
        element.get("datetime"),
        element.get("content"),
        inner.get("datetime") if inner is not None else None,
        _text(element),
    ]
    for value in candidates:
        if not value or not (value := value.strip()):
            continue
        parsed = normalize.rfc3339(value) or normalize.rfc822(value) or _loose(value)
        if parsed is not None:
            return parsed
    return None


def _text(element: etree._Element) -> str:
    return " ".join(str(text) for text in element.itertext())


def _loose(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        dotted = _DOTTED_DATE.search(value)
        if dotted is None:
            return None
        day, month, year, hour, minute = dotted.groups()
        try:
            parsed = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
