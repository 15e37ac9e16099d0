"""`monitor feeds ...` run as the real command against feeds and pages on loopback."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import listparser
import pytest

from monitor.config.settings import load_config
from tests.conftest import REPO, run_cli, write_config
from tests.support.daemon import Daemon
from tests.support.feeds import FILLER, UNVEILING_EN, Item, rss
from tests.support.servers import FeedServer

NEWS = rss([UNVEILING_EN, *FILLER], title="Example News", lang="en")
HTML = "text/html; charset=utf-8"
SATURDAY = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def _page(*links: str) -> str:
    heads = "".join(
        f'<link rel="alternate" type="application/rss+xml" title="t" href="{href}">'
        for href in links
    )
    return f"<!doctype html><html><head><title>Site</title>{heads}</head><body>hi</body></html>"


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """The shipped config.yaml (comments, layout and all), in a folder of its own."""
    path = tmp_path / "config.yaml"
    shutil.copyfile(REPO / "config.yaml", path)
    return path


def _added(before: str, after: str) -> str:
    """The one block of lines `after` has that `before` lacks (everything else equal)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    start = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), len(old))
    end = len(new) - (len(old) - start)
    assert new[:start] + new[end:] == old, "lines outside the added block changed"
    return "".join(new[start:end])


def _fails_alone(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("monitor: ")


def _unreachable(server: FeedServer) -> str:
    return "http://127.0.0.1:9/feed.xml"  # the discard port: nothing listens


def _page_without_feeds(server: FeedServer) -> str:
    return server.serve("/plain", _page(), content_type=HTML)


def _two_feeds(server: FeedServer) -> str:
    server.serve("/one.xml", rss(FILLER, title="One"))
    server.serve("/two.xml", rss(FILLER, title="Two"))
    return server.serve("/", _page("/one.xml", "/two.xml"), content_type=HTML)


def _not_found(server: FeedServer) -> str:
    return server.url("/missing.xml")


def _empty_feed(server: FeedServer) -> str:
    return server.serve("/empty.xml", rss([], title="Empty"))


# -- discover ---------------------------------------------------------------------


def test_discover_lists_linked_and_usual_feeds(feed_server: FeedServer, shipped: Path) -> None:
    """A page's <link rel=alternate> feeds and a feed at a usual path are each fetched and
    listed with their title; a link to something that is not a feed is left out."""
    feed_server.serve("/news.xml", NEWS, content_type="application/rss+xml")
    feed_server.serve("/broken.xml", _page(), content_type=HTML)
    feed_server.serve("/atom.xml", rss(FILLER, title="Site Atom"), content_type="text/xml")
    page = feed_server.serve("/", _page("/news.xml", "broken.xml"), content_type=HTML)

    result = run_cli(shipped, "feeds", "discover", page)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f'{feed_server.url("/news.xml")}  "Example News"  (4 entries, lang en)',
        f'{feed_server.url("/atom.xml")}  "Site Atom"  (3 entries)',
    ]
    assert feed_server.hits("/broken.xml") == 1


def test_discover_of_a_feed_is_that_feed(feed_server: FeedServer, shipped: Path) -> None:
    """A feed's own address is its one discovery; no other path is tried."""
    url = feed_server.serve("/news.xml", NEWS, content_type="application/rss+xml")
    result = run_cli(shipped, "feeds", "discover", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f'{url}  "Example News"  (4 entries, lang en)\n'
    assert [path for path, _ in feed_server.requests] == ["/news.xml"]


@pytest.mark.parametrize(
    ("action", "make_url", "message"),
    [
        pytest.param("discover", _page_without_feeds, "monitor: no feeds found at ", id="discover"),
        pytest.param("test", _unreachable, "monitor: cannot read http://127.0.0.1:9/", id="test"),
        pytest.param(
            "test", _empty_feed, " is not a usable feed: a feed with no entries (", id="test-empty"
        ),
    ],
)
def test_read_only_errors(
    feed_server: FeedServer, shipped: Path, action: str, make_url: object, message: str
) -> None:
    """discover and test fail in one line too, with exit 2."""
    result = run_cli(shipped, "feeds", action, make_url(feed_server))  # type: ignore[operator]
    _fails_alone(result)
    assert message in result.stderr


# -- test -------------------------------------------------------------------------


def test_test_prints_each_entry_with_date_and_verdict(
    feed_server: FeedServer, shipped: Path
) -> None:
    """Each entry comes with its date and each story's verdict; nothing is stored."""
    items = [
        Item(UNVEILING_EN.title, UNVEILING_EN.link, UNVEILING_EN.summary, published=SATURDAY),
        *FILLER,
    ]
    url = feed_server.serve("/news.xml", rss(items, title="Example News"))
    config = load_config(shipped)
    story = config.stories[0].id

    result = run_cli(shipped, "feeds", "test", url)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f'{url}  "Example News"  (4 entries)'
    assert lines[1] == f"2026-11-28T09:30Z  [{story}: unveiling]  {UNVEILING_EN.title}"
    assert lines[2].endswith(f"  [{story}: not relevant]  {FILLER[0].title}")
    assert lines[-1] == "4 entries, 1 relevant, 1 with a milestone; nothing was recorded or sent"
    assert not (shipped.parent / "monitor.db").exists()


def test_test_takes_a_configured_name(feed_server: FeedServer, tmp_path: Path) -> None:
    """`feeds test NAME` reads the configured feed of that name."""
    url = feed_server.serve("/mine.xml", rss(FILLER, title="Mine"))
    config = write_config(tmp_path, {"Mine": url})
    result = run_cli(config, "feeds", "test", "Mine")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f'{url}  "Mine"  (3 entries)'


def test_test_of_a_page_says_so(feed_server: FeedServer, shipped: Path) -> None:
    """A page is no feed: one line that points to discover, exit 2."""
    page = feed_server.serve("/", _page("/news.xml"), content_type=HTML)
    result = run_cli(shipped, "feeds", "test", page)
    _fails_alone(result)
    assert result.stderr == (
        f"monitor: {page} is not a usable feed: an HTML page, not a feed "
        f"(monitor feeds discover {page} lists a page's feeds)\n"
    )


# -- add --------------------------------------------------------------------------


def test_add_a_page_appends_its_feed_and_keeps_the_rest(
    feed_server: FeedServer, shipped: Path
) -> None:
    """A page with one feed: that feed is added after the last one, in the file's layout,
    named from its title, with its language; every other byte stays as it was."""
    feed_server.serve("/news.xml", NEWS, content_type="application/rss+xml")
    page = feed_server.serve("/", _page("/news.xml"), content_type=HTML)
    before = shipped.read_text(encoding="utf-8")

    result = run_cli(shipped, "feeds", "add", page, "--interval", "30m")

    assert result.returncode == 0, result.stderr
    url = feed_server.url("/news.xml")
    assert result.stdout == (
        f"added 'example-news' to {shipped}: {url}  \"Example News\"  (4 entries, lang en)\n"
    )
    after = shipped.read_text(encoding="utf-8")
    assert _added(before, after) == (
        f"  - name: example-news\n    url: {url}\n    lang: en\n    interval: 30m\n"
    )
    # Right after the last feed, before the comment that opens the stories.
    assert after.index("example-news") < after.index("# --- stories ---")
    feed = load_config(shipped).feeds[-1]
    assert (feed.name, feed.url, feed.lang) == ("example-news", url, "en")
    assert run_cli(shipped, "check-config").returncode == 0


def test_add_with_options_and_a_name_taken_by_title(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """--name and --lang win over the feed's own; a title-made name is made unique."""
    first = feed_server.serve("/a.xml", rss(FILLER, title="Same Title"))
    second = feed_server.serve("/b.xml", rss(FILLER, title="Same Title"))
    config = write_config(tmp_path, {"same-title": first})

    assert run_cli(config, "feeds", "add", second).returncode == 0
    third = feed_server.serve("/c.xml", rss(FILLER, title="Other", lang="en"))
    result = run_cli(config, "feeds", "add", third, "--name", "Mine", "--lang", "ko")

    assert result.returncode == 0, result.stderr
    feeds = load_config(config).feeds
    assert [(f.name, f.url, f.lang) for f in feeds] == [
        ("same-title", first, None),
        ("same-title-2", second, None),
        ("Mine", third, "ko"),
    ]


# -- every error: one line, exit 2, the file unchanged -------------------------------


@pytest.mark.parametrize(
    ("make_url", "message"),
    [
        pytest.param(_unreachable, "monitor: cannot read http://127.0.0.1:9/", id="unreachable"),
        pytest.param(_page_without_feeds, "monitor: no feed found at ", id="page-without-feeds"),
        pytest.param(_two_feeds, "monitor: 2 feeds found at ", id="page-with-two-feeds"),
        pytest.param(_not_found, "monitor: cannot read ", id="http-404"),
        pytest.param(_empty_feed, "monitor: no feed found at ", id="feed-without-entries"),
    ],
)
def test_add_errors_change_nothing(
    feed_server: FeedServer, shipped: Path, make_url: object, message: str
) -> None:
    """A URL that yields no single usable feed: one line, exit 2, the config's bytes kept."""
    before = shipped.read_bytes()
    result = run_cli(shipped, "feeds", "add", make_url(feed_server))  # type: ignore[operator]
    _fails_alone(result)
    assert result.stderr.startswith(message)
    assert shipped.read_bytes() == before


def test_add_duplicate_name_or_url_changes_nothing(feed_server: FeedServer, tmp_path: Path) -> None:
    """A name or an address already configured is refused."""
    url = feed_server.serve("/a.xml", rss(FILLER, title="A"))
    other = feed_server.serve("/b.xml", rss(FILLER, title="B"))
    config = write_config(tmp_path, {"Existing": url})
    before = config.read_bytes()

    by_name = run_cli(config, "feeds", "add", other, "--name", "Existing")
    _fails_alone(by_name)
    assert by_name.stderr == "monitor: a feed named 'Existing' is already configured\n"
    by_url = run_cli(config, "feeds", "add", url)
    _fails_alone(by_url)
    assert by_url.stderr == f"monitor: {url} is already configured, as 'Existing'\n"
    assert config.read_bytes() == before


def test_add_with_a_bad_interval_changes_nothing(feed_server: FeedServer, shipped: Path) -> None:
    """An --interval that is no duration is refused before anything is fetched."""
    url = feed_server.serve("/a.xml", rss(FILLER, title="A"))
    before = shipped.read_bytes()
    result = run_cli(shipped, "feeds", "add", url, "--interval", "soon")
    assert result.returncode == 2
    assert "not a duration: 'soon'" in result.stderr
    assert feed_server.requests == []
    assert shipped.read_bytes() == before


def test_add_to_an_unwritable_config_changes_nothing(
    feed_server: FeedServer, shipped: Path
) -> None:
    """A disk that takes no more bytes: one line, exit 2, the old file whole, no temp file."""
    url = feed_server.serve("/news.xml", NEWS)
    before = shipped.read_bytes()
    result = run_cli(shipped, "feeds", "add", url, room=100)
    _fails_alone(result)
    assert result.stderr.startswith(f"monitor: cannot write {shipped}, nothing written: ")
    assert shipped.read_bytes() == before
    assert sorted(p.name for p in shipped.parent.iterdir()) == ["config.yaml"]


# -- import and export --------------------------------------------------------------


def _opml(*outlines: tuple[str, str]) -> str:
    body = "".join(f'<outline text="{t}" type="rss" xmlUrl="{u}"/>' for t, u in outlines)
    return f'<?xml version="1.0"?><opml version="2.0"><head/><body>{body}</body></opml>'


def test_import_adds_new_feeds_and_skips_known_ones(tmp_path: Path) -> None:
    """Every outline whose xmlUrl is not configured is added under its title; a known one
    is skipped with a note; nothing is fetched."""
    config = write_config(tmp_path, {"Known": "https://known.example/feed"})
    before = config.read_text(encoding="utf-8")
    opml = tmp_path / "list.opml"
    opml.write_text(
        _opml(
            ("Known again", "https://known.example/feed"),
            ("Known", "https://other.example/rss"),
            ("Новости", "https://novosti.example/rss?x=1&amp;y=2"),
        ),
        encoding="utf-8",
    )

    result = run_cli(config, "feeds", "import", str(opml))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "skipped https://known.example/feed: already configured, as 'Known'",
        f"added 2 feeds to {config}, skipped 1 already there",
    ]
    _added(before, config.read_text(encoding="utf-8"))
    feeds = load_config(config).feeds
    assert [(f.name, f.url) for f in feeds] == [
        ("Known", "https://known.example/feed"),
        ("Known 2", "https://other.example/rss"),
        ("Новости", "https://novosti.example/rss?x=1&y=2"),
    ]


def test_export_reads_back_identically(shipped: Path, tmp_path: Path) -> None:
    """The OPML 2.0 export lists every feed; listparser reads it back to the same names and
    addresses, and importing it into an empty list of feeds rebuilds the same list."""
    result = run_cli(shipped, "feeds", "export")
    assert result.returncode == 0, result.stderr
    feeds = load_config(shipped).feeds
    parsed = listparser.parse(result.stdout.encode())
    assert parsed.version == "opml2"
    assert [(f.title, f.url) for f in parsed.feeds] == [(f.name, f.url) for f in feeds]

    exported = tmp_path / "feeds.opml"
    exported.write_text(result.stdout, encoding="utf-8")
    assert run_cli(shipped, "feeds", "import", str(exported)).stdout.endswith(
        f"added 0 feeds to {shipped}, skipped {len(feeds)} already there\n"
    )
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    other = write_config(fresh, {"placeholder": "https://placeholder.example/feed"})
    assert run_cli(other, "feeds", "import", str(exported)).returncode == 0
    rebuilt = load_config(other).feeds[1:]
    assert [(f.name, f.url) for f in rebuilt] == [(f.name, f.url) for f in feeds]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("<opml><body><outline", "monitor: not a valid OPML file: ", id="truncated"),
        pytest.param("<html><body/></html>", "monitor: not an OPML file: ", id="html"),
        pytest.param("", "monitor: not a valid OPML file: ", id="empty"),
        pytest.param(
            _opml(("Known", "https://known.example/feed"), ("Bad", "ftp://files.example/feed")),
            "monitor: the config would be invalid, nothing written: feeds[1].url: ",
            id="not-http",
        ),
    ],
)
def test_import_errors_change_nothing(tmp_path: Path, content: str, message: str) -> None:
    """An invalid OPML file (or one whose feeds the config refuses): one line, exit 2."""
    config = write_config(tmp_path, {"Known": "https://known.example/feed"})
    before = config.read_bytes()
    opml = tmp_path / "list.opml"
    opml.write_text(content, encoding="utf-8")
    result = run_cli(config, "feeds", "import", str(opml))
    _fails_alone(result)
    assert result.stderr.startswith(message)
    assert config.read_bytes() == before


def test_import_of_a_missing_file(tmp_path: Path) -> None:
    """A file that cannot be read: one line, exit 2."""
    config = write_config(tmp_path, {"Known": "https://known.example/feed"})
    result = run_cli(config, "feeds", "import", str(tmp_path / "nope.opml"))
    _fails_alone(result)
    assert result.stderr.startswith("monitor: cannot read ")


@pytest.mark.slow
def test_a_running_service_polls_the_added_feed(feed_server: FeedServer, tmp_path: Path) -> None:
    """`feeds add` needs no restart: the service's file watch applies the new config."""
    a = feed_server.serve("/a.xml", rss(FILLER, title="A"))
    b = feed_server.serve("/b.xml", rss(FILLER, title="B"))
    config = write_config(tmp_path, {"a": a}, fetch={"interval": "1h"})
    with Daemon(config, run_args=("--reload-check", "0.2s")) as daemon:
        daemon.wait_for_log("service.started")
        assert run_cli(config, "feeds", "add", b).returncode == 0
        daemon.wait_until(
            lambda: feed_server.hits("/b.xml") >= 2,
            what="feed b polled by the service, after the add's own look",
        )
        assert daemon.wait_for_log("config.reloaded")["reason"] == "file"
    assert daemon.returncode == 0


def test_a_configured_telegram_channel_is_tested_as_the_service_reads_it(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`feeds test NAME` of a `telegram:` source reads its posts (not "no feed"), and
    `feeds export` leaves it out of the OPML, saying so."""
    preview = (REPO / "tests/data/telegram_channel.html").read_bytes()
    url = feed_server.serve("/s/kursk_gov_test", preview, content_type=HTML)
    config = write_config(tmp_path, {"gov": {"telegram": "kursk_gov_test", "url": url}})

    tested = run_cli(config, "feeds", "test", "gov")
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.splitlines()[0].startswith(f"{url}  ")
    assert "nothing was recorded or sent" in tested.stdout.splitlines()[-1]
    assert not tested.stdout.splitlines()[-1].startswith("0 entries")

    exported = run_cli(config, "feeds", "export")
    assert exported.returncode == 0, exported.stderr
    assert url not in exported.stdout
    assert exported.stderr == "left out 1 sources that are no feed (telegram:, page:)\n"
