"""Safe text: what `clean` and `cap` make of feed text, and how output shows what is left."""

from __future__ import annotations

import json

import pytest

from monitor.core.safetext import ELLIPSIS, cap, clean, cleaned, json_line, shown

CLEAN = [
    pytest.param("Monument unveiled in Kursk", "Monument unveiled in Kursk", id="plain"),
    pytest.param("Памятник бойцам КНДР · 기념비", "Памятник бойцам КНДР · 기념비", id="scripts"),
    pytest.param("a\tb\nc", "a\tb\nc", id="tab-and-newline-stay"),
    pytest.param("bad \ud800 title", "bad \ufffd title", id="lone-surrogate-replaced"),
    pytest.param("\udcff\ud83d", "\ufffd\ufffd", id="surrogate-halves-replaced"),
    pytest.param("nul\x00here", "nulhere", id="nul-removed"),
    pytest.param("\x1b[2J\x1b]0;t\x07x\x08", "[2J]0;tx", id="esc-bel-bs-removed"),
    pytest.param("del\x7f c1\x9b\x80", "del c1", id="del-and-c1-removed"),
    pytest.param("one\rtwo\x0bthree\x0cfour", "one two three four", id="cr-vt-ff-are-spaces"),
    pytest.param("a\x1cb\x1fc\x85d", "a b c d", id="separators-and-nel-are-spaces"),
    pytest.param("abc\u202egpj.exe", "abcgpj.exe", id="right-to-left-override-removed"),
    pytest.param("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069x", "x", id="bidi-controls"),
    pytest.param("שלום\u200f!\u200e \u061c", "שלום\u200f!\u200e \u061c", id="bidi-marks-stay"),
    pytest.param("zero\u200bwidth\u200d", "zero\u200bwidth\u200d", id="format-chars-stay"),
]


@pytest.mark.parametrize(("text", "expected"), CLEAN)
def test_clean(text: str, expected: str) -> None:
    """Surrogates become U+FFFD; unsafe controls go (or become spaces); the rest is untouched."""
    assert clean(text) == expected


def test_clean_returns_ordinary_text_itself() -> None:
    """Text with nothing to clean is returned as it is, not copied."""
    text = "Monument to North Korean soldiers unveiled in Kursk" * 3
    assert clean(text) is text


CAP = [
    pytest.param("short title", 20, "short title", id="short-untouched"),
    pytest.param("exactly ten", 11, "exactly ten", id="at-the-limit-untouched"),
    pytest.param("one two three four", 12, "one two…", id="cut-inside-a-word"),
    pytest.param("one two three four", 9, "one two…", id="cut-before-a-space"),
    pytest.param("one two three four", 8, "one two…", id="ellipsis-counts"),
    pytest.param("a " + "x" * 30, 12, "a xxxxxxxxx…", id="one-huge-word-cut-hard"),
    pytest.param("記念碑が除幕された記念碑が除幕された", 10, "記念碑が除幕された…", id="no-spaces"),
]


@pytest.mark.parametrize(("text", "limit", "expected"), CAP)
def test_cap(text: str, limit: int, expected: str) -> None:
    """Text over the limit is cut on a word boundary, ellipsis included in the limit."""
    capped = cap(text, limit)
    assert capped == expected
    assert len(capped) <= limit


SHOWN = [
    pytest.param("plain", "plain", id="plain"),
    pytest.param("\x1b[2Jx\x07\x08", "\\x1b[2Jx\\x07\\x08", id="controls-escaped"),
    pytest.param("a\nb\tc\r", "a\\nb\\tc\\r", id="one-line"),
    pytest.param("\x9b\x7f\x00", "\\x9b\\x7f\\x00", id="c1-del-nul"),
    pytest.param("abc\u202egpj", "abc\\u202egpj", id="bidi-override-escaped"),
    pytest.param("bad\ud800", "bad\\ud800", id="lone-surrogate-escaped"),
    pytest.param("שלום\u200f", "שלום\u200f", id="bidi-mark-kept"),
]


@pytest.mark.parametrize(("text", "expected"), SHOWN)
def test_shown_escapes_what_a_terminal_would_act_on(text: str, expected: str) -> None:
    """Controls, bidi controls and lone surrogates are shown as escapes, visibly."""
    assert shown(text) == expected


def test_shown_keeps_lines_when_asked_and_caps() -> None:
    """A multi-line text keeps tab and newline; every text is capped at its limit."""
    assert shown("a\n\tb\x1b", lines=True) == "a\n\tb\\x1b"
    assert shown("word " * 1000, 100) == cap("word " * 1000, 100)
    assert len(shown("x" * 10_000)) == 2048


def test_json_line_is_valid_json_with_nothing_raw() -> None:
    """Every unsafe character is a JSON escape; the line reads back to the same strings."""
    value = {"title": "\x1b[2J\x9b\u202eok\ud800\x00", "n": 3, "tags": ["\x07", None]}
    line = json_line(value)
    assert not any(c in line for c in "\x1b\x9b\u202e\ud800\x00\x07")
    assert json.loads(line) == value
    assert "Кур" in json_line({"t": "Курск"})


def test_json_line_caps_every_string() -> None:
    """No one string of a JSON line is longer than the limit."""
    line = json_line({"title": "word " * 100_000, "deep": [{"error": "x" * 100_000}]}, 100)
    assert len(line) < 300
    assert json.loads(line)["title"].endswith(ELLIPSIS)


def test_cleaned_cleans_and_caps_every_string_inside() -> None:
    """Strings in nested dicts, lists and tuples are cleaned and capped; others are kept."""
    value = {"a": ["x\x1by", ("\ud800", 2)], "b": None, "c": "word " * 50}
    assert cleaned(value, 20) == {
        "a": ["xy", ("\ufffd", 2)],
        "b": None,
        "c": "word word word word…",
    }
