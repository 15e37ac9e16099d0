"""Build small, realistic feeds for tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    summary: str = ""
    guid: str | None = None
    published: datetime | None = None
    source: str | None = None


def rss(items: list[Item], title: str = "Test feed", lang: str | None = None) -> str:
    """An RSS 2.0 document carrying `items`."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>https://example.org/</link>",
        "<description>test</description>",
    ]
    if lang:
        parts.append(f"<language>{lang}</language>")
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item.title)}</title><link>{escape(item.link)}</link>")
        if item.summary:
            parts.append(f"<description>{escape(item.summary)}</description>")
        if item.guid:
            parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        when = item.published or datetime.now(UTC)
        parts.append(f"<pubDate>{format_datetime(when)}</pubDate>")
        if item.source:
            parts.append(f'<source url="https://outlet.example/">{escape(item.source)}</source>')
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts)


FILLER = [
    Item("Central bank keeps key rate unchanged", "https://news.example/economy/rate"),
    Item("Weather: snow expected in Moscow this weekend", "https://news.example/weather/snow"),
    Item("Football: Spartak beat Zenit 2-1", "https://news.example/sport/spartak"),
]
"""Unrelated news that must never alert."""

UNVEILING_EN = Item(
    "Monument to North Korean soldiers unveiled in Kursk region",
    "https://en.example/world/kursk-monument-unveiled?utm_source=rss",
    "A monument to Korean People's Army soldiers who fought in the Kursk region was "
    "unveiled on Saturday at a ceremony attended by officials of Russia and the DPRK.",
)
UNVEILING_RU = Item(
    "В Курске открыли монумент бойцам КНДР",
    "https://ru.example/society/kursk-pamyatnik-kndr",
    "Торжественная церемония открытия памятника военнослужащим Корейской народной армии, "
    "участвовавшим в освобождении Курской области, прошла в субботу.",
)

THREE_MILESTONES = [
    Item(
        "Site chosen for monument to North Korean soldiers in Kursk region",
        "https://wire.example/site-chosen",
    ),
    Item(
        "Design of the Kursk monument to North Korean soldiers revealed",
        "https://wire.example/design-revealed",
    ),
    Item(
        "Monument to North Korean soldiers unveiled in Kursk",
        "https://wire.example/unveiled",
    ),
]
"""One report of each milestone, in English."""


def json_feed(items: list[Item], title: str = "Test feed") -> str:
    """A JSON Feed 1.1 document carrying `items`; its escapes can carry any code point."""
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "items": [
            {
                "id": item.guid or item.link,
                "url": item.link,
                "title": item.title,
                "summary": item.summary,
                "date_published": (item.published or datetime.now(UTC)).isoformat(),
            }
            for item in items
        ],
    }
    return json.dumps(document)
