"""JSON Feed 1.0/1.1, read with `json` (feedparser 6 does not know it)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from monitor.core.errors import NotAFeed
from monitor.ingest import normalize
from monitor.ingest.entry import Entry, ParsedFeed


def parse_json_feed(body: bytes, base_url: str) -> ParsedFeed:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise NotAFeed(f"invalid JSON: {error}") from None
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(version, str) or not version.startswith(
        ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
    ):
        raise NotAFeed("JSON, but not a JSON Feed")
    items = document.get("items")
    feed_lang = _json_str(document, "language")
    entries = [
        _json_feed_entry(item, base_url, feed_lang)
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict)
    ]
    title = _json_str(document, "title")
    return ParsedFeed(
        entries=entries,
        title=normalize.feed_title(title),
        lang=normalize.language(feed_lang),
        parser="jsonfeed",
    )


def _json_feed_entry(item: Mapping[str, Any], base_url: str, feed_lang: str | None) -> Entry:
    raw_id = item.get("id")
    guid = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    summary = (
        _json_str(item, "summary")
        or _json_str(item, "content_html")
        or _json_str(item, "content_text")
        or ""
    )
    published = normalize.rfc3339(_json_str(item, "date_published") or "") or normalize.rfc3339(
        _json_str(item, "date_modified") or ""
    )
    return normalize.entry(
        guid=guid,
        link=_json_str(item, "url") or _json_str(item, "external_url"),
        title=_json_str(item, "title") or "",
        summary=summary,
        published=published,
        base_url=base_url,
        outlet=None,
        lang=_json_str(item, "language") or feed_lang,
    )


def _json_str(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) else None
