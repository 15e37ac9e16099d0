"""Identity: what a report's content is, and which keys identify nothing."""

from __future__ import annotations

import pytest

from monitor.config.settings import load_config
from monitor.ingest.entry import Entry
from monitor.ingest.identity import content_hash, is_site_root, keys
from monitor.match.classify import classify
from tests.conftest import REPO

STORIES = load_config(REPO / "config.yaml", env={}).stories

HEADLINE = "Site chosen for monument to North Korean soldiers in Kursk region"


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        pytest.param(
            "  Site chosen for monument to  North Korean soldiers in Kursk region", "", id="spaces"
        ),
        pytest.param(HEADLINE.upper(), "", id="case"),
        pytest.param(HEADLINE.replace("Kursk", "Kur\u00adsk"), "", id="soft-hyphen"),
        pytest.param(f"{HEADLINE}\n", " ", id="trailing-whitespace"),
    ],
)
def test_what_the_rules_read_alike_is_one_content(title: str, summary: str) -> None:
    """Whitespace, case and invisible characters are no change of content."""
    assert content_hash(title, summary) == content_hash(HEADLINE, "")
    assert classify(title, summary, STORIES).milestone == "site_selection"


def test_typography_is_no_change_of_content() -> None:
    """Typographic quotes and apostrophes read as plain ones."""
    assert content_hash("Kursk \u201cmonument\u201d: officials\u2019 plan", "") == content_hash(
        'Kursk "monument": officials\' plan', ""
    )


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        pytest.param(HEADLINE.replace("chosen", "proposed"), "", id="a-word"),
        pytest.param(HEADLINE, "Officials named the park.", id="a-summary"),
        pytest.param("", HEADLINE, id="title-moved-to-summary"),
    ],
)
def test_an_edited_word_is_a_new_content(title: str, summary: str) -> None:
    """A changed word, a new summary, or text moved between title and summary is new."""
    assert content_hash(title, summary) != content_hash(HEADLINE, "")


def _entry(key: str, title: str, url: str | None, guid: str | None = None) -> Entry:
    return Entry(key=key, url=url, title=title, summary="", published=None, guid=guid)


def _keys(entries: list[Entry]) -> list[str]:
    return keys(entries, [content_hash(e.title, e.summary) for e in entries])


def test_distinct_keys_are_kept() -> None:
    """Entries with keys of their own keep them, whatever their links."""
    entries = [
        _entry("k1", "One", "https://site.example/news/1"),
        _entry("k2", "Two", "https://site.example/news/2", guid="g2"),
        _entry("k3", "Three", "https://site.example/", guid="g3"),
    ]
    assert _keys(entries) == ["k1", "k2", "k3"]


def test_a_key_shared_by_different_reports_identifies_by_content() -> None:
    """Entries of one fetch sharing a key (one section link, no GUID) get keys of their
    own, each stable across fetches; an exact repeat keeps sharing its key."""
    section = "https://site.example/news"
    one, two = _entry("s", "One", section), _entry("s", "Two", section)
    first = _keys([one, two, one])
    assert len(set(first)) == 2
    assert first[0] == first[2]
    assert "s" not in first
    assert _keys([two, one]) == [first[1], first[0]]


def test_a_guidless_site_root_is_no_identity() -> None:
    """A GUID-less entry linking to a site's front page is identified by its content."""
    alone = _keys([_entry("home", "One", "https://site.example/")])
    assert alone != ["home"]
    assert alone != _keys([_entry("home", "Two", "https://site.example/")])


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("https://site.example/", True),
        ("https://site.example", True),
        ("https://site.example/?lang=en", False),
        ("https://site.example/news", False),
        (None, False),
    ],
)
def test_site_roots(url: str | None, root: bool) -> None:
    """A front page has no path and no query."""
    assert is_site_root(url) is root
