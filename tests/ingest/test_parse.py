"""The parse stage: formats, identity, plain text, encodings, refusals and hostile input."""

from __future__ import annotations

import hashlib
import http.server
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from lxml import etree

from monitor.core.errors import NotAFeed
from monitor.ingest import read_xml
from monitor.ingest.entry import Entry, ParsedFeed
from monitor.ingest.normalize import (
    OUTLET_MAX_CHARS,
    SUMMARY_MAX_CHARS,
    TITLE_MAX_CHARS,
    URL_MAX_CHARS,
    entry_key,
)
from monitor.ingest.parse import parse
from monitor.ingest.read_feedparser import parse_with_feedparser, without_dtd
from monitor.ingest.read_xml import parse_fast

DATA = Path(__file__).resolve().parents[1] / "data"
BASE = "https://base.example.com/feeds/main.xml"


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def identity(feed: ParsedFeed) -> list[tuple[str, str | None, str, datetime | None]]:
    return [(e.key, e.url, e.title, e.published) for e in feed.entries]


# --- formats ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    file: str
    parser: str
    title: str
    url: str | None
    guid: str | None = None
    published: datetime | None = None
    lang: str | None = None
    content_type: str | None = None


FORMATS = [
    pytest.param(
        Case(
            "rss091.xml",
            "feedparser",  # its Netscape DOCTYPE keeps it off the fast path
            "Site chosen for the memorial",
            "http://news.example.com/articles/101.html",
            lang="en-us",
        ),
        id="rss-0.91",
    ),
    pytest.param(
        Case(
            "rss092.xml",
            "lxml",
            "Site chosen for the memorial",
            "http://news.example.com/articles/102.html",
        ),
        id="rss-0.92",
    ),
    pytest.param(
        Case(
            "rss10.rdf",
            "lxml",
            "Design of the memorial revealed",
            "http://news.example.com/articles/103.html",
            guid="http://news.example.com/articles/103.html",
            published=datetime(2026, 11, 20, 6, 30, tzinfo=UTC),
            lang="ru",
        ),
        id="rss-1.0-rdf",
    ),
    pytest.param(
        Case(
            "rss20.xml",
            "lxml",
            "Memorial unveiled in Kursk & region",
            "https://base.example.com/articles/104.html?page=2",
            guid="news-104",
            published=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
            lang="en-us",
        ),
        id="rss-2.0",
    ),
    pytest.param(
        Case(
            "atom10.xml",
            "lxml",
            "Design revealed",
            "https://atom.example.com/2026/11/design",
            guid="tag:atom.example.com,2026:design",
            published=datetime(2026, 11, 20, 6, 30, tzinfo=UTC),
            lang="en-gb",
        ),
        id="atom-1.0",
    ),
    pytest.param(
        Case(
            "jsonfeed10.json",
            "jsonfeed",
            "Site & design",
            "https://json.example.com/articles/1",
            guid="json-1",
            published=datetime(2026, 11, 20, 6, 30, tzinfo=UTC),
        ),
        id="jsonfeed-1.0",
    ),
    pytest.param(
        Case(
            "jsonfeed11.json",
            "jsonfeed",
            "Открытие памятника",
            "https://json.example.com/articles/3",
            guid="https://json.example.com/articles/3",
            lang="ru",
        ),
        id="jsonfeed-1.1",
    ),
    pytest.param(
        Case(
            "cp1251.xml",
            "lxml",
            "Выбрано место для памятника",
            "https://kursk.example.ru/news/1",
            guid="https://kursk.example.ru/news/1",
            published=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
            lang="ru",
        ),
        id="windows-1251-in-prolog",
    ),
    pytest.param(
        Case(
            "euckr.xml",
            "lxml",
            "기념비 장소 선정",
            "https://kr.example.com/news/1",
            guid="kr-1",
            published=datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
        ),
        id="euc-kr-in-prolog",
    ),
    pytest.param(
        Case(
            "euckr_header_only.xml",
            "feedparser",
            "기념비 장소 선정",
            "https://kr.example.com/news/1",
            guid="kr-1",
            published=datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
            content_type="application/rss+xml; charset=EUC-KR",
        ),
        id="euc-kr-in-content-type-only",
    ),
]


@pytest.mark.parametrize("case", FORMATS)
def test_first_entry_of_each_format(case: Case) -> None:
    """Each dialect and encoding yields the expected first entry, read by the expected parser."""
    feed = parse(read(case.file), BASE, case.content_type)
    first = feed.entries[0]
    assert (feed.parser, first.title, first.url, first.guid, first.published, first.lang) == (
        case.parser,
        case.title,
        case.url,
        case.guid,
        case.published,
        case.lang,
    )


BOTH_PARSERS = [
    pytest.param(parse_fast, id="fast-path"),
    pytest.param(parse_with_feedparser, id="feedparser"),
]
XML_SAMPLES = ["rss092.xml", "rss10.rdf", "rss20.xml", "atom10.xml", "google_news.xml"]
XML_SAMPLES += ["cp1251.xml", "euckr.xml", "empty_channel.xml", "wordpress.xml", "media_rss.xml"]
XML_SAMPLES += ["youtube_atom.xml"]


@pytest.mark.parametrize("name", XML_SAMPLES)
def test_both_parsers_agree_on_identity_text_and_dates(name: str) -> None:
    """Fast path and feedparser give the same keys, URLs, titles, summaries, dates and outlets."""
    fast = parse_fast(read(name), BASE, None)
    slow = parse_with_feedparser(read(name), BASE, None)
    assert fast is not None
    assert fast.parser == "lxml"
    assert identity(fast) == identity(slow)
    assert [(e.summary, e.outlet, e.lang, e.guid) for e in fast.entries] == [
        (e.summary, e.outlet, e.lang, e.guid) for e in slow.entries
    ]
    assert (fast.title, fast.lang) == (slow.title, slow.lang)


@pytest.mark.parametrize("read_feed", BOTH_PARSERS)
def test_keys_follow_guid_then_link_then_title(
    read_feed: Callable[[bytes, str, str | None], ParsedFeed | None],
) -> None:
    """GUID, else canonical link, else title + link decide the key, the same on both paths."""
    feed = read_feed(read("rss20.xml"), BASE, None)
    assert feed is not None
    with_guid, link_only, neither, guid_as_link = feed.entries
    assert with_guid.key == entry_key("news-104", with_guid.url, with_guid.title, None)
    assert link_only.guid is None
    assert link_only.key == entry_key(
        None, "https://base.example.com/feeds/articles/105.html", "", ""
    )
    assert neither.url is None
    assert neither.key == entry_key(None, None, "Neither GUID nor link", None)
    assert guid_as_link.url == "https://news.example.com/articles/107.html"


@pytest.mark.parametrize(
    ("guid", "url", "title", "link", "identity_text"),
    [
        pytest.param("g-1", "https://x.example/a", "T", "l", "guid:g-1", id="guid-wins"),
        pytest.param(None, "https://x.example/a", "T", "l", "url:https://x.example/a", id="url"),
        pytest.param(None, None, "T", "urn:x", "hash:T\nurn:x", id="title-and-link"),
        pytest.param("", None, "T", None, "hash:T\n", id="empty-guid-is-none"),
    ],
)
def test_entry_key_digests_the_documented_identity(
    guid: str | None, url: str | None, title: str, link: str | None, identity_text: str
) -> None:
    """The key is blake2b-128 of "guid:…", "url:…" or "hash:title\\nlink", in that order."""
    expected = hashlib.blake2b(identity_text.encode(), digest_size=16).hexdigest()
    assert entry_key(guid, url, title, link) == expected


def test_media_description_is_the_summary_when_the_item_has_none() -> None:
    """Media RSS: a nested media:description stands in for a missing description."""
    entries = parse(read("media_rss.xml"), BASE).entries
    assert [e.summary for e in entries] == [
        "The bronze figures were presented on Thursday.",
        "A crowd at the square.",
    ]
    assert parse(read("youtube_atom.xml"), BASE).entries[0].summary == (
        "The monument is unveiled in the square."
    )


def test_double_escaped_ampersands_in_links_are_undone() -> None:
    """A link written with "&amp;amp;" means "&", as feedparser also reads it."""
    assert parse(read("media_rss.xml"), BASE).entries[0].url == (
        "https://wire.example.com/story/5?ref=rss"
    )


def realistic_feed(items: int = 40) -> bytes:
    """An RSS 2.0 feed shaped like a news site's: ~1.7 KB per item, HTML in CDATA."""
    rng = random.Random(1)
    words = [
        "kursk",
        "monument",
        "site",
        "design",
        "unveiling",
        "soldiers",
        "region",
        "official",
        "said",
        "city",
    ]

    def para(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n)).capitalize() + "."

    body = [
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">'
        "<channel><title>News</title><link>https://news.example.com/</link>"
        "<description>News</description><language>ru</language>"
        '<atom:link href="https://news.example.com/rss" rel="self" type="application/rss+xml"/>'
    ]
    for i in range(items):
        html = f"<p>{para(60)} <a href='/tag/kursk'>{para(3)}</a> {para(40)}</p><p>{para(50)}</p>"
        body.append(
            f"<item><title>{para(10)} &amp; more #{i}</title>"
            f"<link>https://news.example.com/2026/11/{i}/slug-{i}/?utm_source=rss</link>"
            f'<guid isPermaLink="false">news-{i}</guid>'
            f"<pubDate>Thu, {1 + i % 28:02d} Nov 2026 {i % 24:02d}:15:00 +0300</pubDate>"
            f"<dc:creator>Reporter {i}</dc:creator><category>World</category>"
            f"<description><![CDATA[{html}]]></description></item>"
        )
    body.append("</channel></rss>")
    return "".join(body).encode()


def test_a_realistic_news_feed_takes_the_fast_path_and_matches_feedparser() -> None:
    """A typical 40-item news feed is read by lxml, with every field equal to feedparser's."""
    body = realistic_feed()
    fast = parse(body, BASE, "application/rss+xml; charset=utf-8")
    assert fast.parser == "lxml"
    assert len(fast.entries) == 40
    assert fast.entries == parse_with_feedparser(body, BASE, "application/rss+xml").entries


def test_relative_links_resolve_against_the_base_url() -> None:
    """A relative link becomes absolute against the URL the feed came from."""
    feed = parse(read("rss20.xml"), "https://mirror.example.net/rss/all", None)
    assert feed.entries[1].url == "https://mirror.example.net/rss/articles/105.html"


def test_relative_guid_is_kept_as_written_when_the_feed_moves() -> None:
    """A relative permalink GUID does not absorb the feed URL, so a moved feed keeps its keys."""
    body = b"""<rss version="2.0"><channel><title>t</title>
    <item><title>a</title><guid>article-7</guid></item></channel></rss>"""
    keys = {
        read_feed(body, base, None).entries[0].key  # type: ignore[union-attr]
        for read_feed in (parse_fast, parse_with_feedparser)
        for base in ("https://old.example.com/rss", "https://new.example.com/feed")
    }
    assert len(keys) == 1


# --- plain text ------------------------------------------------------------------------------


@pytest.mark.parametrize("read_feed", BOTH_PARSERS)
def test_titles_and_summaries_become_plain_text(
    read_feed: Callable[[bytes, str, str | None], ParsedFeed | None],
) -> None:
    """Markup and entities in titles and summaries become text; scripts and handlers vanish."""
    feed = read_feed(read("rss20.xml"), BASE, None)
    assert feed is not None
    first = feed.entries[0]
    assert first.title == "Memorial unveiled in Kursk & region"
    assert first.summary == "The monument was unveiled on Friday. Hundreds attended."
    for text in (first.title, first.summary):
        assert "alert" not in text
        assert "<" not in text
        assert "color" not in text


def test_atom_xhtml_content_becomes_text_when_there_is_no_summary() -> None:
    """An Atom entry without summary takes its XHTML content, as text."""
    second = parse(read("atom10.xml"), BASE).entries[1]
    assert second.summary == "Inline XHTML & text."


def test_summary_is_capped() -> None:
    """A very long description is cut to SUMMARY_MAX_CHARS characters, on a word boundary."""
    body = (
        b"<rss version='2.0'><channel><title>t</title><item><title>long</title><description>"
        + b"words " * 5000
        + b"</description></item></channel></rss>"
    )
    summary = parse(body, BASE).entries[0].summary
    assert len(summary) <= SUMMARY_MAX_CHARS
    assert summary.endswith(" words…")


# --- text made safe at the boundary ------------------------------------------------------------


def _rss_items(*items: str) -> bytes:
    channel = "<rss version='2.0'><channel><title>t</title>{}</channel></rss>"
    return channel.format("".join(items)).encode()


def _json_feed(item: dict[str, object], **feed: object) -> bytes:
    document = {"version": "https://jsonfeed.org/version/1.1", "items": [item], **feed}
    return json.dumps(document).encode()


def test_every_text_field_is_cleaned() -> None:
    """Title, summary, GUID and language lose controls and bidi overrides; surrogates are U+FFFD."""
    raw_id = "id-\x1b[2J-\ud800"
    body = _json_feed(
        {
            "id": raw_id,
            "url": "https://wire.example/a",
            "title": "\x1b]0;x\x07Monument \ud800unveiled\x08 in \u202eKursk\x00",
            "summary": "<p>Lead&#27; text\x9b\x81 with\rbreak \u200fmark</p>",
            "language": "en\x00-gb",
        },
        title="Feed \x07title",
    )
    feed = parse(body, BASE)
    entry = feed.entries[0]
    assert entry.title == "]0;xMonument \ufffdunveiled in Kursk"
    # C1 controls are read as Windows-1252 first (U+009B is "›"); those it lacks go.
    assert entry.summary == "Lead text› with break \u200fmark"
    assert (entry.guid, entry.lang, feed.title) == ("id-[2J-\ufffd", "en-gb", "Feed title")
    assert entry.key == entry_key(raw_id, entry.url, entry.title, entry.url)


def test_feedparser_path_cleans_the_outlet_too() -> None:
    """Ill-formed XML read by feedparser gets the same cleaning, the outlet included."""
    body = (
        b"<rss version='2.0'><channel><title>t</title><item><title>A\x1b[31m red</title>"
        b"<link>https://wire.example/b</link><source url='https://o.example/'>Out\x07let &amp;"
        b" Co</source></item></channel></rss>"
    )
    assert parse_fast(body, BASE, None) is None
    entry = parse(body, BASE).entries[0]
    assert (entry.title, entry.outlet) == ("A[31m red", "Outlet & Co")


def test_title_and_outlet_are_capped_and_identity_kept() -> None:
    """A huge title is capped; the key still tells apart titles that differ past the cap."""
    long_title = "Monument unveiled " + "and more words " * 70_000
    feed = parse(
        _rss_items(
            f"<item><title>{long_title}x</title><source url='https://o.example/'>"
            f"{'Outlet ' * 100}</source></item>",
            f"<item><title>{long_title}y</title></item>",
        ),
        BASE,
    )
    first, second = feed.entries
    assert len(first.title) <= TITLE_MAX_CHARS
    assert first.title.endswith("…")
    assert first.title[:-1].split()[-1] in {"and", "more", "words"}
    assert first.outlet is not None
    assert len(first.outlet) <= OUTLET_MAX_CHARS
    assert first.key != second.key


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("https://wire.example/a\x1b[2J\x07", id="esc-bel"),
        pytest.param("https://wire.example/\u202egpj.exe", id="bidi-override"),
        pytest.param("https://wire.example/a?q=\x9b&r=\x00#\x08", id="c1-nul-fragment"),
        pytest.param("https://user\x1b@wire.example/a", id="user-info"),
    ],
)
def test_links_carry_no_controls(link: str) -> None:
    """A link's controls are percent-encoded or dropped by the canonical form, never kept raw."""
    url = parse(_json_feed({"id": "1", "url": link, "title": "t"}), BASE).entries[0].url
    assert url is not None
    assert url.isascii()
    assert url.isprintable()


def test_a_link_too_long_to_index_is_no_link() -> None:
    """A canonical link over URL_MAX_CHARS is dropped; the key still rests on the full link."""
    long_link = "https://wire.example/" + "a" * URL_MAX_CHARS
    entry = parse(_json_feed({"url": long_link, "title": "t"}), BASE).entries[0]
    assert entry.url is None
    assert entry.key == entry_key(None, long_link, "t", long_link)
    fine = "https://wire.example/" + "a" * (URL_MAX_CHARS - 30)
    assert parse(_json_feed({"url": fine, "title": "t"}), BASE).entries[0].url == fine


def test_google_news_source_names_the_outlet() -> None:
    """Google News puts the real publisher in <source>: it becomes the entry's outlet."""
    entry = parse(read("google_news.xml"), BASE).entries[0]
    assert (entry.outlet, entry.lang) == ("Example Times", "en-us")


def test_atom_source_title_names_the_outlet() -> None:
    """An Atom entry's <source><title> becomes its outlet."""
    assert parse(read("atom10.xml"), BASE).entries[0].outlet == "Example Wire"


def test_entry_language_wins_over_the_feed_language() -> None:
    """xml:lang or dc:language on the entry overrides the feed's language, lower-cased."""
    feed = parse(read("atom10.xml"), BASE)
    assert [e.lang for e in feed.entries] == ["en-gb", "ru"]
    assert parse(read("rss20.xml"), BASE).entries[3].lang == "ru"


# --- dates -------------------------------------------------------------------------------------

DATES = [
    pytest.param(
        "Fri, 20 Nov 2026 12:00:00 +0300", datetime(2026, 11, 20, 9, 0), id="rfc822-offset"
    ),
    pytest.param("Fri, 20 Nov 2026 12:00:00 GMT", datetime(2026, 11, 20, 12, 0), id="rfc822-gmt"),
    pytest.param("20 Nov 2026 12:00:00 EST", datetime(2026, 11, 20, 17, 0), id="rfc822-est"),
    pytest.param("Fri, 20 Nov 2026 12:00 -0130", datetime(2026, 11, 20, 13, 30), id="rfc822-no-s"),
    pytest.param("Sat, 31 Dec 2026 23:30:00 -0100", datetime(2027, 1, 1, 0, 30), id="year-turn"),
    pytest.param("2026-11-20T09:30:00Z", datetime(2026, 11, 20, 9, 30), id="rfc3339-z"),
    pytest.param("2026-11-20T09:30:00.123+03:00", datetime(2026, 11, 20, 6, 30), id="rfc3339-frac"),
    pytest.param("2026-11-20", datetime(2026, 11, 20), id="date-only-via-feedparser"),
    pytest.param("20.11.2026", None, id="unreadable-is-none"),
    pytest.param("Fri, 31 Feb 2026 12:00:00 GMT", None, id="impossible-day-is-none"),
]


@pytest.mark.parametrize(("text", "expected"), DATES)
def test_pub_dates_become_aware_utc_the_same_on_both_paths(
    text: str, expected: datetime | None
) -> None:
    """Dates become aware UTC (or None when unreadable), identical from both parsers."""
    body = (
        "<rss version='2.0'><channel><title>t</title><item><title>a</title>"
        f"<pubDate>{text}</pubDate></item></channel></rss>"
    ).encode()
    want = expected.replace(tzinfo=UTC) if expected else None
    assert parse(body, BASE).entries[0].published == want
    assert parse_with_feedparser(body, BASE, None).entries[0].published == want
    fast = parse_fast(body, BASE, None)
    if fast is not None:  # the fast path reads RFC 822 and RFC 3339 only, and declines the rest
        assert fast.entries[0].published == want


def test_atom_entry_with_only_updated_uses_updated() -> None:
    """Without <published>, an Atom entry's <updated> is its date."""
    second = parse(read("atom10.xml"), BASE).entries[1]
    assert second.published == datetime(2026, 11, 21, 13, 0, tzinfo=UTC)


# --- what is not a feed --------------------------------------------------------------------------

NOT_FEEDS = [
    pytest.param(b"", id="empty"),
    pytest.param(b" \r\n\t ", id="whitespace"),
    pytest.param(read("html_page.html"), id="html-page"),
    pytest.param(b"<?xml version='1.0'?><html><body>hi</body></html>", id="xhtml-page"),
    pytest.param(b"\xef\xbb\xbf<!doctype html><title>x</title>", id="html-with-bom"),
    pytest.param(random.Random(7).randbytes(4096), id="random-bytes"),
    pytest.param(b'{"version": "1.0", "items": []}', id="json-not-jsonfeed"),
    pytest.param(b'[{"title": "x"}]', id="json-array"),
    pytest.param(b"{not json", id="broken-json"),
    pytest.param(b"<?xml version='1.0'?><config><item>x</item></config>", id="other-xml"),
]


@pytest.mark.parametrize("body", NOT_FEEDS)
def test_not_a_feed(body: bytes) -> None:
    """Bodies that are not RSS, Atom or JSON Feed raise NotAFeed."""
    with pytest.raises(NotAFeed):
        parse(body, BASE, "text/html")


def test_a_feed_without_items_is_still_a_feed() -> None:
    """An empty channel is a valid feed with no entries, not an error."""
    feed = parse(read("empty_channel.xml"), BASE)
    assert (feed.entries, feed.title) == ([], "Quiet")


def test_ill_formed_feed_falls_back_to_feedparser() -> None:
    """Ill-formed XML (an HTML entity with no DTD) still yields its entries, via feedparser."""
    body = b"<rss version='2.0'><channel><title>t</title><item><title>caf&eacute;</title></item>"
    feed = parse(body, BASE)
    assert (feed.parser, feed.entries[0].title) == ("feedparser", "café")


# --- hostile XML: entity expansion and external entities stay inert ----------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        body = b'<!ENTITY leak "FETCHED-FROM-NETWORK">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[str]:
    """A loopback HTTP server that records every request it gets."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def loopback(loopback_server: str) -> str:
    """The recording server's base URL, with its request log emptied for this test."""
    _Recorder.requests = []
    return loopback_server


def hostile_documents(http_base: str, secret_file: Path) -> dict[str, bytes]:
    item = "<item><title>T &xxe; end</title><link>https://x.example/1</link>"
    item += "<description>D &xxe; end</description></item>"

    def rss(doctype: str) -> bytes:
        return (
            f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>t</title>'
            f"{item}</channel></rss>"
        ).encode()

    utf16 = rss(f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">]>').decode()
    # In UTF-7, "+ADwAIQ-" is "<!": no "<!DOCTYPE" in the bytes, one after decoding.
    laughs = read("billion_laughs_one_line.xml").split(b"?>", 1)[1]
    utf7 = b'<?xml version="1.0" encoding="utf-7"?>' + laughs.replace(b"<!", b"+ADwAIQ-")
    return {
        "billion-laughs": read("billion_laughs.xml"),
        "billion-laughs-one-line": read("billion_laughs_one_line.xml"),
        "xxe-etc-passwd": rss('<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
        "xxe-local-file": rss(f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">]>'),
        "xxe-http": rss(f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{http_base}/xxe">]>'),
        "xxe-http-public": rss(f'<!DOCTYPE rss [<!ENTITY xxe PUBLIC "-//X//Y" "{http_base}/p">]>'),
        "parameter-entity": rss(f'<!DOCTYPE rss [<!ENTITY % pe SYSTEM "{http_base}/pe"> %pe;]>'),
        "external-dtd": rss(f'<!DOCTYPE rss SYSTEM "{http_base}/evil.dtd">'),
        "billion-laughs-utf7": utf7,
        "xxe-utf16": utf16.replace('version="1.0"', 'version="1.0" encoding="utf-16"').encode(
            "utf-16"
        ),
    }


HOSTILE = [
    "billion-laughs",
    "billion-laughs-one-line",
    "xxe-etc-passwd",
    "xxe-local-file",
    "xxe-http",
    "xxe-http-public",
    "parameter-entity",
    "external-dtd",
    "xxe-utf16",
    "billion-laughs-utf7",
]
SECRET = "TOP-SECRET-MARKER"


def leaked(text: str) -> bool:
    return "lollol" in text or "root:" in text or SECRET in text or "FETCHED" in text


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize(
    "read_feed",
    [pytest.param(parse, id="parse"), pytest.param(parse_with_feedparser, id="feedparser")],
)
def test_entities_stay_inert(
    name: str,
    read_feed: Callable[[bytes, str, str | None], ParsedFeed],
    loopback: str,
    tmp_path: Path,
) -> None:
    """No entity expands, no file is read, nothing is fetched, and the parse is quick."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    body = hostile_documents(loopback, secret)[name]
    started = time.perf_counter()
    try:
        feed = read_feed(body, BASE, None)
    except NotAFeed:
        feed = ParsedFeed(entries=[])
    elapsed = time.perf_counter() - started
    texts = [feed.title or ""] + [f"{e.title} {e.summary} {e.url}" for e in feed.entries]
    assert not any(leaked(t) for t in texts)
    assert _Recorder.requests == []
    # A generous bound on a shared machine: an expanding parser needs ~0.6 s for 8 MB and
    # far longer for the full document; an inert one takes milliseconds.
    assert elapsed < 2.0


@pytest.mark.parametrize("name", HOSTILE)
def test_fast_path_declines_every_document_with_a_dtd(
    name: str, loopback: str, tmp_path: Path
) -> None:
    """Documents that declare a DTD never reach lxml: the fast path hands them to feedparser."""
    body = hostile_documents(loopback, tmp_path / "secret.txt")[name]
    assert parse_fast(body, BASE, None) is None


@pytest.mark.parametrize("name", HOSTILE)
def test_fast_path_xml_parser_is_inert_even_if_handed_a_dtd(
    name: str, loopback: str, tmp_path: Path
) -> None:
    """Defence in depth: the fast path's lxml parser itself expands and fetches nothing."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    body = hostile_documents(loopback, secret)[name]
    started = time.perf_counter()
    try:
        root = etree.fromstring(body, read_xml._xml_parsers.strict)
        text = "".join(root.itertext()) + etree.tostring(root, encoding="unicode")
    except etree.XMLSyntaxError:
        text = ""
    assert not leaked(text)
    assert _Recorder.requests == []
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "x>y]"> <!-- ] > --> ]><r/>',
            b'<?xml version="1.0"?><r/>',
            id="internal-subset-with-brackets-in-literals-and-comments",
        ),
        pytest.param(
            b'<!DOCTYPE rss PUBLIC "-//N//DTD RSS 0.91//EN" "http://x.example/rss.dtd">\n<rss/>',
            b"\n<rss/>",
            id="external-doctype",
        ),
        pytest.param(
            b"<r><d><![CDATA[<!DOCTYPE html>]]></d></r>",
            b"<r><d><![CDATA[<!DOCTYPE html>]]></d></r>",
            id="doctype-text-in-content-kept",
        ),
        pytest.param(
            b"<!-- <!DOCTYPE in a comment> --><!DOCTYPE r>\n<r/>",
            b"<!-- <!DOCTYPE in a comment> -->\n<r/>",
            id="comment-before-doctype",
        ),
        pytest.param(b'<!DOCTYPE r [ <!ENTITY a "b"> <r/>', b"", id="unterminated-dtd-dropped"),
    ],
)
def test_without_dtd_removes_only_prolog_declarations(body: bytes, expected: bytes) -> None:
    """DOCTYPE and ENTITY declarations leave the prolog; the same text in content stays."""
    assert without_dtd(body, None) == (expected, None)


def test_without_dtd_transcodes_a_utf16_document_that_declares_a_dtd() -> None:
    """A UTF-16 document with a DTD reaches feedparser as UTF-8 without it."""
    body = '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE r [<!ENTITY a "b">]><r>é</r>'
    stripped, content_type = without_dtd(body.encode("utf-16"), "application/xml")
    assert stripped == "<?xml version='1.0' encoding='utf-8'?><r>é</r>".encode()
    assert content_type == "application/xml; charset=utf-8"


def test_entry_is_frozen_and_text_joins_title_and_summary() -> None:
    """Entries from parse are immutable values; .text is what rules read."""
    entry: Entry = parse(read("rss092.xml"), BASE).entries[0]
    assert entry.text == "Site chosen for the memorial\nThe regional administration named the park."
    with pytest.raises(AttributeError):
        entry.title = "changed"  # type: ignore[misc]
