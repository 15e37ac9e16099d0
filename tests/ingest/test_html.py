"""HTML to plain text: what reaches rules, fingerprints and notifications."""

from __future__ import annotations

import time

import pytest

from monitor.ingest.html import MAX_HTML_CHARS, collapse_whitespace, html_to_text

CASES = [
    pytest.param("A plain title", "A plain title", id="plain-text"),
    pytest.param("  spread \n\t out  ", "spread out", id="whitespace-collapsed"),
    pytest.param("AT&amp;T &lt;b&gt; &#x41;&#66;", "AT&T <b> AB", id="entities-decoded"),
    pytest.param("a&nbsp;b", "a b", id="nbsp-is-whitespace"),
    pytest.param("Tom & Jerry", "Tom & Jerry", id="bare-ampersand"),
    pytest.param("<b>bold</b> and <i>italic</i>", "bold and italic", id="inline-tags"),
    pytest.param("<p>one</p><p>two</p>", "one two", id="paragraphs-separated"),
    pytest.param("line<br>break<br/>again", "line break again", id="br-separates"),
    pytest.param("<ul><li>a</li><li>b</li></ul>c", "a b c", id="list-items-separated"),
    pytest.param("x<div>y</div>z", "x y z", id="div-separates-both-sides"),
    pytest.param("<td>1</td><td>2</td>", "1 2", id="table-cells-separated"),
    pytest.param("in<b>line</b>word", "inlineword", id="inline-does-not-separate"),
    pytest.param("a<script>alert('x')</script>b", "ab", id="script-dropped"),
    pytest.param("a<SCRIPT type=x>evil()</SCRIPT>b", "ab", id="uppercase-script-dropped"),
    pytest.param("<style>p { color: red }</style>text", "text", id="style-dropped"),
    pytest.param('<img src="x" onerror="alert(1)">caption', "caption", id="onerror-dropped"),
    pytest.param('<a href="javascript:alert(1)">link</a>', "link", id="javascript-href-dropped"),
    pytest.param("<iframe>frame text</iframe>after", "after", id="iframe-dropped"),
    pytest.param("<!-- note -->visible", "visible", id="comment-dropped"),
    pytest.param("don\x92t \x96 stop", "don’t – stop", id="c1-controls-as-windows-1252"),
    pytest.param("<p>Привет, <b>мир</b></p>", "Привет, мир", id="cyrillic"),
    pytest.param("<b>a</b>\x00b", "ab", id="nul-in-markup-removed"),
    pytest.param("<b>bad\ud800</b>", "bad\ufffd", id="surrogate-in-markup-replaced"),
    pytest.param("<p>a &#27; &#x202E;b</p>", "a b", id="control-references-removed"),
    pytest.param("a \x1b\x07 b\x08", "a b", id="removed-controls-leave-one-space"),
    pytest.param("", "", id="empty"),
    pytest.param("<p> </p>", "", id="only-markup"),
    pytest.param(
        "&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>", id="escaped"
    ),
]


@pytest.mark.parametrize(("html", "text"), CASES)
def test_html_to_text(html: str, text: str) -> None:
    """Markup becomes readable one-line text; code never does."""
    assert html_to_text(html) == text


def test_entity_declarations_in_html_stay_inert() -> None:
    """A DTD smuggled into an HTML fragment expands nothing."""
    laughs = '<!DOCTYPE x [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><p>&b;</p>'
    assert "lol" not in html_to_text(laughs)


def test_huge_input_is_bounded() -> None:
    """Only the first MAX_HTML_CHARS characters of markup are read, so cost stays bounded."""
    huge = "<p>word</p>" * (MAX_HTML_CHARS // 5)
    started = time.perf_counter()
    text = html_to_text(huge)
    assert time.perf_counter() - started < 1.0
    assert len(text) <= MAX_HTML_CHARS


@pytest.mark.parametrize(
    ("raw", "collapsed"),
    [
        pytest.param(" a \t b\n", "a b", id="ascii-whitespace"),
        pytest.param("a\u00a0\u2003b", "a b", id="unicode-spaces"),
        pytest.param("", "", id="empty"),
    ],
)
def test_collapse_whitespace(raw: str, collapsed: str) -> None:
    """Any run of whitespace becomes one space and the ends are trimmed."""
    assert collapse_whitespace(raw) == collapsed
