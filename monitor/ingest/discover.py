"""Where a web page says its feeds are: `<link rel="alternate">` and the usual paths.

Pure: a page's bytes and address in, candidate feed addresses out. Whether a candidate
really is a feed is for its fetch and `parse` to say (`monitor.cli.feeds`).
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

from lxml import etree

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
    }
)
"""The `type` of a `<link rel="alternate">` that may be a feed (a page's translations are
alternates too, of type text/html, and are not)."""

USUAL_PATHS = ("/feed", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml")
"""Where sites without a `<link>` commonly serve a feed (WordPress, Hugo, Jekyll, ...)."""


def feed_links(page: bytes, base_url: str) -> list[str]:
    """The absolute addresses of the feeds `page` links to, in its order, each once."""
    if not page.strip():
        return []
    parser = etree.HTMLParser(no_network=True, recover=True)
    root = etree.fromstring(page, parser)
    if root is None:
        return []
    base = base_url
    for element in root.iter("base"):
        if element.get("href"):
            base = urljoin(base_url, str(element.get("href")).strip())
            break
    found: list[str] = []
    for link in root.iter("link"):
        rel = str(link.get("rel") or "").lower().split()
        kind = str(link.get("type") or "").split(";")[0].strip().lower()
        href = str(link.get("href") or "").strip()
        if "alternate" in rel and kind in FEED_TYPES and href:
            url = urljoin(base, href)
            if urlsplit(url).scheme in ("http", "https") and url not in found:
                found.append(url)
    return found


def usual_feed_urls(page_url: str) -> list[str]:
    """The usual feed paths on the page's site."""
    parts = urlsplit(page_url)
    return [urlunsplit((parts.scheme, parts.netloc, path, "", "")) for path in USUAL_PATHS]
