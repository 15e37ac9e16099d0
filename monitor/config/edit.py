"""Add feeds to a config file's text, leaving every other byte of it as it was.

The new entries are written in the layout of the file's last feed, right after its
last line, so comments, blank lines, quoting and key order elsewhere stay untouched:
the file stays the one its owner wrote, with entries added. ruamel.yaml finds where the
`feeds:` list and its last entry are; the text is then edited as text. The result is
only a proposal: the caller validates it as the service would before writing it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from monitor.core.errors import ConfigError

_PLAIN = re.compile(r"[\w][\w .,/:?=&%+~@()'-]*")
"""A scalar simple enough to be written without quotes (and checked to read back so)."""


def append_feeds(text: str, feeds: Sequence[Mapping[str, str]]) -> str:
    """`text` with `feeds` (each key → value, in order) added at the end of `feeds:`."""
    try:
        document = YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    listed = document.get("feeds") if isinstance(document, CommentedMap) else None
    if not isinstance(listed, CommentedSeq) or not listed:
        raise ConfigError("no `feeds:` list to add to", key="feeds")
    if listed.fa.flow_style():
        raise ConfigError(
            "`feeds:` is written as a flow [...] list: add to it by hand", key="feeds"
        )
    lines = text.splitlines(keepends=True)
    line, key_column = listed.lc.data[len(listed) - 1]
    dash_column = lines[line].rfind("-", 0, key_column)
    if dash_column < 0 or lines[line][:dash_column].strip():
        raise ConfigError("cannot tell the layout of the last feed: add to it by hand", key="feeds")
    after = _end_of_entry(lines, line, dash_column)
    newline = "\r\n" if lines[line].endswith("\r\n") else "\n"
    entries = "".join(_entry(feed, dash_column, key_column, newline) for feed in feeds)
    head = "".join(lines[:after])
    if head and not head.endswith("\n"):
        head += newline
    return head + entries + "".join(lines[after:])


def _end_of_entry(lines: list[str], start: int, dash_column: int) -> int:
    """The index of the line after the entry starting at `start`'s last content line.

    Comments and blank lines after it stay where they are: they introduce what follows.
    """
    end = start + 1
    for number in range(start + 1, len(lines)):
        stripped = lines[number].strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(lines[number]) - len(lines[number].lstrip(" "))
        if indent <= dash_column:
            break
        end = number + 1
    return end


def _entry(feed: Mapping[str, str], dash_column: int, key_column: int, newline: str) -> str:
    out = []
    for i, (key, value) in enumerate(feed.items()):
        lead = " " * dash_column + "-" + " " * (key_column - dash_column - 1)
        out.append(f"{lead if i == 0 else ' ' * key_column}{key}: {scalar(value)}{newline}")
    return "".join(out)


def scalar(value: str) -> str:
    """`value` as a YAML scalar: plain when it reads back as the same string, else quoted.

    A `${` is written `$${`, so the config's `${VAR}` substitution leaves it as it is.
    """
    if "${" in value:
        return json.dumps(value.replace("${", "$${"), ensure_ascii=False)
    if _PLAIN.fullmatch(value) and " #" not in value and ": " not in value:
        try:
            if yaml.safe_load(f"k: {value}") == {"k": value}:
                return value
        except yaml.YAMLError:
            pass
    # A JSON string is a YAML double-quoted scalar.
    return json.dumps(value, ensure_ascii=False)


def write_atomically(path: Path, text: str) -> None:
    """Replace the file at `path` with `text` at once: a reader sees the old or the new.

    Raises OSError (after removing its temporary file) when it cannot.
    """
    mode = path.stat().st_mode & 0o7777
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
