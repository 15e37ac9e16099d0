"""feedparser's own 2,106 test feeds (hostile input) through both parse paths.

The corpus lives in shared/corpus/feedparser-tests beside the repository; these
tests skip when it is absent.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import feedparser
import pytest

from monitor.core.errors import FeedError, NotAFeed
from monitor.ingest.entry import ParsedFeed
from monitor.ingest.normalize import SUMMARY_MAX_CHARS
from monitor.ingest.parse import parse
from monitor.ingest.read_feedparser import parse_with_feedparser
from monitor.ingest.read_xml import parse_fast
from monitor.ingest.sources import PageSource, TelegramSource

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "feedparser-tests"
BASE = "http://example.com/feed/"
_HEADER = re.compile(rb"Header:\s*([A-Za-z-]+):\s*(.*)")

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")


@dataclass(frozen=True)
class Sample:
    name: str
    body: bytes
    base_url: str
    content_type: str | None


@cache
def samples() -> tuple[Sample, ...]:
    """Every corpus file, with the HTTP headers its comment says it was served with."""
    found = []
    for path in sorted(CORPUS.rglob("*.xml")):
        body = path.read_bytes()
        headers = {
            m[1].decode().lower(): m[2].strip().decode("latin-1")
            for m in _HEADER.finditer(body[:2000])
        }
        found.append(
            Sample(
                name=str(path.relative_to(CORPUS)),
                body=body,
                base_url=headers.get("content-location", BASE),
                content_type=headers.get("content-type"),
            )
        )
    return tuple(found)


def folders() -> list[str]:
    return sorted({p.name for p in CORPUS.iterdir() if p.is_dir()}) if CORPUS.is_dir() else []


@pytest.mark.parametrize("folder", folders())
def test_every_file_parses_or_is_not_a_feed(folder: str) -> None:
    """No exception other than NotAFeed escapes parse() on any corpus file."""
    failures = []
    for sample in samples():
        if not sample.name.startswith(f"{folder}/"):
            continue
        try:
            parse(sample.body, sample.base_url, sample.content_type)
        except NotAFeed:
            pass
        except Exception as error:  # collect them all, to list every failing file
            failures.append(f"{sample.name}: {error!r}")
    assert failures == []


SOURCES = {
    "telegram": TelegramSource("corpus_channel"),
    "page": PageSource("a, item, entry", title="title", date="pubDate, updated, time"),
}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_every_file_read_as_an_html_source_is_read_or_refused(kind: str) -> None:
    """Read as a Telegram preview or a page (a misconfigured source, a hostile server),
    every corpus file gives entries or a FeedError (NotAFeed, NoMatches), never a crash."""
    failures = []
    read = 0
    for sample in samples():
        try:
            parse(sample.body, sample.base_url, sample.content_type, SOURCES[kind])
        except FeedError:
            continue
        except Exception as error:  # collect them all, to list every failing file
            failures.append(f"{sample.name}: {error!r}")
        else:
            read += 1
    assert failures == []
    assert read > 0 if kind == "page" else read == 0  # no feed is a channel preview


POST = (
    '<html><body><section class="tgme_channel_history"><div class="tgme_widget_message" '
    'data-post="corpus_channel/7"><div class="tgme_widget_message_text">{}</div></div>'
    "</section></body></html>"
)


def test_every_file_as_the_text_of_a_telegram_post_is_inert() -> None:
    """Each corpus file pasted into a post (hostile markup where the text goes) still
    gives that one post, its text capped, and never a crash."""
    failures = []
    for sample in samples():
        body = POST.format(sample.body.decode("latin-1")).encode("latin-1")
        try:
            feed = parse(body, BASE, "text/html; charset=latin-1", SOURCES["telegram"])
        except Exception as error:  # collect them all, to list every failing file
            failures.append(f"{sample.name}: {error!r}")
            continue
        urls = [e.url for e in feed.entries]
        if urls != ["https://t.me/corpus_channel/7"]:
            failures.append(f"{sample.name}: {urls}")
        elif len(feed.entries[0].summary) > SUMMARY_MAX_CHARS:
            failures.append(f"{sample.name}: summary of {len(feed.entries[0].summary)} chars")
    assert failures == []


def test_not_a_feed_exactly_when_feedparser_finds_no_feed() -> None:
    """parse() refuses a corpus file exactly when feedparser recognises no RSS or Atom in it."""
    disagreements = []
    refused = 0
    for sample in samples():
        try:
            parse(sample.body, sample.base_url, sample.content_type)
            ours = True
        except NotAFeed:
            ours = False
            refused += 1
        theirs = bool(
            feedparser.parse(sample.body, response_headers=_headers(sample)).get("version")
        )
        if ours != theirs:
            disagreements.append(sample.name)
    assert disagreements == []
    assert 0 < refused < 50  # the empty file, CDF and the like; not the whole corpus


def _headers(sample: Sample) -> dict[str, str]:
    return {"content-type": sample.content_type} if sample.content_type else {}


def _identity(feed: ParsedFeed) -> list[tuple[object, ...]]:
    return [(e.key, e.url, e.title, e.published) for e in feed.entries]


def test_fast_path_agrees_with_feedparser_wherever_it_reads_a_file() -> None:
    """Where the fast path accepts a file, its keys, URLs, titles and dates equal feedparser's.

    The fast path declines what it cannot read exactly as feedparser does, so the
    comparison is strict; the floor on accepted files keeps "decline everything"
    from passing.
    """
    counts: Counter[str] = Counter()
    disagreements = []
    for sample in samples():
        fast = parse_fast(sample.body, sample.base_url, sample.content_type)
        counts["fast path" if fast is not None else "declined"] += 1
        try:
            slow = parse_with_feedparser(sample.body, sample.base_url, sample.content_type)
        except NotAFeed:
            continue
        if fast is None or not (fast.entries and slow.entries):
            continue
        counts["compared"] += 1
        if _identity(fast) != _identity(slow):
            disagreements.append(sample.name)
    assert disagreements == []
    assert counts["fast path"] >= 900
    assert counts["compared"] >= 650
