"""Near-duplicate reports (identity level 3): one wire story, many outlets.

An item is read as its title and lead (the first `LEAD_WORDS` words of its summary, so
a feed that carries the whole article and one that carries a sentence compare alike),
cut into word 1-grams and 2-grams, and summarised by a MinHash signature of
`PERMUTATIONS` values, made by one-permutation hashing (Li, Owen and Zhang, "One
Permutation Hashing", NIPS 2012) with optimal densification (Shrivastava, "Optimal
Densification for Fast and Accurate Minwise Hashing", ICML 2017): each shingle is
hashed once, into 128 bits read as two 64-bit halves; in each half the low bits pick
one of `PERMUTATIONS` bins and 32 higher bits are the value put in it (two bins per
shingle leave fewer empty: a lead has about 80 shingles for 128 bins); a bin holds the
least value that fell in it, and an empty bin borrows the value of the first
non-empty bin on its own fixed probe sequence. Two signatures agree
at a position with probability equal to the Jaccard similarity of the two shingle
sets, as with `PERMUTATIONS` independent hash functions, at one hash per shingle
instead of `PERMUTATIONS` (a surge of reports signs thousands of items a cycle).

For lookup the signature is cut into `BANDS` bands of `ROWS` values (LSH banding): two
items share at least one band with probability 1 - (1 - J^ROWS)^BANDS, about 0.99 at
the `THRESHOLD` and 0.05 at J = 0.2, so the store finds candidates through an indexed
table of band keys and confirms each with the estimate. The figures that chose these
constants (on ../shared/eval/dev.jsonl and constructed wire copies) are in
docs/benchmarks.md.

Pure Python and a few dozen lines: datasketch would pull numpy, a third of the
service's memory budget.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from itertools import islice, pairwise
from operator import itemgetter

PERMUTATIONS = 128
BANDS = 32
ROWS = 4
THRESHOLD = 0.6
"""Estimated Jaccard at or above which two reports are one (a rewrite or a copy)."""
LEAD_WORDS = 40
BUCKET_CAP = 16
"""Items indexed under one band key of a story within the window, at most (LSH bucket
truncation): on the day of a surge hundreds of reports share a wire story's bands, and
a lookup reads every holder of every key it asks for. A later item with that key still
finds the first `BUCKET_CAP` holders (`monitor.ingest.decide`)."""

assert BANDS * ROWS == PERMUTATIONS

_PACK = struct.Struct(f"<{PERMUTATIONS}I")
_BAND_BYTES = ROWS * 4
_blake2b = hashlib.blake2b
_WORD = re.compile(r"\w+")
_HANGUL = re.compile("[\uac00-\ud7a3]")
_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_SCRIPTED = re.compile("[\uac00-\ud7a3\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
"""A character of Hangul (`_HANGUL`) or of a script written without spaces (`_UNSPACED`)."""
_PARTICLES = (  # longest first: 에서는 before 에서 before 에
    *("에서는", "으로는"),
    *("에서", "에게", "으로", "까지", "부터"),
    *("은", "는", "이", "가", "을", "를", "의", "에", "로", "와", "과", "도", "만"),
)
"""Korean particles written onto the word before them: `기념비가` and `기념비를` are
one word to a reader, and a rewrite often changes only the particle."""

Signature = tuple[int, ...]


def words(title: str, summary: str) -> list[str]:
    """The title and lead as normalized words (NFKC, casefolded, ё as е, no particles)."""
    return _words(title) + _words(summary, LEAD_WORDS)[:LEAD_WORDS]


def _words(text: str, enough: int | None = None) -> list[str]:
    """The words of `text`; with `enough`, at least that many (or all there are): a
    relevant item's summary is its whole text, and only its lead is wanted."""
    normal = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    if not _SCRIPTED.search(normal):
        # Most texts: no script that needs a word looked at, so the words as they are.
        matches = _WORD.finditer(normal)
        return [m.group() for m in (matches if enough is None else islice(matches, enough))]
    found: list[str] = []
    for match in _WORD.finditer(normal):
        if enough is not None and len(found) >= enough:
            break
        word = match.group()
        if _UNSPACED.search(word):
            # Chinese and Japanese put no spaces between words: pairs of characters
            # stand in for them, as in most retrieval systems for these scripts.
            found += [word[i : i + 2] for i in range(max(len(word) - 1, 1))]
        else:
            found.append(_without_particle(word))
    return found


_PARTICLE_ENDS = tuple(
    (size, frozenset(p for p in _PARTICLES if len(p) == size))
    for size in sorted({len(p) for p in _PARTICLES}, reverse=True)
)
"""`_PARTICLES` by length, longest first: a word's last one, two or three characters are
looked up, not tried against each particle (a surge reads thousands of Korean words)."""


def _without_particle(word: str) -> str:
    if not _HANGUL.search(word):
        return word
    for size, particles in _PARTICLE_ENDS:
        if len(word) > size + 1 and word[-size:] in particles:
            return word[:-size]
    return word


def shingles(tokens: list[str]) -> set[str]:
    """Each word, and each pair of neighbouring words."""
    return {*tokens, *(f"{a} {b}" for a, b in pairwise(tokens))}


_MASK64 = (1 << 64) - 1
assert PERMUTATIONS & (PERMUTATIONS - 1) == 0, "bins are picked by the hash's low bits"


def _mix(value: int) -> int:
    """SplitMix64's finaliser: a fixed 64-bit mixing of `value` (a probe's position)."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


_PROBES = tuple(
    tuple(_mix((position << 16) | attempt) % PERMUTATIONS for attempt in range(1, 1 + 64))
    + tuple((position + step) % PERMUTATIONS for step in range(1, PERMUTATIONS))
    for position in range(PERMUTATIONS)
)
"""Where an empty bin looks for a value: 64 fixed pseudo-random bins (the optimal
densification), then every other bin in turn, so a text of one shingle fills all."""


_HALF = struct.Struct("<B3xI")
"""One 64-bit half of a shingle's hash, little-endian: its low byte (whose low bits pick
the bin) and its bits 32 to 63 (the value)."""
_BIN = bytes(byte % PERMUTATIONS for byte in range(256))
"""A half's low byte → its bin."""


def signature(title: str, summary: str) -> Signature | None:
    """The MinHash signature of an item's title and lead; None when it has no words."""
    found = shingles(words(title, summary))
    if not found:
        return None
    halves = bytearray(b"".join([_blake2b(s.encode(), digest_size=16).digest() for s in found]))
    halves[:: _HALF.size] = halves[:: _HALF.size].translate(_BIN)
    # Done in C, not per shingle in Python: sorted by value, highest first, so the dict
    # keeps each bin's least value (the last one written to it).
    least = dict(sorted(_HALF.iter_unpack(halves), key=itemgetter(1), reverse=True))
    bins = list(map(least.get, range(PERMUTATIONS)))
    if len(least) < PERMUTATIONS:
        bins = [
            value if value is not None else _borrow(bins, position)
            for position, value in enumerate(bins)
        ]
    return tuple(bins)  # type: ignore[arg-type]  # no None is left


def _borrow(bins: list[int | None], position: int) -> int:
    for other in _PROBES[position]:
        value = bins[other]
        if value is not None:
            return value
    raise AssertionError("a signature with no value at all")  # `found` was not empty


def similarity(a: Signature, b: Signature) -> float:
    """The estimated Jaccard similarity of the two texts: the share of equal positions."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / PERMUTATIONS


_LOW_BITS = int.from_bytes(b"\xff\xff\xff\x7f" * PERMUTATIONS, "little")
_TOP_BIT = int.from_bytes(b"\x00\x00\x00\x80" * PERMUTATIONS, "little")


def lanes(packed: bytes) -> int:
    """A packed signature as one integer, value `i` in bits 32i to 32i + 31: the form
    `lanes_similarity` compares in a few big-integer operations."""
    return int.from_bytes(packed, "little")


def lanes_similarity(a: int, b: int) -> float:
    """`similarity` of two signatures given as `lanes`, computed in C: a surge of
    reports compares each new one with hundreds of stored ones.

    In `a ^ b` an equal position is a zero 32-bit lane. Adding 0x7FFFFFFF to a lane's
    low 31 bits sets its top bit when any of them is set, never carrying into the
    next lane; or-ed with the lane, the top bit says "not zero".
    """
    differ = a ^ b
    nonzero = (((differ & _LOW_BITS) + _LOW_BITS) | differ) & _TOP_BIT
    return (PERMUTATIONS - nonzero.bit_count()) / PERMUTATIONS


def band_keys(sig: Signature) -> list[int]:
    """One signed 64-bit key per band: the band's number and its rows, hashed."""
    return packed_band_keys(pack(sig))


_BAND_SEEDS = tuple(hashlib.blake2b(bytes([band]), digest_size=8) for band in range(BANDS))
"""Each band's hash with its number already fed in: copied, not made anew, per key."""
_BAND_KEYS = struct.Struct(f">{BANDS}q")


def packed_band_keys(packed: bytes) -> list[int]:
    """`band_keys` of a packed signature."""
    return list(unpack_band_keys(band_key_bytes(packed)))


def band_key_bytes(packed: bytes) -> bytes:
    """`packed_band_keys` as 8 big-endian bytes each: a fifth of their size as ints, for
    holding many (`unpack_band_keys` reads them)."""
    digests = []
    for band, seed in enumerate(_BAND_SEEDS):
        hashed = seed.copy()
        hashed.update(packed[band * _BAND_BYTES : (band + 1) * _BAND_BYTES])
        digests.append(hashed.digest())
    return b"".join(digests)


def unpack_band_keys(data: bytes) -> tuple[int, ...]:
    return _BAND_KEYS.unpack(data)


def pack(sig: Signature) -> bytes:
    """The signature as stored: little-endian unsigned 32-bit values."""
    return _PACK.pack(*sig)


def unpack(data: bytes) -> Signature:
    return _PACK.unpack(data)
