"""Source kinds in `feeds:`: feeds, Telegram channels and pages, checked at load time."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config.settings import Config, parse_config
from monitor.core.errors import ConfigError
from monitor.ingest.parse import parse
from monitor.ingest.sources import PageSource
from tests.conftest import REPO, run_cli, shipped_stories

FEED = "  - name: wire\n    url: https://wire.example/rss\n"


def _config(feeds: str) -> Config:
    return parse_config("feeds:\n" + feeds + "\n" + shipped_stories(), Path("config.yaml"), {})


def test_three_kinds_of_source() -> None:
    """A feed keeps its URL; a channel polls its preview; a page polls its own URL."""
    config = _config(
        FEED
        + "  - name: governor\n    telegram: kursk_gov_test\n"
        + "  - name: mirror\n    telegram: kursk_gov_test\n    url: http://127.0.0.1:9/s/x\n"
        + "  - name: city\n    page: https://city.example/news/\n"
        + '    items: "div.news-item"\n    title: h3\n    date: "time"\n    summary: p.lead\n'
    )
    wire, governor, mirror, city = config.feeds
    assert (wire.kind, wire.url) == ("feed", "https://wire.example/rss")
    assert (governor.kind, governor.url) == ("telegram", "https://t.me/s/kursk_gov_test")
    assert (mirror.kind, mirror.url) == ("telegram", "http://127.0.0.1:9/s/x")
    assert (city.kind, city.url) == ("page", "https://city.example/news/")
    assert (city.items, city.title, city.date, city.summary) == (
        "div.news-item",
        "h3",
        "time",
        "p.lead",
    )


@pytest.mark.parametrize(
    ("feeds", "key", "message"),
    [
        pytest.param(
            "  - name: g\n    telegram: kursk gov\n",
            "feeds[0].telegram",
            "not a public Telegram channel name: 'kursk gov'",
            id="channel-with-space",
        ),
        pytest.param(
            "  - name: g\n    telegram: https://t.me/s/kursk_gov\n",
            "feeds[0].telegram",
            "not a public Telegram channel name",
            id="channel-as-url",
        ),
        pytest.param(
            "  - name: g\n    telegram: ab\n",
            "feeds[0].telegram",
            "not a public Telegram channel name",
            id="channel-too-short",
        ),
        pytest.param(
            '  - name: p\n    page: https://city.example/\n    items: "div.news["\n',
            "feeds[0].items",
            "not a CSS selector cssselect can use: 'div.news['",
            id="invalid-items-selector",
        ),
        pytest.param(
            '  - name: p\n    page: https://city.example/\n    items: a\n    date: "time::text"\n',
            "feeds[0].date",
            "not a CSS selector cssselect can use",
            id="pseudo-element",
        ),
        pytest.param(
            "  - name: p\n    page: https://city.example/\n",
            "feeds[0]",
            "a page source needs `items`",
            id="page-without-items",
        ),
        pytest.param(
            "  - name: p\n    page: ftp://city.example/\n    items: a\n",
            "feeds[0].url",
            "not an http(s) URL",
            id="page-not-http",
        ),
        pytest.param(
            "  - name: p\n    url: https://city.example/\n    items: a\n",
            "feeds[0]",
            "`items` is a page source's selector: add `page: URL`",
            id="selector-on-a-feed",
        ),
        pytest.param(
            "  - name: p\n    page: https://city.example/\n    url: https://x.example/\n"
            "    items: a\n",
            "feeds[0]",
            "leave out `url`",
            id="page-and-url",
        ),
        pytest.param(
            "  - name: p\n    page: https://city.example/\n    telegram: kursk_gov\n    items: a\n",
            "feeds[0]",
            "not both",
            id="page-and-telegram",
        ),
    ],
)
def test_bad_sources_name_their_key(feeds: str, key: str, message: str) -> None:
    """A bad channel name, selector or mix of keys is one error naming the key."""
    with pytest.raises(ConfigError) as caught:
        _config(FEED + feeds.replace("[0]", "[1]"))
    assert caught.value.key == key.replace("[0]", "[1]")
    assert message in caught.value.message


def test_check_config_names_a_bad_selector_in_one_line(tmp_path: Path) -> None:
    """check-config reports an invalid selector as one line with its key and line."""
    path = tmp_path / "config.yaml"
    feeds = '  - name: city\n    page: https://city.example/\n    items: "a[href"\n'
    path.write_text("feeds:\n" + feeds + "\n" + shipped_stories(), encoding="utf-8")
    result = run_cli(path, "check-config")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "feeds[0].items: not a CSS selector cssselect can use: 'a[href'" in line
    assert line.endswith("(line 4)")


def _readme_blocks(language: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("### Sources without a feed")
    section = text[start : text.index("\n### ", start)]
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


def test_readme_examples_are_valid_and_read_what_they_say() -> None:
    """The README's source examples load as config, and its page example's selectors read
    its sample list into the item it describes."""
    blocks = _readme_blocks("yaml")
    assert len(blocks) == 2
    feeds = [feed for block in blocks for feed in _config(block.split("\n", 1)[1]).feeds]
    assert [feed.kind for feed in feeds] == ["telegram", "telegram", "page"]
    page = feeds[2]
    [sample] = _readme_blocks("html")
    source = PageSource(page.items or "", page.title, page.date, page.summary)
    [entry] = parse(sample.encode(), page.url, "text/html; charset=utf-8", source).entries
    assert entry.url == "https://city.example/news/2026/11/30/pamyatnik"
    assert entry.title == "Для памятника выбрали место"
    assert entry.published == datetime(2026, 11, 30, 14, 5, tzinfo=UTC)
