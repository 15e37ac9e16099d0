"""The normalized feed entry every stage after `parse` works with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed item, normalized once at the parse boundary.

    `key` identifies the entry within its feed: a digest of the GUID, else of the
    canonical link, else of title + link. `url` is the canonical link (see
    `monitor.ingest.urls.canonical_url`). `title` and `summary` are plain text (no markup,
    entities decoded, whitespace collapsed), safe and capped: every text field is
    `monitor.core.safetext.clean` (no controls but tab and newline, no bidi overrides, no
    lone surrogates) and at most `monitor.ingest.normalize.*_MAX_CHARS` long. `published` is
    timezone-aware UTC or None.
    `outlet` is the original publisher when an aggregator names it (Google News
    `<source>`), else None. `lang` is the entry's or feed's declared language, if any.
    """

    key: str
    url: str | None
    title: str
    summary: str
    published: datetime | None
    guid: str | None = None
    outlet: str | None = None
    lang: str | None = None
    content: str | None = None
    """`monitor.ingest.identity.content_hash` of title and summary, taken where the entry is
    judged (the parse worker, beside the service process) when a story's prefilter
    admits it; None until then, and for the others, which the ingest hashes."""
    signature: bytes | None = None
    """A relevant entry's packed MinHash signature (`monitor.ingest.cluster`), taken
    where it is read, as `content` is; None for the others, and until then."""
    bands: tuple[int, ...] = ()
    """The band keys of `signature` (`monitor.ingest.cluster.packed_band_keys`), taken
    with it; empty when it is None, and for entries read before they were carried."""

    @property
    def text(self) -> str:
        """Title and summary as one string, the unit that rules and fingerprints read."""
        return f"{self.title}\n{self.summary}" if self.summary else self.title


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What `parse` returns: the entries plus what the feed says about itself."""

    entries: list[Entry]
    title: str | None = None
    lang: str | None = None
    parser: str = "feedparser"
