"""Feed text made safe: cleaned once where it is read, and shown safely wherever it goes out.

A feed can put anything into a title: a lone surrogate (`\\ud800`, which no database
can encode), a NUL (which PostgreSQL refuses), terminal escapes (ESC, BEL, BS, the
8-bit CSI) that would rewrite a terminal, bidi overrides that make a headline display
as another, a megabyte of text. Two layers keep that out of harm's way:

- `clean` and `cap` run at the parse boundary, on every text field of an `Entry`, so
  what is stored, matched and sent is safe text of a bounded size.
- `shown`, `json_line` and `cleaned` run on output (commands, messages), so rows stored
  before text was cleaned, error texts from servers and text typed by a user are safe
  too, and no one field can make an output huge.

The characters:

- lone surrogates (U+D800-U+DFFF) become U+FFFD, the replacement character;
- control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F) are removed,
  except tab and newline, which stay, and those that separate words like whitespace
  (CR, VT, FF, the information separators U+001C-U+001F, NEL U+0085), which become a
  space so that no two words are joined;
- the explicit bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069)
  are removed: they reorder the text around them (a headline can display as another,
  a link as another address). The implicit marks (LRM U+200E, RLM U+200F, ALM U+061C)
  stay: they only nudge neutral characters such as punctuation, and right-to-left text
  needs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

ELLIPSIS = "…"

SHOWN_MAX_CHARS = 2048
"""The most of one field that any command or message shows: as long as the longest link
an entry keeps (`monitor.ingest.normalize.URL_MAX_CHARS`), four times its longest title."""

_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
_SURROGATES = "\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_CONTROLS}{_SURROGATES}]")
_SPACING = frozenset("\r\x0b\x0c\x1c\x1d\x1e\x1f\x85")


def _replacement(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    return " " if char in _SPACING else ""


def clean(text: str) -> str:
    """`text` with lone surrogates replaced and unsafe controls removed (see the module)."""
    if text.isprintable() or _UNSAFE.search(text) is None:  # nearly always: cheap checks
        return text
    return _UNSAFE.sub(lambda match: _replacement(match.group()), text)


def cap(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, on a word boundary, ending in an ellipsis.

    A cut that would lose more than half of what fits (one huge word, or a script
    written without spaces) falls where the limit does instead.
    """
    if len(text) <= limit:
        return text
    head = text[: limit - len(ELLIPSIS)]
    if not text[len(head)].isspace():  # the cut falls inside a word: drop that word
        start = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
        if start > len(head) // 2:
            head = head[:start]
    return head.rstrip() + ELLIPSIS


# -- output -------------------------------------------------------------------------

_SHOWN_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_CONTROLS}{_SURROGATES}]")
_SHOWN_UNSAFE_IN_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_CONTROLS}{_SURROGATES}]")
# What json.dumps leaves raw with ensure_ascii=False (it escapes U+0000-U+001F itself).
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI_CONTROLS}{_SURROGATES}]")
_NAMED_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escaped(char: str) -> str:
    code = ord(char)
    named = _NAMED_ESCAPES.get(char)
    return named or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def shown(text: str, limit: int | None = SHOWN_MAX_CHARS, *, lines: bool = False) -> str:
    """`text` safe for a terminal: capped at `limit`, every unsafe character escaped.

    Controls, bidi controls and lone surrogates are written as Python escapes (`\\x1b`,
    `\\u202e`, `\\ud800`), so what was there can still be seen; tab and newline too,
    unless `lines` lets a multi-line text keep them.
    """
    if limit is not None:
        text = cap(text, limit)
    pattern = _SHOWN_UNSAFE_IN_LINES if lines else _SHOWN_UNSAFE
    if pattern.search(text) is None:
        return text
    return pattern.sub(lambda match: _escaped(match.group()), text)


def json_line(value: Any, limit: int = SHOWN_MAX_CHARS) -> str:
    """`value` as one line of JSON, readable (not ASCII-escaped) yet safe for a terminal.

    Every string in it is capped at `limit`; controls, bidi controls and lone
    surrogates are JSON escapes (`\\u001b`, `\\u202e`), so the line stays valid JSON
    and reads back to the same (capped) strings.
    """
    line = json.dumps(cleaned(value, limit, clean_text=False), ensure_ascii=False)
    if _JSON_UNSAFE.search(line) is None:
        return line
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", line)


def cleaned(value: Any, limit: int = SHOWN_MAX_CHARS, *, clean_text: bool = True) -> Any:
    """`value` with every string inside it (in mappings, lists, tuples) cleaned and capped."""
    if isinstance(value, str):
        return cap(clean(value) if clean_text else value, limit)
    if isinstance(value, Mapping):
        return {key: cleaned(item, limit, clean_text=clean_text) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(cleaned(item, limit, clean_text=clean_text) for item in value)
    return value
