"""Turn a message's context into text for one kind of target, through Jinja2 templates.

Three output formats, one per kind of target:

    text      plain text (json://, the stdout target, most apprise services)
    markdown  CommonMark that apprise turns into Slack mrkdwn
    html      an email body (apprise adds the plain-text alternative part)

Feed text is never trusted. Every string in a context is first `cleaned` (see
`monitor.core.safetext`: no control characters but tab and newline, no bidi overrides, no
lone surrogates) and capped at `SHOWN_MAX_CHARS`, so neither a row stored before text
was made safe at the parse boundary nor an error text from a server can carry terminal
escapes or a megabyte into a message. Then every value a template prints is escaped
for its format, the way Jinja's autoescape does for HTML: `html` escapes `<>&"'`;
`markdown` escapes what Slack or CommonMark would read as markup (`<` `>` become `\\<`
`\\>`, which apprise sends as `&lt;` `&gt;`, so `<!channel>`, `<@U123>` and `<url|label>`
cannot be formed; `[`, `]`, `(`, `)`, `!`, `#` lose their link and heading meaning);
`text` prints as is.
Links are made only by the `link(url, label)` helper, and only for http(s) URLs.
Templates run in Jinja's sandbox; the defaults live in `monitor/templates/` and each
can be overridden from the config (`templates.<kind>.<part>`), checked at load time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args
from urllib.parse import quote, urlsplit

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from monitor.core.safetext import cleaned

Format = Literal["text", "markdown", "html"]
Kind = Literal["alert", "update", "digest", "summary", "notice", "health", "dead_letter"]
Part = Literal["title", "text", "markdown", "html"]
FORMATS: tuple[Format, ...] = get_args(Format)
KINDS: tuple[Kind, ...] = get_args(Kind)
PARTS: tuple[Part, ...] = get_args(Part)


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered notification: a plain-text title and a body in `format`."""

    title: str
    body: str
    format: Format = "text"
    data: Mapping[str, Any] | None = field(default=None, compare=False)
    """What an alert or update is, as one object (`messages.alert_data`), for a target
    that carries structured fields (json://, form://); None for other messages."""


# -- escaping -------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\<>\[\]()!#])")
_SLACK_BROADCAST = re.compile(r"@(here|channel|everyone)\b", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_WORD_JOINER = "\u2060"


def md_escape(text: str) -> str:
    """Feed text made inert for CommonMark and for apprise's Slack conversion.

    Whitespace runs become one space, so a value cannot start a line of its own (a
    heading, a quote, a list). `@here`-style words get an invisible joiner after `@`.
    """
    flat = _SPACES.sub(" ", text).strip()
    escaped = _MD_SPECIAL.sub(r"\\\1", flat)
    return _SLACK_BROADCAST.sub(lambda m: "@" + _WORD_JOINER + m.group(1), escaped)


def web_url(url: object) -> str | None:
    """`url` when it is an absolute http(s) URL, with link-breaking characters encoded."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url.strip(), safe="/:?#[]@!$&'*+,;=%~-._")


def _md_finalize(value: Any) -> Any:
    if isinstance(value, Markup) or value is None:
        return value
    return Markup(md_escape(str(value)))


def _html_link(url: object, label: object = None) -> Markup:
    text = label if label not in (None, "") else url
    target = web_url(url)
    if target is None:
        return escape(text)
    return Markup('<a href="{}">{}</a>').format(target, text)


def _md_link(url: object, label: object = None) -> Markup:
    text = md_escape(str(label if label not in (None, "") else url))
    target = web_url(url)
    if target is None:
        return Markup(text)
    # Angle brackets keep parentheses in the URL from closing the link early.
    return Markup(f"[{text}](<{target}>)")


def _text_link(url: object, label: object = None) -> str:
    target = web_url(url) or (url if isinstance(url, str) else "")
    if label in (None, "", url):
        return target
    return f"{label} <{target}>" if target else str(label)


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 outlet`, `3 outlets`."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


@cache
def _environment(fmt: Format) -> SandboxedEnvironment:
    options: dict[str, Any] = {
        "trim_blocks": True,
        "lstrip_blocks": True,
        "undefined": StrictUndefined,
        "keep_trailing_newline": False,
    }
    link: Callable[..., object]
    if fmt == "html":
        env = SandboxedEnvironment(autoescape=True, **options)
        link = _html_link
    elif fmt == "markdown":
        env = SandboxedEnvironment(autoescape=True, finalize=_md_finalize, **options)
        link = _md_link
    else:
        env = SandboxedEnvironment(autoescape=False, **options)
        link = _text_link
    env.globals.update(link=link, plural=plural)
    return env


def _format_of(part: Part) -> Format:
    return "text" if part == "title" else part


# -- templates ------------------------------------------------------------------


def default_source(kind: Kind, part: Part) -> str:
    """The shipped template for `kind` and `part` (monitor/templates/KIND.PART.j2)."""
    return (resources.files("monitor.templates") / f"{kind}.{part}.j2").read_text("utf-8")


def compile_template(kind: Kind, part: Part, source: str) -> Template:
    """Compile `source` and render it once on sample data; ValueError says what is wrong."""
    env = _environment(_format_of(part))
    try:
        template = env.from_string(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error on its line {exc.lineno}: {exc.message}") from None
    try:
        template.render(SAMPLES[kind])
    except TemplateError as exc:
        raise ValueError(f"template fails on sample data: {exc}") from None
    return template


class Renderer:
    """Renders each kind of message in each format, from defaults or overrides."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str | None]] | None = None) -> None:
        self._overrides = overrides or {}
        self._templates: dict[tuple[Kind, Part], Template] = {}

    def render(self, kind: Kind, fmt: Format, context: Mapping[str, Any]) -> Message:
        """The message of `kind` for a target that takes `fmt`."""
        context = cleaned(context)
        title = _one_line(self._template(kind, "title").render(context))
        body = self._template(kind, fmt).render(context).strip() + "\n"
        return Message(title=title, body=body, format=fmt)

    def title(self, kind: Kind, context: Mapping[str, Any]) -> str:
        """Only the title of the message of `kind`: what a queued message is listed as."""
        return _one_line(self._template(kind, "title").render(cleaned(context)))

    def _template(self, kind: Kind, part: Part) -> Template:
        """Compiled on first use: a cycle that sends nothing compiles nothing. Overrides
        were already compiled and tried when the config loaded, so none fails here."""
        template = self._templates.get((kind, part))
        if template is None:
            source = self._overrides.get(kind, {}).get(part)
            if source is None:
                source = default_source(kind, part)
            template = self._templates[kind, part] = compile_template(kind, part, source)
        return template


def page(context: Mapping[str, Any]) -> str:
    """The HTML page of the HTTP endpoint (`page.html.j2`, not overridable), every value
    cleaned and escaped as in an html message."""
    return _page_template().render(cleaned(context))


@cache
def _page_template() -> Template:
    source = (resources.files("monitor.templates") / "page.html.j2").read_text("utf-8")
    return _environment("html").from_string(source)


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


# -- sample data (for checking overrides at load time, and for the docs) --------

_SAMPLE_EVENT: dict[str, Any] = {
    "label": "Unveiled",
    "milestone": "unveiling",
    "story": "Monument to North Korean soldiers in the Kursk region",
    "story_id": "kursk-kpa-monument",
    "title": "Monument to North Korean soldiers unveiled in Kursk region",
    "lead": "The governor opened the monument at a ceremony attended by veterans.",
    "outlet": "TASS",
    "url": "https://tass.example/society/1",
    "created_at": "2026-11-27 14:05 MSK",
    "published": "2026-11-27 14:01 MSK",
    "explain": True,
    "terms": ["monument", "north korean", "kursk", "unveiled"],
    "also": {"outlets": 2, "languages": 2},
    "sources": [
        {
            "title": "В Курске открыли монумент бойцам КНДР",
            "outlet": "RIA Novosti",
            "url": "https://ria.example/1",
            "lang": "ru",
            "seen_at": "2026-11-27 14:20 MSK",
        }
    ],
    "corroboration": {
        "first": {
            "outlet": "TASS",
            "feed": "TASS",
            "url": "https://tass.example/society/1",
            "lang": "en",
            "tier": "agency",
            "at": "14:05",
            "seen_at": "2026-11-27 14:05 MSK",
        },
        "others": [
            {
                "outlet": "RIA Novosti",
                "feed": "RIA Novosti",
                "url": "https://ria.example/1",
                "lang": "ru",
                "tier": "agency",
                "at": "14:20",
                "seen_at": "2026-11-27 14:20 MSK",
            },
            {
                "outlet": "Kursk Pravda",
                "feed": "Kursk Pravda",
                "url": "https://kp.example/2",
                "lang": "ru",
                "tier": "press",
                "at": "15:10",
                "seen_at": "2026-11-27 15:10 MSK",
            },
        ],
        "more": 0,
        "outlets": 3,
        "languages": 2,
    },
}

_SAMPLE_UPDATE: dict[str, Any] = {
    **_SAMPLE_EVENT,
    "label": "Update",
    "milestone": None,
    "title": "Kursk region starts fundraising for monument to North Korean soldiers",
    "lead": "Donations will go to the monument's upkeep.",
    "outlet": "Interfax",
    "url": "https://interfax.example/3",
    "terms": ["monument", "north korean", "kursk"],
    "corroboration": {
        "first": {
            "outlet": "Interfax",
            "feed": "Interfax",
            "url": "https://interfax.example/3",
            "lang": "en",
            "tier": "agency",
            "at": "11:30",
            "seen_at": "2026-11-27 11:30 MSK",
        },
        "others": [],
        "more": 0,
        "outlets": 1,
        "languages": 1,
    },
}

SAMPLES: dict[Kind, dict[str, Any]] = {
    "alert": _SAMPLE_EVENT,
    "update": _SAMPLE_UPDATE,
    "digest": {
        "story": _SAMPLE_EVENT["story"],
        "story_id": _SAMPLE_EVENT["story_id"],
        "since": "2026-11-26 08:00 MSK",
        "until": "2026-11-27 08:00 MSK",
        "date": "2026-11-27",
        "updates": [
            {
                "title": "Kursk governor discusses the monument",
                "outlet": "Interfax",
                "url": "https://interfax.example/2",
                "lang": "en",
                "seen_at": "2026-11-26 16:40 MSK",
                "more": 1,
            }
        ],
        # Over `messages.DIGEST_SHOWN` reports, the rest are counted: `updates_hidden`,
        # and each milestone's `hidden`. `update_count` and `count` include rewrites.
        "update_count": 5,
        "updates_hidden": 3,
        "reports": [
            {
                **_SAMPLE_EVENT,
                "reports": [{**s, "more": 0} for s in _SAMPLE_EVENT["sources"]],
                "count": 1,
                "hidden": 0,
            }
        ],
        "timeline": [_SAMPLE_EVENT],
    },
    "summary": {
        "target": "slack",
        "count": 2,
        "limit": 10,
        "alerts": [_SAMPLE_EVENT, _SAMPLE_UPDATE],
        # Over `messages.SUMMARY_SHOWN`: the updates counted, not listed.
        "hidden": 0,
    },
    "notice": {
        "title": "Feed TASS is failing",
        "lines": ["Failing since 2026-11-27 08:00 MSK (12 attempts).", "Last error: HTTP 503"],
    },
    "health": {
        "change": "failing",
        "feed": "TASS",
        "url": "https://tass.example/rss",
        "at": "2026-11-27 14:05 MSK",
        "since": "2026-11-27 08:00 MSK",
        "failures": 12,
        "error": "HTTP 503",
        "usual": "3.5 hours",
        "was": None,
    },
    "dead_letter": {
        "target": "slack",
        "count": 2,
        "max_attempts": 12,
        "max_age": "2 days",
        "error": "HTTP 500 from slack",
        "rows": [
            {
                "kind": "alert",
                "queued": "2026-11-27 14:05 MSK",
                "title": "Monument to North Korean soldiers unveiled in Kursk region",
                "label": "Kursk monument: Monument unveiled",
                "event_id": 7,
            },
            {
                "kind": "digest",
                "queued": "2026-11-28 08:00 MSK",
                "title": None,
                "label": None,
                "event_id": None,
            },
        ],
        "more": 0,
    },
}
"""One example context per kind: the names a template may use."""
