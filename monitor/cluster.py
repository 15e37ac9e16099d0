"""Near-duplicate fingerprints (identity level 3): one wire story, many outlets.

A 64-bit SimHash over word shingles of the normalized text. Rewrites that keep most
of the wording land within a few bits of each other; unrelated texts differ in about
half of the bits. Hand-written (forty lines) rather than datasketch, whose numpy
import alone would cost a third of the service's memory budget.
"""

from __future__ import annotations

import hashlib
import re

from monitor.match import normalize

BITS = 64
NEAR_DISTANCE = 8
"""Hamming distance at or below which two texts are the same story (tuned in tests)."""

_WORD = re.compile(r"\w+")
_MASK = (1 << BITS) - 1


def _shingles(words: list[str], size: int = 2) -> list[str]:
    if len(words) <= size:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + size]) for i in range(len(words) - size + 1)]


def fingerprint(text: str) -> int:
    """The SimHash of `text`: an unsigned 64-bit integer.

    Bit `b` is set when more than half of the shingles' hashes have bit `b` set. The
    hashes are written out as 64-character bit strings and transposed with `zip`, so
    the per-bit counting runs in C rather than in a Python loop per shingle and bit.
    """
    rows = [
        format(int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big"), "064b")
        for s in _shingles(_WORD.findall(normalize(text)))
    ]
    half = len(rows) / 2
    value = 0
    for position, column in enumerate(zip(*rows, strict=True)):  # position 0 is bit 63
        if column.count("1") > half:
            value |= 1 << (BITS - 1 - position)
    return value


def distance(a: int, b: int) -> int:
    """How many bits two fingerprints differ in."""
    return (a ^ b).bit_count()


def near(a: int, b: int, limit: int = NEAR_DISTANCE) -> bool:
    """Whether two fingerprints are of near-duplicate texts."""
    return distance(a, b) <= limit


def to_signed(value: int) -> int:
    """Fit an unsigned 64-bit fingerprint into a signed BIGINT column."""
    return value - (1 << BITS) if value >= 1 << (BITS - 1) else value


def to_unsigned(value: int) -> int:
    """Undo `to_signed`."""
    return value & _MASK
