"""Listing pages without feeds read with CSS selectors, from a fixture page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml.cssselect import CSSSelector

from monitor.core.errors import NoMatches, NotAFeed
from monitor.ingest.entry import ParsedFeed
from monitor.ingest.html import html_document, selector
from monitor.ingest.normalize import entry_key
from monitor.ingest.parse import parse
from monitor.ingest.read_page import MAX_ITEMS
from monitor.ingest.sources import PageSource

DATA = Path(__file__).resolve().parents[1] / "data"
BASE = "https://kursk.example/news/"
FULL = PageSource("div.news-item", title="h3", date=".news-date", summary="p.lead")
LINKS = PageSource("h3.news-title a")
MONUMENT = "https://kursk.example/news/2026/11/30/pamyatnik-mesto"


def read(source: PageSource, body: bytes | None = None, base: str = BASE) -> ParsedFeed:
    data = (DATA / "page_listing.html").read_bytes() if body is None else body
    return parse(data, base, "text/html", source)


def test_items_with_title_date_and_summary_selectors() -> None:
    """Each item's link, title, date and lead come from its selectors, in page order."""
    feed = read(FULL)
    assert feed.parser == "page"
    assert feed.lang == "ru"
    assert feed.title == "Новости — Курская правда (test)"
    got = [(e.url, e.title, e.published) for e in feed.entries]
    assert got == [
        (
            MONUMENT,
            "Для памятника воинам КНДР выбрали место в Курске",
            datetime(2026, 11, 30, 8, 5, tzinfo=UTC),
        ),
        (
            "https://kursk.example/news/2026/11/29/dorogi",
            "В Курске отремонтируют дороги к зиме",
            datetime(2026, 11, 29, 9, 30, tzinfo=UTC),
        ),
        (
            "https://other.example/partner-story",
            "Партнёрский материал",
            datetime(2026, 11, 28, tzinfo=UTC),
        ),
    ]
    assert feed.entries[0].summary.startswith("Сквер у Красной площади")


def test_items_that_are_links_take_their_text_as_title() -> None:
    """`items` may select the links themselves; a link without http(s) is no item."""
    feed = read(LINKS)
    assert [e.title for e in feed.entries] == [
        "Для памятника воинам КНДР выбрали место в Курске",
        "В Курске отремонтируют дороги к зиме",
        "Партнёрский материал",
    ]
    assert all(e.summary == "" and e.published is None for e in feed.entries)


def test_an_item_is_identified_by_its_resolved_link() -> None:
    """The key is the canonical link (relative resolved, tracking dropped), whichever
    selector found it; one link listed twice is one entry."""
    full, links = read(FULL), read(LINKS)
    assert full.entries[0].key == links.entries[0].key == entry_key(None, MONUMENT, "", None)
    doubled = b"<html><body>" + b'<p><a href="/a">One</a> <a href="/a#top">Again</a></p>' * 2
    assert len(read(PageSource("a"), doubled).entries) == 1


def test_base_element_resolves_relative_links() -> None:
    """A page's `<base href>` is what its relative links are relative to."""
    body = b'<html><head><base href="https://cdn.example/site/"></head><body><a href="x">X</a>'
    assert read(PageSource("a"), body).entries[0].url == "https://cdn.example/site/x"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (PageSource("div.news-card a"), "no item matched the items selector 'div.news-card a'"),
        (PageSource("div.promo"), "none of its 1 matches holds an http(s) link"),
    ],
    ids=["selector matches nothing", "matches hold no link"],
)
def test_a_selector_that_stops_matching_raises_no_matches(source: PageSource, message: str) -> None:
    """A changed site is an error naming the selector, never an empty feed."""
    with pytest.raises(NoMatches, match="no item matched") as raised:
        read(source)
    assert message in str(raised.value)


def test_an_enormous_listing_is_read_to_the_item_cap() -> None:
    """A page with many thousands of links gives at most MAX_ITEMS entries."""
    links = "".join(f'<li><a href="/n/{i}">Item {i}</a></li>' for i in range(MAX_ITEMS * 4))
    feed = read(PageSource("li a"), f"<html><body><ul>{links}</ul>".encode())
    assert len(feed.entries) == MAX_ITEMS


def test_scripts_and_markup_in_items_are_inert() -> None:
    """An item's title is plain text: no script text, no tags."""
    body = b'<div class="i"><a href="/x">Hi <script>alert(1)</script><b>there</b></a></div>'
    [entry] = read(PageSource("div.i"), body).entries
    assert entry.title == "Hi there"


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ('<time datetime="2026-11-30T14:05:00+03:00">today</time>', datetime(2026, 11, 30, 11, 5)),
        ("<span>Mon, 30 Nov 2026 14:05:00 GMT</span>", datetime(2026, 11, 30, 14, 5)),
        ("<span>2026-11-30 14:05</span>", datetime(2026, 11, 30, 14, 5)),
        ("<span>Опубликовано 30.11.2026, 14:05</span>", datetime(2026, 11, 30, 14, 5)),
        ('<meta content="2026-11-30">', datetime(2026, 11, 30)),
        ("<span>вчера</span>", None),
        ("<span>31.02.2026</span>", None),
    ],
    ids=["time element", "rfc822", "iso", "dotted", "content attribute", "words", "no such day"],
)
def test_dates_in_the_forms_sites_use(text: str, when: datetime | None) -> None:
    """Dates are read from attributes or text; what cannot be read is no date."""
    body = f'<div class="i"><a href="/x">X</a><span class="d">{text}</span></div>'.encode()
    [entry] = read(PageSource("div.i", date=".d > *"), body).entries
    assert entry.published == (when.replace(tzinfo=UTC) if when else None)


def test_a_page_sent_in_windows_1251_reads_right() -> None:
    """The page's own `<meta charset>` is honoured when the header says nothing."""
    body = '<meta charset="windows-1251"><div><a href="/k">Курск</a></div>'.encode("cp1251")
    assert read(PageSource("div a"), body).entries[0].title == "Курск"


def test_an_empty_body_is_not_a_page() -> None:
    """No document at all is NotAFeed, as for feeds."""
    with pytest.raises(NotAFeed):
        read(PageSource("a"), b"  ")


@pytest.mark.parametrize(
    "css",
    [
        "div.news-item a",
        "main div.news-list div.news-item h3 a",
        "div > h3 a",
        "div.news-item:first-child h3 a",
        "div:not(.promo) h3",
        'div a[href^="/news"]',
        "div p, h3 a",
        "body *",
    ],
)
def test_selectors_match_what_lxml_matches(css: str) -> None:
    """The linear rewrite of `A B` (an ancestor test) selects exactly what cssselect's
    own translation selects."""
    root = html_document((DATA / "page_listing.html").read_bytes(), None)
    assert selector(css)(root) == CSSSelector(css, translator="html")(root)


def test_a_descendant_selector_asks_for_an_ancestor() -> None:
    """`A B` with a simple A is "B with an A ancestor", never a per-A node-set merge
    (quadratic in libxml2: minutes on a page of 100,000 items)."""
    assert selector("div.news a").path.startswith("descendant-or-self::a[ancestor::div[")
