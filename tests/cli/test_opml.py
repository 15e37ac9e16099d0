"""OPML feed lists: read (listparser, after a well-formedness check) and written (2.0)."""

from __future__ import annotations

from datetime import UTC, datetime

import listparser
import pytest

from monitor.cli.opml import OpmlError, Subscription, read_opml, write_opml

CREATED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_written_opml_reads_back_the_same() -> None:
    """Names and addresses with markup characters and any script survive the round trip."""
    listed = [
        Subscription("https://a.example/rss?x=1&y=2", 'A & B <"news">'),
        Subscription("https://b.example/feed", "Новости  КНДР"),
    ]
    document = write_opml(listed, "monitor feeds", CREATED)
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert "<dateCreated>Mon, 30 Nov 2026 12:00:00 +0000</dateCreated>" in document
    assert read_opml(document.encode()) == [
        listed[0],
        Subscription("https://b.example/feed", "Новости КНДР"),  # whitespace collapsed
    ]
    assert listparser.parse(document.encode()).version == "opml2"


def test_nested_outlines_and_opml1_are_read() -> None:
    """Feeds inside category outlines count; outlines without xmlUrl do not; a plain
    DOCTYPE is fine."""
    document = (
        b'<?xml version="1.0"?><!DOCTYPE opml><opml version="1.0"><head/><body>'
        b'<outline text="World"><outline text="One" xmlUrl="https://one.example/rss"/>'
        b'<outline text="Folder"><outline title="Two" xmlUrl=" https://two.example/rss "/>'
        b'</outline></outline><outline text="Just a link" htmlUrl="https://x.example/"/>'
        b"</body></opml>"
    )
    assert read_opml(document) == [
        Subscription("https://one.example/rss", "One"),
        Subscription("https://two.example/rss", "Two"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"<opml><body><outline xmlUrl='x'", id="truncated"),
        pytest.param(b"<rss version='2.0'><channel/></rss>", id="a-feed"),
        pytest.param(b'<!DOCTYPE x [<!ENTITY e "boom">]><opml>&e;</opml>', id="entity"),
    ],
)
def test_what_is_not_opml_is_refused(data: bytes) -> None:
    """Not well-formed, or not an <opml> document: OpmlError, nothing half-read."""
    with pytest.raises(OpmlError):
        read_opml(data)
