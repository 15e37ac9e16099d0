"""Reading feeds in a child process: same answers as inline, and a bad feed fails alone."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from monitor.config.settings import Config, load_config
from monitor.core.errors import FeedError, NoMatches, NotAFeed, PermanentFeedError
from monitor.ingest import cluster, decide
from monitor.ingest import worker as worker_module
from monitor.ingest.identity import content_hash
from monitor.ingest.payload import Payload
from monitor.ingest.sources import PageSource, TelegramSource
from monitor.ingest.worker import (
    LEAD_CHARS,
    InlineReader,
    Judged,
    Memo,
    Read,
    ReadWorker,
    judge,
    read_feed,
)
from monitor.match.classify import Verdict
from monitor.match.rules import Story
from tests.conftest import REPO, write_config
from tests.support.feeds import FILLER, UNVEILING_EN, UNVEILING_RU, Item, rss

DATA = Path(__file__).resolve().parents[1] / "data"

GOOD = rss([UNVEILING_EN, *FILLER]).encode()
IRRELEVANT = Verdict(story=None, milestone=None, terms={}, why="no story matched")

# A child like the real one whose handler misbehaves on two magic bodies.
CHILD = f"""
import os, sys, time
sys.path.insert(0, {str(REPO)!r})
from monitor.ingest.worker import read_feed, serve

def handle(body, *rest):
    if body == b"CRASH":
        os._exit(3)
    if body == b"HANG":
        time.sleep(3600)
    return read_feed(body, *rest)

serve(handle)
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    folder = tmp_path_factory.mktemp("worker")
    return load_config(write_config(folder, {"feed": "https://feeds.example/rss"}))


def _summary(read: Read) -> list[tuple[str, str | None, str | None]]:
    return [(e.title, v and v.story, v and v.milestone) for e, v in read]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _read_all(
    worker: ReadWorker, bodies: Sequence[bytes | Payload]
) -> list[Read | BaseException]:
    async with worker:
        return await asyncio.gather(
            *(worker.read(body, "https://feeds.example/rss", None, "en") for body in bodies),
            return_exceptions=True,
        )


def test_read_feed_judges_each_entry(config: Config) -> None:
    """Irrelevant entries get no verdict; the story's entry gets its milestone; lang fills in."""
    read = read_feed(GOOD, "https://feeds.example/rss", None, "en", config.stories)
    assert len(read) == 1 + len(FILLER)
    assert _summary(read)[0][1:] == ("kursk-kpa-monument", "unveiling")
    assert all(verdict is None for _, verdict in read[1:])
    assert {entry.lang for entry, _ in read} == {"en"}
    # The story's entry is signed where it is read, as the ingest would sign it; the
    # others, never clustered, are not.
    story_entry = read[0][0]
    expected = cluster.signature(story_entry.title, story_entry.summary)
    assert expected is not None
    assert story_entry.signature == cluster.pack(expected)
    assert all(entry.signature is None for entry, _ in read[1:])


@pytest.mark.parametrize("body", [b"", b"  \n ", b"<html><body>login</body></html>"])
def test_read_feed_refuses_what_is_not_a_feed(config: Config, body: bytes) -> None:
    """An empty body or an HTML page is NotAFeed."""
    with pytest.raises(NotAFeed):
        read_feed(body, "https://feeds.example/rss", "text/html", None, config.stories)


def test_child_answers_like_inline(config: Config) -> None:
    """The child process returns what reading in the service process returns."""
    bodies = [GOOD, rss([UNVEILING_RU, *FILLER], lang="ru").encode(), rss(FILLER).encode()]
    inline = [read_feed(b, "https://feeds.example/rss", None, "en", config.stories) for b in bodies]
    answers = run(_read_all(ReadWorker(config.stories), bodies))
    assert answers == inline


def test_child_reports_a_feed_error_as_itself(config: Config) -> None:
    """NotAFeed raised in the child is NotAFeed in the service, with its message."""
    [error] = run(_read_all(ReadWorker(config.stories), [b"<html>login</html>"]))
    assert isinstance(error, NotAFeed)


@pytest.mark.parametrize(
    ("poison", "message"),
    [
        pytest.param(b"CRASH", "died (exit code 3)", id="crash"),
        pytest.param(b"HANG", "longer than 1s", id="hang"),
    ],
)
def test_a_feed_that_kills_or_hangs_the_child_fails_alone(
    config: Config, poison: bytes, message: str
) -> None:
    """The feed on which the child died or hung fails; the feeds around it are read."""
    worker = ReadWorker(config.stories, command=[sys.executable, "-c", CHILD], deadline=1.0)
    answers = run(_read_all(worker, [GOOD, poison, GOOD, GOOD]))
    assert isinstance(answers[1], PermanentFeedError)
    assert message in str(answers[1])
    assert [_summary(a)[0][2] for a in (answers[0], answers[2], answers[3])] == ["unveiling"] * 3


def test_child_that_cannot_start_falls_back_inline(config: Config) -> None:
    """With no child to run, feeds are read in the service process instead."""
    worker = ReadWorker(config.stories, command=["/nonexistent/python"])
    [answer] = run(_read_all(worker, [GOOD]))
    assert _summary(answer)[0][2] == "unveiling"


def test_child_starts_on_enter_and_ends_on_close(config: Config) -> None:
    """Entering the worker starts the child at once; closing it ends the child."""

    async def go() -> tuple[bool, int | None]:
        async with ReadWorker(config.stories) as worker:
            proc = worker._proc
            assert proc is not None
            started = proc.returncode is None
            await worker.read(GOOD, "https://feeds.example/rss", None, None)
        return started, proc.returncode

    started, code = run(go())
    assert started
    assert code is not None  # it was stopped, not left running


def test_a_child_started_early_is_the_one_read_with(config: Config) -> None:
    """`start_early` starts the child before any event loop runs; the first worker takes
    that process (past its imports by then) and reads with it, and ends it on close."""
    worker_module.start_early()
    [early] = worker_module._started

    async def go() -> tuple[int, Read]:
        async with ReadWorker(config.stories) as worker:
            assert worker._proc is not None
            pid = worker._proc.popen.pid
            return pid, await worker.read(GOOD, "https://feeds.example/rss", None, None)

    pid, read = run(go())
    assert pid == early.pid
    assert _summary(read)[0][2] == "unveiling"
    assert early.returncode is not None
    assert worker_module._started == []


def test_a_child_never_taken_ends_with_its_parent() -> None:
    """A child started early by a process that ends without taking it reads end-of-file
    where its stories would be, and exits quietly: nothing on stderr, nothing left."""
    parent = "from monitor.ingest.worker import start_early; start_early()"
    # run() returns once every holder of the stderr pipe closed it: the child included.
    done = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stderr == ""


def test_inline_reader_reads(config: Config) -> None:
    """The in-process reader gives the same answer as read_feed."""
    read = run(InlineReader(config.stories).read(GOOD, "https://feeds.example/rss", None, "en"))
    assert _summary(read) == _summary(
        read_feed(GOOD, "https://feeds.example/rss", None, "en", config.stories)
    )


def test_a_child_failing_every_time_stops_being_used(config: Config) -> None:
    """After repeated deaths the worker reads inline rather than restart for ever."""
    worker = ReadWorker(config.stories, command=[sys.executable, "-c", CHILD], deadline=5.0)
    answers = run(_read_all(worker, [b"CRASH"] * 6 + [GOOD]))
    failures = [a for a in answers if isinstance(a, FeedError)]
    assert len(failures) == 6
    assert _summary(answers[-1])[0][2] == "unveiling"


def test_child_decodes_compressed_payloads(config: Config) -> None:
    """A gzip payload is inflated in the child; one that expands past its cap fails alone."""
    good = Payload(gzip.compress(GOOD), "gzip", cap=len(GOOD))
    bomb = Payload(gzip.compress(b"\0" * (4 * len(GOOD))), "gzip", cap=len(GOOD))
    answers = run(_read_all(ReadWorker(config.stories), [good, bomb, good]))
    assert _summary(answers[0]) == _summary(answers[2])
    assert _summary(answers[0])[0][2] == "unveiling"
    assert isinstance(answers[1], PermanentFeedError)
    assert "cap" in str(answers[1])


def test_only_admitted_items_keep_their_full_summary(config: Config) -> None:
    """An item no story could be about keeps its lead (cut between words); the story's
    items keep everything, for the digest, clustering and the record."""
    long_lead = " ".join(["word"] * 400)
    relevant = Item(UNVEILING_EN.title, UNVEILING_EN.link, UNVEILING_EN.summary + " " + long_lead)
    body = rss([Item("Markets rally", "https://x.example/m", long_lead), relevant]).encode()
    (other, _), (story, verdict) = read_feed(body, "https://x.example/", None, "en", config.stories)
    assert verdict is not None
    assert verdict.story is not None
    assert story.summary.endswith(long_lead)
    assert len(other.summary) <= LEAD_CHARS
    assert other.summary == long_lead[: len(other.summary)]
    assert other.summary.endswith("word")


def test_entries_turned_away_are_hashed_by_the_ingest(config: Config) -> None:
    """An entry no story's prefilter admits crosses without its content hash (on an
    ordinary cycle, nearly all of them, the child is the longer of the two processes);
    the ingest hashes it as the child did, and an admitted entry keeps the child's."""
    read = read_feed(GOOD, "https://feeds.example/rss", None, "en", config.stories)
    turned_away = [entry for entry, verdict in read if verdict is None]
    assert turned_away
    assert all(entry.content is None for entry in turned_away)
    story_entry, verdict = read[0]
    assert verdict is not None
    assert story_entry.content == content_hash(story_entry.title, story_entry.summary)
    rows = decide.fetched([decide.Classified(e, v or IRRELEVANT) for e, v in read])
    assert [row.content for row in rows] == [content_hash(e.title, e.summary) for e, _ in read]


def test_the_child_reads_telegram_and_page_sources(config: Config) -> None:
    """A source's kind and selectors cross the pipe: the child reads a channel preview and
    a listing page as inline reading does, and a page whose selector matches nothing
    fails as NoMatches in the service."""
    channel = (DATA / "telegram_channel.html").read_bytes()
    page = (DATA / "page_listing.html").read_bytes()
    telegram, listing = TelegramSource("kursk_gov_test"), PageSource("h3.news-title a")
    base = "http://127.0.0.1:9/"

    async def read_all() -> list[Read | BaseException]:
        async with ReadWorker(config.stories) as worker:
            return await asyncio.gather(
                worker.read(channel, base, "text/html", "ru", telegram),
                worker.read(page, base, "text/html", "ru", listing),
                worker.read(page, base, "text/html", "ru", PageSource("div.gone a")),
                return_exceptions=True,
            )

    got_channel, got_page, unmatched = run(read_all())
    assert got_channel == read_feed(channel, base, "text/html", "ru", config.stories, telegram)
    assert got_page == read_feed(page, base, "text/html", "ru", config.stories, listing)
    site = next(v for e, v in got_channel if e.url == "https://t.me/kursk_gov_test/102")
    assert site is not None
    assert site.milestone == "site_selection"
    assert isinstance(unmatched, NoMatches)


class CountingJudge:
    """The real `judge`, counting the texts it is asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, title: str, summary: str, stories: Sequence[Story]) -> Judged:
        self.asked.append(title)
        return judge(title, summary, stories)


# The same wire text carried under two links (two outlets), and a rewrite of it.
COPY = Item(UNVEILING_EN.title, "https://other.example/copy", UNVEILING_EN.summary)
RECASED = Item(UNVEILING_EN.title.upper(), "https://third.example/caps", UNVEILING_EN.summary)


def test_a_text_met_again_is_judged_once(config: Config) -> None:
    """A wire copy gets the verdict, hash, signature and bands of its first reading,
    from the memo, without being judged again; a text differing only in case (one
    content hash) is judged anew, as its verdict quotes it as written."""
    body = rss([UNVEILING_EN, *FILLER, COPY, RECASED]).encode()
    counting = CountingJudge()
    read = read_feed(
        body, "https://feeds.example/rss", None, "en", config.stories, memo=Memo(judge=counting)
    )
    unmemoised = read_feed(
        body, "https://feeds.example/rss", None, "en", config.stories, memo=Memo(0)
    )
    assert read == unmemoised
    assert counting.asked == [UNVEILING_EN.title, RECASED.title]
    (first, verdict), (copy, copy_verdict) = read[0], read[-2]
    assert (copy.content, copy.signature, copy.bands) == (
        first.content,
        first.signature,
        first.bands,
    )
    assert copy_verdict == verdict
    recased, recased_verdict = read[-1]
    assert recased.content == first.content
    assert recased_verdict is not None
    assert recased_verdict.terms != verdict.terms


def test_the_memo_keeps_the_texts_read_last(config: Config) -> None:
    """Past its size the memo lets go of the text least recently met: that one is judged
    again, the ones met since are not."""
    counting = CountingJudge()
    memo = Memo(2, judge=counting)
    texts = [(f"Monument unveiled in Kursk, part {n}", UNVEILING_EN.summary) for n in range(3)]
    for title, summary in [*texts, texts[2], texts[1], texts[0]]:
        memo.judge(title, summary, config.stories)
    assert len(memo) == 2
    assert counting.asked == [texts[0][0], texts[1][0], texts[2][0], texts[0][0]]
    assert (memo.hits, memo.misses) == (2, 4)


def test_other_stories_get_their_own_verdicts(config: Config) -> None:
    """Stories handed over anew (a reloaded config) empty the memo: a text judged under
    the old ones is judged again, never served the old verdict."""
    memo = Memo()
    text = (UNVEILING_EN.title, UNVEILING_EN.summary)
    under_none = memo.judge(*text, ())
    under_config = memo.judge(*text, config.stories)
    assert under_none.verdict is not None
    assert under_none.verdict.story is None
    assert under_config == judge(*text, config.stories)
    assert under_config.verdict is not None
    assert under_config.verdict.story == "kursk-kpa-monument"
    assert memo.judge(*text, list(config.stories)) == under_config
    assert memo.misses == 3


def test_band_keys_cross_the_pipe_with_the_signature(config: Config) -> None:
    """The child hands over a relevant entry's band keys, taken with its signature, so
    the service process does not hash them again; the others carry none."""
    [answer] = run(_read_all(ReadWorker(config.stories), [GOOD]))
    assert isinstance(answer, list)
    story_entry = answer[0][0]
    assert story_entry.signature is not None
    assert story_entry.bands == tuple(cluster.packed_band_keys(story_entry.signature))
    assert all(entry.bands == () for entry, _ in answer[1:])
