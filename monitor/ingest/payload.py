"""A body as the server sent it, and its bounded decoding.

The fetch stage keeps what arrived (at most the size cap); the read stage decodes it,
off the service's event loop, with its output held to the same cap at every step, so
a gzip bomb never costs more than the cap in memory however far it would expand.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from monitor.core.errors import PermanentFeedError


def content_encoding(header: str) -> str:
    """A Content-Encoding header as "", "gzip" or "deflate"; refuse anything else."""
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return ""
    if codings in (["gzip"], ["x-gzip"]):
        return "gzip"
    if codings == ["deflate"]:
        return "deflate"
    raise PermanentFeedError(f"unsupported Content-Encoding: {header}")


@dataclass(frozen=True, slots=True)
class Payload:
    """A body as the server sent it (gzip, deflate or plain), with the cap on its size.

    The fetch stage bounds the bytes received; `decode` bounds what they expand to. It
    runs in the read stage, off the service's event loop: inflating is the costliest
    part of a fetch, and a compressed body is a tenth of the bytes to hand over.
    """

    data: bytes = b""
    encoding: str = ""
    """The Content-Encoding, normalised: "", "gzip" or "deflate"."""
    cap: int = 10 * 1024 * 1024

    def decode(self) -> bytes:
        """The body, inflated; `PermanentFeedError` if it is corrupt or exceeds the cap."""
        inflater = _Inflater.for_encoding(self.encoding, self.cap)
        inflater.feed(self.data)
        return inflater.finish()


class _Inflater:
    """Decodes a body's Content-Encoding with its output bounded by `cap` at every step.

    `zlib`'s `max_length` makes each call stop at the room left under the cap, so a
    bomb costs at most `cap` bytes of memory however far it would expand.
    """

    _GZIP = zlib.MAX_WBITS | 16
    _GZIP_MAGIC = b"\x1f\x8b"

    def __init__(self, cap: int, wbits: int | None) -> None:
        self.cap = cap
        self.wbits = wbits
        self.size = 0
        self.chunks: list[bytes] = []
        self._zlib = zlib.decompressobj(wbits) if wbits is not None else None
        self._started = False

    @classmethod
    def for_encoding(cls, encoding: str, cap: int) -> _Inflater:
        wbits = {"": None, "gzip": cls._GZIP, "deflate": zlib.MAX_WBITS}[encoding]
        return cls(cap, wbits)

    def feed(self, data: bytes) -> None:
        if self._zlib is None:
            self._keep(data)
            return
        first = not self._started and bool(data)
        self._started = self._started or first
        try:
            self._inflate(data)
        except zlib.error as exc:
            if not (first and self.wbits == zlib.MAX_WBITS):
                raise PermanentFeedError(f"cannot decode the compressed body: {exc}") from None
            # "deflate" is meant to be zlib-wrapped, but some servers send it raw.
            self.wbits = -zlib.MAX_WBITS
            self._zlib = zlib.decompressobj(self.wbits)
            self.feed(data)

    def finish(self) -> bytes:
        return b"".join(self.chunks)

    def _inflate(self, data: bytes) -> None:
        assert self._zlib is not None
        while data:
            out = self._zlib.decompress(data, self.cap - self.size + 1)
            self._keep(out)
            data = self._zlib.unconsumed_tail
            if not self._zlib.eof:
                continue
            # A gzip body may be several members back to back; trailing junk is ignored.
            data = self._zlib.unused_data
            if self.wbits != self._GZIP or not data.startswith(self._GZIP_MAGIC):
                return
            self._zlib = zlib.decompressobj(self.wbits)

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.cap:
            raise PermanentFeedError(f"body exceeds the {self.cap}-byte cap")
        if data:
            self.chunks.append(data)
