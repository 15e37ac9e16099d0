"""The floor: fetch every feed (aiohttp, as concurrent as monitor), parse it with feedparser.

`python floor.py URLS CONCURRENCY` → one JSON line. Nothing is stored, matched or
deduplicated: this is what any feedparser-based reader pays at least.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp
import feedparser


async def fetch_all(urls: list[str], concurrency: int) -> list[tuple[bytes, str]]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:

        async def one(url: str) -> tuple[bytes, str]:
            async with client.get(url) as response:
                return await response.read(), response.headers.get("content-type", "")

        return await asyncio.gather(*(one(u) for u in urls))


def main() -> None:
    urls = Path(sys.argv[1]).read_text().split()
    concurrency = int(sys.argv[2])
    started = time.perf_counter()
    bodies = asyncio.run(fetch_all(urls, concurrency))
    fetched = time.perf_counter()
    entries = 0
    for (body, content_type), url in zip(bodies, urls, strict=True):
        headers = {"content-type": content_type, "content-location": url}
        entries += len(feedparser.parse(body, response_headers=headers).entries)
    parsed = time.perf_counter()
    print(
        json.dumps(
            {
                "fetch_seconds": fetched - started,
                "parse_seconds": parsed - fetched,
                "seconds": parsed - started,
                "entries": entries,
            }
        )
    )


if __name__ == "__main__":
    main()
