"""Interim parse stage on feedparser alone; replaced by the parsing work."""

from __future__ import annotations

import calendar
import hashlib
from datetime import UTC, datetime

import feedparser

from monitor.entry import Entry, ParsedFeed
from monitor.errors import NotAFeed


def parse(body: bytes, base_url: str, content_type: str | None = None) -> ParsedFeed:
    headers = {"content-location": base_url, "content-type": content_type or "application/xml"}
    data = feedparser.parse(body, response_headers=headers)
    if not data.version and not data.entries:
        raise NotAFeed("not a feed")
    entries = []
    for e in data.entries:
        guid = e.get("id")
        link = e.get("link")
        ident = f"guid:{guid}" if guid else f"url:{link}" if link else f"hash:{e.get('title')}"
        stamp = e.get("published_parsed") or e.get("updated_parsed")
        entries.append(
            Entry(
                key=hashlib.blake2b(ident.encode(), digest_size=16).hexdigest(),
                url=link,
                title=e.get("title", ""),
                summary=e.get("summary", ""),
                published=datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None,
                guid=guid,
                lang=data.feed.get("language"),
            )
        )
    return ParsedFeed(entries=entries, title=data.feed.get("title"), lang=data.feed.get("language"))
