"""Rendering: shipped templates in each format, escaping of feed text, overrides."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from apprise.plugins.slack import NotifySlack

from monitor.templates.render import (
    SAMPLES,
    Format,
    Renderer,
    compile_template,
    md_escape,
    web_url,
)

HOSTILE = {
    "html": '<img src=x onerror="alert(1)"><script>steal()</script> & "quotes"',
    "slack": "<!channel> <@U024BE7LH> <https://evil.example|click here> [x](https://evil.example)",
    "heading": "line one\n# Heading\n> quote",
    "backslash": "\\<!here\\>",
    "broadcast": "@here @channel @everyone",
}


def hostile_alert(text: str, kind: str = "alert") -> dict[str, Any]:
    context = copy.deepcopy(SAMPLES[kind])  # type: ignore[index]
    context.update(title=text, outlet=text, story=text)
    context["sources"][0].update(title=text, outlet=text)
    context["corroboration"]["first"].update(outlet=text)
    for other in context["corroboration"]["others"]:
        other.update(outlet=text)
    return context


def slack_text(markdown: str) -> str:
    """What apprise's Slack plugin puts in the payload for a Markdown body."""
    return str(NotifySlack._commonmark_to_slack(markdown))


@pytest.mark.parametrize("kind", ["alert", "update", "digest", "summary", "notice"])
@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_shipped_templates_render_every_sample(kind: str, fmt: str) -> None:
    """Each shipped template renders its sample with a one-line title and a body."""
    message = Renderer().render(kind, fmt, SAMPLES[kind])  # type: ignore[arg-type]
    assert message.title
    assert "\n" not in message.title
    assert message.body.strip()
    assert message.format == fmt


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_shipped_digest_templates_count_what_they_leave_out(fmt: str) -> None:
    """A digest over `DIGEST_SHOWN` says how many reports it did not list, and a listed
    report carried by other links says by how many, in every format."""
    sample = SAMPLES["digest"]
    [event] = sample["reports"]
    [report] = event["reports"]
    later = {**event, "reports": [{**report, "more": 2}], "count": 7, "hidden": 4}
    context = {**sample, "reports": [later]}
    body = Renderer().render("digest", fmt, context).body
    assert "7 new reports" in body
    assert "+2 more" in body
    assert "4 more reports" in body
    assert f"{sample['updates_hidden']} more updates" in body


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_shipped_summary_templates_count_what_they_leave_out(fmt: str) -> None:
    """A summary over `SUMMARY_SHOWN` says how many updates it did not list."""
    context = {**SAMPLES["summary"], "count": 40, "hidden": 38}
    body = Renderer().render("summary", fmt, context).body
    assert "38 more updates" in body


@pytest.mark.parametrize(
    ("fmt", "corroboration"),
    [
        pytest.param(
            "text",
            "First: TASS (agency) 14:05; RIA Novosti (agency) 14:20, Kursk Pravda 15:10; "
            "3 outlets, 2 languages",
            id="text",
        ),
        pytest.param(
            "markdown",
            "First: [TASS](<https://tass.example/society/1>) (agency) 14:05; "
            "[RIA Novosti](<https://ria.example/1>) (agency) 14:20, "
            "[Kursk Pravda](<https://kp.example/2>) 15:10; 3 outlets, 2 languages",
            id="markdown",
        ),
        pytest.param(
            "html",
            'First: <a href="https://tass.example/society/1">TASS</a> (agency) 14:05; '
            '<a href="https://ria.example/1">RIA Novosti</a> (agency) 14:20, '
            '<a href="https://kp.example/2">Kursk Pravda</a> 15:10; 3 outlets, 2 languages.',
            id="html",
        ),
    ],
)
def test_alert_shows_what_matters(fmt: Format, corroboration: str) -> None:
    """An alert names the milestone, story, headline, outlet and link, and who reported
    first and when, then each other outlet (linked where the format can), with the
    count of outlets and languages."""
    body = Renderer().render("alert", fmt, SAMPLES["alert"]).body
    for needle in ("Unveiled", "Kursk region", "TASS", "tass.example/society/1"):
        assert needle in body, needle
    assert corroboration in body


def test_a_single_report_is_named_as_the_first() -> None:
    """With one report the line still says who reported first and when."""
    context = copy.deepcopy(SAMPLES["alert"])
    context["corroboration"].update(others=[], outlets=1, languages=1)
    body = Renderer().render("alert", "text", context).body
    assert "First: TASS (agency) 14:05; 1 outlet, 1 language" in body.splitlines()


@pytest.mark.parametrize("kind", ["alert", "update"])
@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_html_escapes_feed_text(text: str, kind: str) -> None:
    """No feed text reaches an email body as markup."""
    body = Renderer().render(kind, "html", hostile_alert(text, kind)).body  # type: ignore[arg-type]
    assert "<script" not in body
    assert "<img" not in body
    assert 'onerror="' not in body
    assert "&lt;" in body or "<" not in text


@pytest.mark.parametrize("kind", ["alert", "update"])
@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_slack_text_has_no_injected_controls(text: str, kind: str) -> None:
    """After apprise's conversion, feed text forms no mention, broadcast or link."""
    message = Renderer().render(kind, "markdown", hostile_alert(text, kind))  # type: ignore[arg-type]
    body = slack_text(message.body)
    controls = re.findall(r"<([^>|]*)[^>]*>", body)
    # The controls left are the links the template made: to the report's own URL, and
    # to each outlet's first report.
    sample: dict[str, Any] = SAMPLES[kind]  # type: ignore[index]
    found = sample["corroboration"]
    outlets = [found["first"]["url"], *(other["url"] for other in found["others"])]
    assert controls == [sample["url"], *outlets]
    assert not re.search(r"(?m)^#", body)
    assert not re.search(r"@(here|channel|everyone)\b", body)


CONTROLS = "\x1b]0;owned\x07\x1b[2J\x08\x00\x9b\u202egpj.exe"
RAW = ("\x1b", "\x07", "\x08", "\x00", "\x9b", "\u202e", "\ud800")


@pytest.mark.parametrize("kind", ["alert", "update", "digest", "summary"])
@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_controls_in_feed_text_reach_no_message(kind: str, fmt: str) -> None:
    """Controls, bidi overrides and lone surrogates in any field never reach a message raw."""
    context = _with_every_string(SAMPLES[kind], f"{CONTROLS} Kursk \ud800 news")  # type: ignore[index]
    message = Renderer().render(kind, fmt, context)  # type: ignore[arg-type]
    assert [c for c in RAW if c in message.title + message.body] == []
    assert "2Jgpj.exe Kursk \ufffd news" in message.title + message.body


@pytest.mark.parametrize("kind", ["alert", "update", "digest", "summary", "notice"])
@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_a_huge_field_makes_no_huge_message(kind: str, fmt: str) -> None:
    """Every field is capped before it is rendered: a megabyte anywhere is a small message."""
    context = _with_every_string(SAMPLES[kind], "word " * 200_000)  # type: ignore[index]
    message = Renderer().render(kind, fmt, context)  # type: ignore[arg-type]
    assert len(message.title) < 5_000
    assert len(message.body) < 100_000


def _with_every_string(value: Any, text: str) -> Any:
    """`value` with every string in it but URLs replaced by `text`."""
    if isinstance(value, dict):
        return {k: v if k == "url" else _with_every_string(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_every_string(item, text) for item in value]
    return text if isinstance(value, str) else value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words", "plain words"),
        ("a < b > c", "a \\< b \\> c"),
        ("[x](y)", "\\[x\\]\\(y\\)"),
        ("two\nlines", "two lines"),
        ("ping @here", "ping @\u2060here"),
    ],
    ids=["plain", "angles", "link", "newline", "broadcast"],
)
def test_md_escape(text: str, expected: str) -> None:
    """Markdown escaping defuses exactly the characters that make markup."""
    assert md_escape(text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/x?y=1&z=2", "https://a.example/x?y=1&z=2"),
        ("javascript:alert(1)", None),
        ("https://a.example/a b>c|d", "https://a.example/a%20b%3Ec%7Cd"),
        ("/relative", None),
        (None, None),
    ],
    ids=["plain", "javascript", "breakers", "relative", "none"],
)
def test_only_web_urls_become_links(url: str | None, expected: str | None) -> None:
    """Links are made only to absolute http(s) URLs, with link-breaking characters encoded."""
    assert web_url(url) == expected


def test_a_javascript_link_is_shown_as_text() -> None:
    """An event or report whose URL is not http(s) is shown without a link in every format."""
    context = copy.deepcopy(SAMPLES["alert"])
    context["url"] = "javascript:alert(1)"
    context["corroboration"]["first"]["url"] = "javascript:alert(1)"
    context["corroboration"]["others"] = []
    for fmt in ("markdown", "html"):
        body = Renderer().render("alert", fmt, context).body
        assert "javascript:alert" not in body.replace("Link: javascript:alert(1)", "")
        assert "href=" not in body


def test_override_replaces_one_part() -> None:
    """A configured template replaces the shipped one for that part only."""
    renderer = Renderer({"alert": {"title": "NEW {{ label | upper }}: {{ title }}"}})
    message = renderer.render("alert", "html", SAMPLES["alert"])
    assert message.title.startswith("NEW UNVEILED: Monument")
    assert "<h2" in message.body


def test_override_is_autoescaped() -> None:
    """An override that prints feed text cannot bypass escaping by accident."""
    renderer = Renderer({"alert": {"html": "<b>{{ title }}</b>"}})
    body = renderer.render("alert", "html", hostile_alert(HOSTILE["html"])).body
    assert body.startswith("<b>&lt;img")


def test_sandbox_refuses_unsafe_attributes() -> None:
    """Templates run sandboxed: reaching Python internals fails at load time."""
    with pytest.raises(ValueError, match="fails on sample data"):
        compile_template("alert", "text", "{{ title.__class__.__mro__[1].__subclasses__() }}")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% if title %}", "template syntax error"),
        ("{{ headline }}", "'headline' is undefined"),
        ("{{ title | nosuchfilter }}", "template syntax error"),
    ],
    ids=["unclosed", "unknown-name", "unknown-filter"],
)
def test_bad_override_is_refused(source: str, message: str) -> None:
    """Syntax errors and unknown names are found when the template is compiled."""
    with pytest.raises(ValueError, match=message):
        compile_template("alert", "html", source)
