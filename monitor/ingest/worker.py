"""Parsing and matching, in the service process or in a child process of their own.

Reading a feed (parse the bytes, prefilter and classify each entry) is pure-Python CPU
work. In the service process it shares one core with fetching and storing (the GIL),
so `ReadWorker` runs it in one child process, `python -m monitor.ingest.worker`, which imports
only the parse and match stages (about 30 MB). That puts the cycle on two cores, and
a feed whose parsing crashes or hangs the child fails alone: the child is replaced and
the feeds queued behind it are sent to the new one.

Frames on the child's pipes are a 4-byte length and a pickle; the child is our own
executable, and nothing else writes to its pipes. The child never writes anything else
on its stdout (its `print`s and logs go to stderr).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
import operator
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, BinaryIO, Protocol

import structlog

from monitor.core.errors import (
    FeedError,
    NoMatches,
    NotAFeed,
    PermanentFeedError,
    TransientFeedError,
)
from monitor.ingest import cluster
from monitor.ingest.entry import Entry
from monitor.ingest.identity import content_hash
from monitor.ingest.payload import Payload
from monitor.ingest.sources import Source
from monitor.match.classify import Verdict, classify, prefilter
from monitor.match.rules import Story

Body = bytes | Payload
"""A body to read: plain bytes, or a payload as the server sent it, decoded here."""
Read = list[tuple[Entry, Verdict | None]]
"""Each entry of a feed with its verdict; None for an entry the prefilter turned away."""

DEADLINE = 60.0
"""Seconds one feed may take in the child before it is killed (a parser stuck on input)."""
_GIVE_UP_AFTER = 5
"""Child failures in a row, with no success between, after which reading stays inline."""
_LENGTH = struct.Struct(">I")
_PIPE_BYTES = 1 << 20
CHILD_COMMAND = (sys.executable, "-m", "monitor.ingest.worker")
"""How a parse child is started: this interpreter, running this module."""
_ERRORS: dict[str, type[FeedError]] = {
    cls.__name__: cls
    for cls in (NoMatches, NotAFeed, PermanentFeedError, TransientFeedError, FeedError)
}


def read_feed(  # noqa: PLR0917 (the parse child's frame hands these over positionally)
    body: Body,
    base_url: str,
    content_type: str | None,
    lang: str | None,
    stories: Sequence[Story],
    source: Source | None = None,
    memo: Memo | None = None,
) -> Read:
    """Decode and parse `body` and judge each entry: the CPU work of checking one feed.

    `lang` (the feed's configured language) is given to entries that declare none,
    when the feed itself declares none either. `source` says what a source that is no
    feed is (a Telegram channel, a page and its selectors). `memo` (the process's
    `MEMO` unless given) keeps the judgements of the texts read last.
    """
    if memo is None:
        memo = MEMO
    data = body.decode() if isinstance(body, Payload) else body
    if not data.strip():
        raise NotAFeed("the server sent an empty body")
    # Imported here: with the parse worker on, the service process never parses, and
    # lxml is a tenth of its start-up.
    from monitor.ingest.parse import parse  # noqa: PLC0415

    parsed = parse(data, base_url, content_type, source)
    lang = parsed.lang or lang
    read: Read = []
    for entry in parsed.entries:
        title, summary = entry.title, entry.summary
        if prefilter(title, summary, stories):
            judged = memo.judge(title, summary, stories)
        else:
            # Not hashed here: on an ordinary cycle, where nearly every entry ends here,
            # this process is the longer of the two, and the ingest, which needs the
            # hash, hashes what comes without one (`decide.fetched`).
            summary = _lead(summary)
            judged = _NOT_ADMITTED
        # One new entry, built whole: `dataclasses.replace` costs twice as much, and
        # this runs for every entry of every feed.
        judged_entry = Entry(
            key=entry.key,
            url=entry.url,
            title=title,
            summary=summary,
            published=entry.published,
            guid=entry.guid,
            outlet=entry.outlet,
            lang=entry.lang or lang,
            content=judged.content,
            signature=judged.signature,
            bands=cluster.unpack_band_keys(judged.bands) if judged.bands else (),
        )
        read.append((judged_entry, judged.verdict))
    return read


@dataclass(frozen=True, slots=True)
class Judged:
    """What reading makes of one text: its verdict (None: the prefilter turned it away),
    its content hash (None for a text the prefilter turned away: see `read_feed`), and
    when relevant its packed signature and band keys."""

    verdict: Verdict | None
    content: str | None
    signature: bytes | None = None
    bands: bytes = b""
    """`cluster.band_key_bytes`: 256 bytes, not 32 ints of 36 bytes each, held here."""


def judge(title: str, summary: str, stories: Sequence[Story]) -> Judged:
    """Classify, hash and (when relevant) sign a text the prefilter admits."""
    verdict = classify(title, summary, stories)
    content = content_hash(title, summary)
    # Signed here, in the worker, with the band keys the store looks it up by: a surge
    # signs thousands of items a cycle, and the service process has the other core's
    # work (storing) to do.
    signed = cluster.signature(title, summary) if verdict.relevant else None
    if signed is None:
        return Judged(verdict, content)
    packed = cluster.pack(signed)
    return Judged(verdict, content, packed, cluster.band_key_bytes(packed))


_NOT_ADMITTED = Judged(None, None)

MEMO_SIZE = 1024
"""Admitted texts whose judgement `Memo` keeps: about 3 KB each when relevant (measured
on the farm's surge, mostly the verdict's quoted terms), so 3 MB; the farm's surge has
all its copies within 1024 distinct texts of the first (and most within 256)."""


class Memo:
    """The judgements of the admitted texts read last, so a text met again is judged once.

    A surge is mostly wire copies: one title and summary carried by many feeds (a third
    of the farm's surge items are exact copies), and `judge` (classify and sign, about
    1 ms a relevant text) is a pure function of the text and the stories. A text met
    again costs one hash and a lookup. Keyed by a digest of the text exactly as read,
    not by its `content_hash`: that one is of the normalised text, while a verdict
    quotes its terms as the text wrote them. Only texts the prefilter admits come here
    (it is cheap, and it turns away nearly all of an ordinary cycle, which would
    otherwise push a surge's texts out). Bounded (least recently used out), emptied
    when `stories` is another object (a reloaded config), and thread-safe, for
    `InlineReader`.
    """

    def __init__(
        self, size: int = MEMO_SIZE, judge: Callable[[str, str, Sequence[Story]], Judged] = judge
    ) -> None:
        self.size = size
        self._judge = judge
        self._judged: OrderedDict[bytes, Judged] = OrderedDict()
        self._stories: Sequence[Story] | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._judged)

    def judge(self, title: str, summary: str, stories: Sequence[Story]) -> Judged:
        key = _text_key(title, summary)
        with self._lock:
            if stories is not self._stories:
                self._judged.clear()
                self._stories = stories
            found = self._judged.get(key)
            if found is not None:
                self._judged.move_to_end(key)
                self.hits += 1
                return found
        judged = self._judge(title, summary, stories)
        with self._lock:
            self.misses += 1
            if stories is self._stories and self.size > 0:
                self._judged[key] = judged
                if len(self._judged) > self.size:
                    self._judged.popitem(last=False)
        return judged


def _text_key(title: str, summary: str) -> bytes:
    text = f"{len(title)}:{title}{summary}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


MEMO = Memo()
"""The process's memo: the parse child's, or the service's when it reads inline."""


LEAD_CHARS = 500
"""How much of the summary is kept of an item no story's prefilter admits."""


def _lead(summary: str) -> str:
    """The summary cut to its lead, at a word boundary.

    Full text is stored only for items the prefilter admits: the rest (nearly all of
    them) need their title and lead for `replay` to re-judge them under edited rules,
    and not the megabytes of body text every cycle would otherwise carry and store.
    """
    if len(summary) <= LEAD_CHARS:
        return summary
    cut = summary.rfind(" ", 0, LEAD_CHARS + 1)
    return summary[: cut if cut > 0 else LEAD_CHARS]


class FeedReader(Protocol):
    """Turns a fetched body into judged entries."""

    async def read(
        self,
        body: Body,
        base_url: str,
        content_type: str | None,
        lang: str | None,
        source: Source | None = None,
    ) -> Read: ...


class InlineReader:
    """Reads in a thread of the service process (tests, or `fetch.parse_worker: false`)."""

    def __init__(self, stories: Sequence[Story]) -> None:
        self.stories = stories

    async def __aenter__(self) -> InlineReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def read(
        self,
        body: Body,
        base_url: str,
        content_type: str | None,
        lang: str | None,
        source: Source | None = None,
    ) -> Read:
        return await asyncio.to_thread(
            read_feed, body, base_url, content_type, lang, self.stories, source
        )


def open_reader(parse_worker: bool, stories: Sequence[Story]) -> ReadWorker | InlineReader:
    """The reader a service process uses: in a child process unless configured not to."""
    return ReadWorker(stories) if parse_worker else InlineReader(stories)


@dataclass(eq=False)
class _Job:
    seq: int
    args: tuple[Body, str, str | None, str | None, Source | None] = field(repr=False)
    frame: bytes = field(repr=False)
    done: asyncio.Future[Read] = field(repr=False)


class ReadWorker:
    """Reads in one child process; replaces the child when it dies or hangs on a feed."""

    def __init__(
        self,
        stories: Sequence[Story],
        *,
        command: Sequence[str] = CHILD_COMMAND,
        deadline: float = DEADLINE,
    ) -> None:
        self.stories = stories
        self.command = list(command)
        self.deadline = deadline
        self.log = structlog.get_logger("monitor.worker")
        self._inline = InlineReader(stories)
        self._proc: _Child | None = None
        self._pump: asyncio.Task[None] | None = None
        self._pending: dict[int, _Job] = {}
        self._seq = 0
        self._head_since = 0.0
        self._failures = 0
        self._starting = asyncio.Lock()
        self._inline_tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ReadWorker:
        # Start the child now: its imports then overlap the first fetches instead of
        # holding up the first feed that needs reading.
        await self._running()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def read(
        self,
        body: Body,
        base_url: str,
        content_type: str | None,
        lang: str | None,
        source: Source | None = None,
    ) -> Read:
        if self._failures >= _GIVE_UP_AFTER:
            return await self._inline.read(body, base_url, content_type, lang, source)
        proc = await self._running()
        if proc is None:
            return await self._inline.read(body, base_url, content_type, lang, source)
        self._seq += 1
        args = (body, base_url, content_type, lang, source)
        job = _Job(
            self._seq,
            args,
            _frame((self._seq, *args)),
            asyncio.get_running_loop().create_future(),
        )
        if not self._pending:
            self._head_since = asyncio.get_running_loop().time()
        self._pending[job.seq] = job
        await self._send(proc, job)
        return await job.done

    async def aclose(self) -> None:
        """Stop the child. It keeps nothing, so it is not waited for: a cycle that
        read nothing must not wait for a child still importing its modules."""
        proc, pump = self._proc, self._pump
        self._proc = self._pump = None
        if pump is not None:
            pump.cancel()
        if proc is not None:
            if proc.returncode is None:
                proc.terminate()
            await _stop(proc)
        for job in self._pending.values():
            if not job.done.done():
                job.done.set_exception(TransientFeedError("the parser worker was stopped"))
        self._pending.clear()

    async def _running(self) -> _Child | None:
        async with self._starting:
            if self._proc is None or self._proc.returncode is not None:
                await self._start()
            return self._proc

    async def _start(self) -> None:
        try:
            proc = await _Child.attach(_take_started(self.command) or spawn(self.command))
        except OSError as exc:
            self._failures = _GIVE_UP_AFTER
            self.log.error("worker.unavailable", error=str(exc), fallback="inline")
            return
        proc.stdin.write(_frame(list(self.stories)))
        self._proc = proc
        self._pump = asyncio.create_task(self._answers(proc))
        self._head_since = asyncio.get_running_loop().time()
        for job in list(self._pending.values()):  # what the previous child left unread
            await self._send(proc, job)

    async def _send(self, proc: _Child, job: _Job) -> None:
        proc.stdin.write(job.frame)
        # A dead child: `_answers` sees it and sends the job on to the next one.
        with contextlib.suppress(ConnectionError):
            await proc.stdin.drain()

    async def _answers(self, proc: _Child) -> None:
        """Hand each answer to its job; replace the child when it dies or hangs."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self.deadline
            if self._pending:
                wait = max(0.0, self._head_since + self.deadline - loop.time())
            try:
                frame = await asyncio.wait_for(_read_frame(proc.stdout), wait)
            except TimeoutError:
                if not self._pending:
                    continue
                await self._replace(proc, f"parsing took longer than {self.deadline:g}s")
                return
            except (asyncio.IncompleteReadError, ConnectionError):
                code = await proc.wait()
                await self._replace(proc, f"the parser process died (exit code {code})")
                return
            seq, status, *payload = pickle.loads(frame)
            job = self._pending.pop(seq, None)
            self._head_since = loop.time()
            self._failures = 0
            if job is None or job.done.done():
                continue
            if status == "ok":
                job.done.set_result(_unpack(payload[0]))
            else:
                kind, message = payload
                job.done.set_exception(_ERRORS.get(kind, FeedError)(message))

    async def _read_inline(self, job: _Job) -> None:
        try:
            read = await self._inline.read(*job.args)
        except Exception as exc:
            if not job.done.done():
                job.done.set_exception(exc)
        else:
            if not job.done.done():
                job.done.set_result(read)

    async def _replace(self, proc: _Child, reason: str) -> None:
        """Fail the feed the child was on, start a new child for the ones behind it."""
        self._failures += 1
        await _stop(proc)
        if self._pending:
            head = self._pending.pop(next(iter(self._pending)))
            if not head.done.done():
                head.done.set_exception(PermanentFeedError(reason))
        self.log.warning("worker.replaced", reason=reason, waiting=len(self._pending))
        self._proc = self._pump = None
        if self._failures >= _GIVE_UP_AFTER:
            self.log.error("worker.abandoned", failures=self._failures, fallback="inline")
            for job in self._pending.values():
                task = asyncio.create_task(self._read_inline(job))
                self._inline_tasks.add(task)
                task.add_done_callback(self._inline_tasks.discard)
            self._pending.clear()
            return
        if self._pending:
            async with self._starting:
                await self._start()


def spawn(command: Sequence[str] = CHILD_COMMAND) -> subprocess.Popen[bytes]:
    """Start a parse child, its stdin and stdout piped to this process. It imports its
    modules, then waits for the stories `ReadWorker` sends it first."""
    popen = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert popen.stdin is not None
    with contextlib.suppress(OSError):
        # Let a whole feed fit in the pipe: 64 KB pipes cost one wake-up per 64 KB.
        fcntl.fcntl(popen.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    return popen


_started: list[subprocess.Popen[bytes]] = []
_started_lock = threading.Lock()


def start_early() -> None:
    """Start the default parse child now, for the first `ReadWorker` to take.

    `monitor run` and `monitor once` call this as soon as their config says they read
    in a child: the child's start (about 0.15 s of interpreter and imports) then
    overlaps the service process's own imports instead of following them, and the
    first fetched feed finds it ready. A child nobody takes reads end-of-file on its
    stdin when this process exits, and exits too.
    """
    with _started_lock:
        if not _started:
            _started.append(spawn())


def _take_started(command: Sequence[str]) -> subprocess.Popen[bytes] | None:
    """The child `start_early` started, if it runs `command` and is still alive."""
    with _started_lock:
        if not _started or list(command) != list(CHILD_COMMAND):
            return None
        popen = _started.pop()
    if popen.poll() is None:
        return popen
    return None


class _Child:
    """A parse child, its stdin and stdout as asyncio streams.

    A process rather than an `asyncio.subprocess.Process`: `start_early` starts one
    before the event loop runs, which asyncio cannot adopt.
    """

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
    ) -> None:
        self.popen = popen
        self.stdin = stdin
        self.stdout = stdout

    @classmethod
    async def attach(cls, popen: subprocess.Popen[bytes]) -> _Child:
        loop = asyncio.get_running_loop()
        stdout = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout), popen.stdout)
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, popen.stdin
        )
        return cls(popen, asyncio.StreamWriter(transport, protocol, None, loop), stdout)

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    async def wait(self) -> int:
        return await asyncio.to_thread(self.popen.wait)

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.terminate()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()


async def _stop(proc: _Child) -> None:
    if not proc.stdin.is_closing():
        proc.stdin.close()
    if proc.returncode is None:
        try:
            await asyncio.wait_for(proc.wait(), 2)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def _read_frame(stream: asyncio.StreamReader) -> bytes:
    (size,) = _LENGTH.unpack(await stream.readexactly(_LENGTH.size))
    return await stream.readexactly(size)


Packed = list[tuple[tuple[Any, ...], dict[str, Any] | None]]
_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(Entry))
_entry_values: Callable[[Entry], tuple[Any, ...]] = operator.attrgetter(*_ENTRY_FIELDS)
"""An entry's fields in order, as a tuple (one C call)."""


def _pack(read: Read) -> Packed:
    """Plain tuples and dicts for the pipe.

    Entries go as tuples of their fields: unpickling a slotted dataclass calls
    `dataclasses.fields` per object, a third of a second for a cycle's 16,000 entries.
    Verdicts go as dicts, as their `terms` is a read-only mapping pickle refuses.
    """
    packed: Packed = []
    for entry, verdict in read:
        values = _entry_values(entry)
        if verdict is None:
            packed.append((values, None))
            continue
        fields = {f.name: getattr(verdict, f.name) for f in dataclasses.fields(verdict)}
        fields["terms"] = dict(verdict.terms)
        packed.append((values, fields))
    return packed


def _unpack(packed: Packed) -> Read:
    return [
        (
            Entry(*values),
            None
            if fields is None
            else Verdict(**{**fields, "terms": MappingProxyType(fields["terms"])}),
        )
        for values, fields in packed
    ]


def serve(
    handle: Callable[
        [Body, str, str | None, str | None, Sequence[Story], Source | None], Read
    ] = read_feed,
    source: BinaryIO | None = None,
    sink: BinaryIO | None = None,
) -> None:
    """The child's loop: stories first, then one answer per feed, in order, until EOF."""
    if sink is None:
        # Our stdout carries frames: keep it for them alone, and send whatever else is
        # printed there (by Python or by a C library) to stderr.
        sink = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    source = source or sys.stdin.buffer
    # The parsers load now, while the service process is still starting, rather than
    # when the first fetched feed is waiting for them.
    import monitor.ingest.parse  # noqa: F401, PLC0415

    try:
        stories = pickle.loads(_read_frame_sync(source))
    except EOFError:  # started early, by a process that ended before it took this child
        return
    while True:
        try:
            frame = _read_frame_sync(source)
        except EOFError:
            return
        seq, body, base_url, content_type, lang, kind = pickle.loads(frame)
        try:
            answer: tuple[Any, ...] = (
                seq,
                "ok",
                _pack(handle(body, base_url, content_type, lang, stories, kind)),
            )
        except FeedError as exc:
            answer = (seq, "error", type(exc).__name__, str(exc))
        except Exception as exc:
            structlog.get_logger("monitor.worker").exception("worker.crashed", url=base_url)
            answer = (seq, "error", "FeedError", f"internal error: {type(exc).__name__}: {exc}")
        sink.write(_frame(answer))
        sink.flush()


def _read_frame_sync(stream: BinaryIO) -> bytes:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


if __name__ == "__main__":
    serve()
