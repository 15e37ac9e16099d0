"""What makes two entries one report, and when a report seen before is judged again.

Identity levels 1 (the same entry again in a feed) and 2 (the same article in several
feeds) of README.md, "How it works", as the store applies them at ingest. Pure: entries
in, keys and digests out.

**Content.** A report's content is what the rules read of it: its title and summary,
normalised as the rules normalise them (`monitor.match.textnorm.normalize`: NFKC, case
folded, typographic quotes and apostrophes unified, invisible characters dropped,
whitespace collapsed). Two texts with one normalised form get one verdict, so a change
is *material* exactly when the normalised form changes: a re-spaced headline, a curly
quote made straight or a word re-cased is the same report; an edited word is a new
version, judged again. (An entry no story's prefilter admits is stored with the lead of
its summary only, `monitor.ingest.worker`, and that lead is its content: an edit past the lead
is no change, unless it makes the prefilter admit the entry, whose whole summary then
counts and differs.)

**Identity in a feed (level 1).** An entry is the feed's key (its GUID, else its
canonical link, else a hash of title and link; `monitor.ingest.normalize.entry_key`) plus its
content. The same key with the same content is seen and skipped; the same key with new
content is a new *version* of that report, stored beside the old one and judged.

**Keys that identify nothing.** A homepage or a section page is no article: when
several entries of one fetch share a key but differ in content (every item linked to
the front page and no GUID, or one GUID for everything), or an entry without a GUID
links to a site's root (`https://site.example/`), the key says nothing about which
report it is. Such an entry is identified by its key *and* its content (`keys`): each
distinct report is an item of its own, never a version of another one.

**Copies (level 2).** An entry whose canonical link *and* content are already stored
(from any feed, under any key) is a copy: the same report again, nothing to judge. A
link alone is not enough: the same link with a new headline is judged (a wire
story rewritten as it develops, a link republished under a new GUID, a feed that links
everything to its homepage). So a shared link can never turn a new report into a copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from monitor.ingest.entry import Entry
from monitor.match.textnorm import normalize

MAX_VERSIONS = 10
"""Versions kept of one report. Past this, a changed version is stored (and judged)
only if it reports a milestone that has no event yet: a feed that rewrites an item on
every fetch (a counter, a list of related links) cannot grow the store without bound,
and no milestone is lost."""


def content_hash(title: str, summary: str) -> str:
    """The digest of what the rules read of a report: its normalised title and summary."""
    text = f"{normalize(title)}\n{normalize(summary)}"
    return _digest(text)


def keys(entries: Sequence[Entry], hashes: Sequence[str]) -> list[str]:
    """Each entry's identity in its feed: its key, or its key and content when the key
    is shared by different reports of this fetch or is a GUID-less site root.

    `hashes[i]` is `content_hash` of `entries[i]`. After this, one key has one content
    within the fetch.
    """
    contents: dict[str, set[str]] = {}
    for entry, digest in zip(entries, hashes, strict=True):
        contents.setdefault(entry.key, set()).add(digest)
    return [
        _digest(f"shared:{entry.key}\n{digest}")
        if len(contents[entry.key]) > 1 or (entry.guid is None and is_site_root(entry.url))
        else entry.key
        for entry, digest in zip(entries, hashes, strict=True)
    ]


def version_key(key: str, digest: str) -> str:
    """The stored key of a later version of the report `key` (unique in its feed)."""
    return f"{key}~{digest}"


def is_site_root(url: str | None) -> bool:
    """Whether a canonical link is a site's front page (no path, no query)."""
    if not url:
        return False
    # A canonical link's path starts at the first slash after the host (no urlsplit:
    # this runs for every GUID-less entry of every fetch).
    rest = url.partition("://")[2]
    slash = rest.find("/")
    return slash == -1 or rest[slash:] == "/"


def _digest(text: str) -> str:
    # surrogatepass: a lone surrogate from a broken feed still has a digest.
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
