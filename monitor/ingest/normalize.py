"""One normalization for every reader: raw fields in, a safe, capped `Entry` out.

Whichever reader ran (lxml, JSON Feed, feedparser), its entries are built here: the
same identity key, the same canonical URL, the same plain text, the same caps, the
same language tags and the same strict reading of dates.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

from monitor.core.safetext import cap, clean
from monitor.ingest.entry import Entry
from monitor.ingest.html import html_to_text
from monitor.ingest.urls import canonical_url

TITLE_MAX_CHARS = 500
SUMMARY_MAX_CHARS = 4000
OUTLET_MAX_CHARS = 200
LANG_MAX_CHARS = 35
URL_MAX_CHARS = 2048
"""A longer link is no link: PostgreSQL cannot index it (2,704 bytes at most)."""


def entry_key(guid: str | None, url: str | None, title: str, link: str | None) -> str:
    """The entry's identity within its feed: digest of its GUID, else URL, else title + link."""
    if guid:
        identity = f"guid:{guid}"
    elif url:
        identity = f"url:{url}"
    else:
        identity = f"hash:{title}\n{link or ''}"
    return hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def entry(
    *,
    guid: str | None,
    link: str | None,
    title: str,
    summary: str,
    published: datetime | None,
    base_url: str,
    outlet: str | None,
    lang: str | None,
) -> Entry:
    guid = guid.strip() if guid else None
    link = link.strip() if link else None
    url = canonical_url(link, base_url)
    title = html_to_text(title)
    # Text is made safe (by html_to_text, `clean`) and capped here, once. The key is
    # taken from the raw GUID, the whole title and the full URL: capping changes no
    # item's identity.
    return Entry(
        key=entry_key(guid or None, url, title, link),
        url=url if url and len(url) <= URL_MAX_CHARS else None,
        title=cap(title, TITLE_MAX_CHARS),
        summary=cap(html_to_text(summary), SUMMARY_MAX_CHARS),
        published=published,
        guid=clean(guid) or None if guid else None,
        outlet=cap(html_to_text(outlet), OUTLET_MAX_CHARS) or None if outlet else None,
        lang=language(lang),
    )


def feed_title(value: str | None) -> str | None:
    return cap(html_to_text(value), TITLE_MAX_CHARS) if value else None


def language(value: str | None) -> str | None:
    if not value:
        return None
    tag = clean(value).strip().lower().replace("_", "-")[:LANG_MAX_CHARS]
    return tag or None


# --- dates: the two formats feeds actually use, read strictly ------------------------------------

_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}
_ZONES = {"GMT": 0, "UT": 0, "UTC": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5}
_ZONES |= {"MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s*)?(\d{1,2})\s+([A-Z][a-z]{2})\s+(\d{4})\s+"
    r"(\d{2}):(\d{2})(?::(\d{2}))?\s+([+-]\d{4}|[A-Z]{1,3})"
)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def rfc822(value: str) -> datetime | None:
    match = _RFC822.fullmatch(value)
    if match is None or match[2] not in _MONTHS:
        return None
    day, _, year, hour, minute, second, zone = match.groups()
    if zone[0] in "+-":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        offset = -offset if zone[0] == "-" else offset
    elif zone in _ZONES:
        offset = timedelta(hours=_ZONES[zone])
    else:
        return None
    return _aware((year, _MONTHS[match[2]], day, hour, minute, second or "0"), timezone(offset))


def rfc3339(value: str) -> datetime | None:
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    if zone in "Zz":
        tz = UTC
    else:
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        tz = timezone(-offset if zone[0] == "-" else offset)
    return _aware((year, month, day, hour, minute, second), tz)


def _aware(parts: tuple[str | int, ...], tz: timezone) -> datetime | None:
    """Year, month, day, hour, minute, second in `tz`, as UTC; None if no such moment."""
    try:
        year, month, day, hour, minute, second = (int(part) for part in parts)
        return datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
