"""Feed links found in a page: the alternates of feed types, resolved, each once."""

from __future__ import annotations

import pytest

from monitor.ingest.discover import feed_links, usual_feed_urls

BASE = "https://site.example/news/today.html"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(
            '<link rel="alternate" type="application/rss+xml" href="/rss.xml">',
            ["https://site.example/rss.xml"],
            id="rss-absolute-path",
        ),
        pytest.param(
            '<link rel="Alternate Feed" type="application/atom+xml; charset=utf-8" href="a.xml">'
            '<link rel="alternate" type="application/feed+json" href="https://cdn.example/f.json">',
            ["https://site.example/news/a.xml", "https://cdn.example/f.json"],
            id="atom-relative-and-json",
        ),
        pytest.param(
            '<base href="https://other.example/x/"><link rel=alternate type=text/xml href=f>',
            ["https://other.example/x/f"],
            id="base-href",
        ),
        pytest.param(
            '<link rel="alternate" hreflang="de" type="text/html" href="/de/">'
            '<link rel="stylesheet" type="text/css" href="/s.css">'
            '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
            '<link rel="alternate" type="application/rss+xml" href="">',
            [],
            id="not-feeds",
        ),
        pytest.param(
            '<link rel="alternate" type="application/rss+xml" href="/f">' * 2,
            ["https://site.example/f"],
            id="once-each",
        ),
    ],
)
def test_feed_links(head: str, expected: list[str]) -> None:
    """Only alternates of a feed type, resolved against the page (or its <base>)."""
    page = f"<!doctype html><html><head>{head}</head><body></body></html>".encode()
    assert feed_links(page, BASE) == expected


@pytest.mark.parametrize("page", [b"", b"   ", b"\x00\xff\xfe", b"not html at all"])
def test_feed_links_of_no_page(page: bytes) -> None:
    """Bytes that hold no links give none, and raise nothing."""
    assert feed_links(page, BASE) == []


def test_usual_feed_urls_are_on_the_site_root() -> None:
    """The usual paths are tried at the root of the page's site."""
    assert usual_feed_urls("http://site.example:8080/a/b?c=d")[:2] == [
        "http://site.example:8080/feed",
        "http://site.example:8080/rss",
    ]
