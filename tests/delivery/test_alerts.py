"""Alerts for people: the lead of the report under its headline, the matched terms only
for a target that asks (`explain: true`), and for json:// and form:// targets the alert
as one structured object beside apprise's title and message."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest

from monitor.config.settings import load_config
from monitor.delivery.messages import (
    SHOWN_OUTLETS,
    alert_context,
    alert_data,
    corroboration,
    corroboration_line,
    lead_of,
)
from monitor.delivery.notify import AppriseSender
from monitor.store.views import EventView, SourceView
from monitor.templates.render import Message, Renderer
from tests.conftest import REPO
from tests.support.desk import Desk
from tests.support.events import STORY, STORY_NAME, label
from tests.support.servers import AlertReceiver

UNVEILED = "Monument to North Korean soldiers unveiled in Kursk"
FUNDRAISING = "Kursk region starts fundraising for monument to North Korean soldiers"
HOSTILE = (
    'The governor said <script>alert("x")</script> & [click](https://evil.example) '
    "were not there. Veterans came."
)


@pytest.fixture
def third() -> Iterator[AlertReceiver]:
    """A third receiver, for a third target."""
    server = AlertReceiver().start()
    yield server
    server.stop()


# -- the lead -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "text", "lead"),
    [
        pytest.param(
            "Monument unveiled",
            "The governor opened it on Sunday. Veterans came.",
            "The governor opened it on Sunday.",
            id="first-sentence",
        ),
        pytest.param(
            "Monument unveiled",
            "Monument unveiled. The governor opened it. Veterans came.",
            "The governor opened it.",
            id="title-repeated",
        ),
        pytest.param(
            "Открыт монумент",
            "Губернатор А. Хинштейн открыл памятник: 1.5 тыс. гостей. Были ветераны.",
            "Губернатор А. Хинштейн открыл памятник: 1.5 тыс. гостей.",
            id="initial-and-number",
        ),
        pytest.param("Monument unveiled", "Monument unveiled", None, id="only-the-title"),
        pytest.param("Monument unveiled", "", None, id="no-text"),
        pytest.param("Monument unveiled", "  \n ", None, id="blank-text"),
    ],
)
def test_the_lead_is_the_first_sentence_never_the_title(
    title: str, text: str, lead: str | None
) -> None:
    """The first sentence (not cut at an initial or a decimal point), read from after a
    repeated headline; None without text or with only the headline."""
    assert lead_of(title, text) == lead


def test_a_long_lead_is_cut_at_a_word_with_an_ellipsis() -> None:
    """A first sentence over 200 characters is cut after a whole word, with an ellipsis."""
    text = "The ceremony " + "went on and on " * 30 + "until dusk. Then it ended."
    lead = lead_of("Monument unveiled", text)
    assert lead is not None
    assert len(lead) <= 200
    assert lead.endswith("…")
    assert text.startswith(lead[:-1])
    assert text[len(lead) - 1] == " "  # cut after a whole word


def _alert_by_format(
    desk_for: Callable[..., Desk], receivers: list[AlertReceiver], kind: str, summary: str
) -> dict[str, dict[str, Any]]:
    """Send one alert (or update) with `summary` as its text to a text, a markdown and an
    html json:// target; the payload each target received, by format."""
    formats = ["text", "markdown", "html"]
    desk = desk_for(
        [
            {"name": fmt, "url": r.url, "format": fmt, "receive": ["alerts", "updates"]}
            for fmt, r in zip(formats, receivers, strict=True)
        ]
    )
    if kind == "alert":
        desk.news.report(UNVEILED, "unveiling", summary=summary)
    else:
        desk.news.report(FUNDRAISING, summary=summary)
    assert desk.deliver().sent == 3
    payloads = {}
    for fmt, r in zip(formats, receivers, strict=True):
        [payloads[fmt]] = r.messages()
    return payloads


@pytest.mark.parametrize("kind", ["alert", "update"])
def test_the_lead_is_in_every_format_escaped_for_it(
    desk_for: Callable[..., Desk],
    receiver: AlertReceiver,
    second: AlertReceiver,
    third: AlertReceiver,
    kind: str,
) -> None:
    """The report's first sentence goes under the headline, in each format escaped as
    the headline is: no tag or entity in html, no link or tag in markdown."""
    sent = _alert_by_format(desk_for, [receiver, second, third], kind, HOSTILE)
    bodies = {fmt: payload["message"] for fmt, payload in sent.items()}
    assert 'The governor said <script>alert("x")</script> & [click]' in bodies["text"]
    assert "Veterans came" not in bodies["text"]  # the first sentence only
    html = bodies["html"]
    assert "<script>" not in html
    assert "The governor said &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; [click]" in html
    markdown = bodies["markdown"]
    assert "<script>" not in markdown
    assert "[click](" not in markdown
    assert r"The governor said \<script\>alert\(" in markdown
    assert r"\[click\]\(https://evil.example\)" in markdown


@pytest.mark.parametrize("kind", ["alert", "update"])
def test_no_text_no_lead(
    desk_for: Callable[..., Desk],
    receiver: AlertReceiver,
    second: AlertReceiver,
    third: AlertReceiver,
    kind: str,
) -> None:
    """A report whose text is only its headline again has no lead: no line in any
    format, and null in the structured alert."""
    headline = UNVEILED if kind == "alert" else FUNDRAISING
    sent = _alert_by_format(desk_for, [receiver, second, third], kind, headline)
    for fmt, payload in sent.items():
        assert payload["message"].count(headline) == 1, fmt
        assert payload["alert"]["title"] == headline
        assert payload["alert"]["lead"] is None
    assert "\n\n\n" not in sent["text"]["message"]


# -- explain ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
@pytest.mark.parametrize("kind", ["alert", "update"])
def test_matched_terms_only_for_a_target_that_asks(
    desk_for: Callable[..., Desk],
    receiver: AlertReceiver,
    second: AlertReceiver,
    kind: str,
    fmt: str,
) -> None:
    """`Matched:` is left out by default and written for a target with `explain: true`."""
    desk = desk_for(
        [
            {"name": "desk", "url": receiver.url, "format": fmt, "receive": ["alerts", "updates"]},
            {
                "name": "analyst",
                "url": second.url,
                "format": fmt,
                "receive": ["alerts", "updates"],
                "explain": True,
            },
        ]
    )
    if kind == "alert":
        desk.news.report(UNVEILED, "unveiling")
    else:
        desk.news.report(FUNDRAISING)
    assert desk.deliver().sent == 2
    [plain] = receiver.messages()
    [explained] = second.messages()
    assert "Matched" not in plain["message"]
    assert "Matched: monument" in explained["message"]


# -- the structured body ------------------------------------------------------------


def test_a_json_target_gets_the_alert_as_an_object(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """Beside apprise's fields, `alert` holds what a system routes on, from the store."""
    desk = desk_for([{"name": "hook", "url": receiver.url}])
    desk.news.report(
        UNVEILED,
        "unveiling",
        url="https://tass.example/1",
        outlet="TASS",
        lang="ru",
        summary=f"{UNVEILED}. The governor opened it. Veterans came.",
    )
    desk.clock.advance(minutes=10)
    desk.news.report(
        "Kursk monument to KPA soldiers unveiled", "unveiling", url="https://seoul.example/2"
    )
    assert desk.deliver().sent == 1
    [payload] = receiver.messages()
    assert payload["title"] == f"{label('unveiling')}: {STORY_NAME}"
    assert UNVEILED in payload["message"]
    alert = payload["alert"]
    sent = desk.store.events()[0]
    seen = sent.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    published = (sent.created_at - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert {k: v for k, v in alert.items() if k != "sources"} == {
        "kind": "milestone",
        "story": STORY,
        "story_name": STORY_NAME,
        "milestone": "unveiling",
        "label": label("unveiling"),
        "title": UNVEILED,
        "url": "https://tass.example/1",
        "lead": "The governor opened it.",
        "outlet": "TASS",
        "published": published,
        "first_seen": seen,
    }
    feed = desk.config.feeds[0].name
    later = (sent.created_at + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    assert alert["sources"] == [
        {"outlet": "TASS", "url": "https://tass.example/1", "lang": "ru", "tier": "press",
         "seen_at": seen},
        {"outlet": feed, "url": "https://seoul.example/2", "lang": "en", "tier": "press",
         "seen_at": later},
    ]  # fmt: skip


def test_an_update_is_an_object_of_kind_update(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """An update's object says so: kind `update`, no milestone, label `Update`."""
    desk = desk_for([{"url": receiver.url, "receive": ["updates"]}])
    desk.news.report(FUNDRAISING, outlet="Interfax", summary="Donations go to upkeep. More.")
    assert desk.deliver().sent == 1
    [payload] = receiver.messages()
    alert = payload["alert"]
    assert (alert["kind"], alert["milestone"], alert["label"]) == ("update", None, "Update")
    assert (alert["title"], alert["lead"], alert["outlet"]) == (
        FUNDRAISING,
        "Donations go to upkeep.",
        "Interfax",
    )
    assert [s["outlet"] for s in alert["sources"]] == ["Interfax"]


def test_the_url_s_own_payload_extras_are_kept(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """`:key=value` in the URL still adds (or renames) fields; `alert` comes beside them,
    on every send."""
    desk = desk_for([{"name": "hook", "url": receiver.url + "?:team=desk&:message=text"}])
    desk.news.report(UNVEILED, "unveiling")
    desk.news.report(FUNDRAISING, "site_selection")
    assert desk.deliver().sent == 2
    for payload in receiver.messages():
        assert payload["team"] == "desk"
        assert "message" not in payload
        assert payload["alert"]["title"] in payload["text"]
        assert payload["alert"]["kind"] == "milestone"
    assert [p["alert"]["milestone"] for p in receiver.messages()] == [
        "unveiling",
        "site_selection",
    ]


def test_a_message_that_is_no_alert_carries_no_alert_object(
    desk_for: Callable[..., Desk], receiver: AlertReceiver
) -> None:
    """After an alert, the same target's next message without one (a notice, the test
    notification) has no `alert`: the object is set per send; the URL's extras stay."""
    desk = desk_for([{"name": "hook", "url": receiver.url + "?:team=desk"}])
    sender = AppriseSender(desk.config.notify)
    data = {"kind": "milestone", "title": UNVEILED}
    assert sender.send("hook", Message("alert", "body", data=data)).ok
    assert sender.send("hook", Message("notice", "body")).ok
    first, second = receiver.messages()
    assert (first["team"], first["alert"]) == ("desk", data)
    assert second["team"] == "desk"
    assert "alert" not in second


class _FormReceiver:
    """Receives apprise `form://` posts (urlencoded fields)."""

    def __init__(self) -> None:
        self.received: list[dict[str, list[str]]] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.received.append(parse_qs(self.rfile.read(length).decode("utf-8")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"form://127.0.0.1:{self._server.server_address[1]}/hook"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_form_target_gets_the_alert_as_json_text(desk_for: Callable[..., Desk]) -> None:
    """A form field holds text: form:// gets the object as JSON in its `alert` field."""
    form = _FormReceiver()
    try:
        desk = desk_for([{"name": "form", "url": form.url}])
        desk.news.report(UNVEILED, "unveiling", summary="The governor opened it. More.")
        assert desk.deliver().sent == 1
        [fields] = form.received
    finally:
        form.stop()
    assert fields["title"] == [f"{label('unveiling')}: {STORY_NAME}"]
    [text] = fields["alert"]
    alert = json.loads(text)
    assert (alert["kind"], alert["title"], alert["lead"]) == (
        "milestone",
        UNVEILED,
        "The governor opened it.",
    )


def test_the_readme_json_body_is_the_one_sent() -> None:
    """README's json:// payload is what is sent for README's alert example: its title and
    message as rendered, and `alert` as `alert_data` makes it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Alerts to Slack and email") :]
    section = section[: section.index("### Source tiers")]
    [body] = re.findall(r"```json\n(.*?)```", section, re.S)
    at = datetime(2026, 11, 30, 7, 2, tzinfo=UTC)
    post = "https://t.me/CHANNEL/107"
    headline = "В Курске открыли монумент бойцам КНДР"
    event = EventView(
        id=1,
        story=STORY,
        milestone="unveiling",
        title=headline,
        url=post,
        outlet=None,
        created_at=at,
        silent=False,
        sources=[
            SourceView(post, headline, None, "Kursk governor", "ru", at, "official"),
            SourceView(
                "https://tass.ru/1", headline, None, "TASS", "ru", at + timedelta(minutes=38),
                "agency",
            ),
            SourceView(
                "https://seoul.example/1", "Monument unveiled", None, "Seoul Daily", "en",
                at + timedelta(minutes=63),
            ),
        ],
        deliveries=[],
        summary=(
            f"{headline}. Губернатор открыл памятник воинам КНДР, участвовавшим в "
            "освобождении Курской области. На церемонии были ветераны."
        ),
        published=at - timedelta(minutes=1),
    )  # fmt: skip
    config = load_config(REPO / "config.yaml", env={})
    story = next(s for s in config.stories if s.id == STORY)
    payload = json.loads(body)
    assert payload["alert"] == alert_data(event, story)
    message = Renderer().render(
        "alert", "text", alert_context(event, story, ZoneInfo("Europe/Moscow"))
    )
    assert (payload["title"], payload["message"]) == (message.title, message.body)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_an_alert_names_the_first_outlets_and_counts_the_rest(fmt: str) -> None:
    """The day a story breaks big hundreds of outlets carry a milestone before a held alert
    is written: its corroboration names the first `SHOWN_OUTLETS` after the first report
    and counts the rest, while every outlet stays in the total and in `alert_data`."""
    at = datetime(2026, 11, 30, 7, 2, tzinfo=UTC)
    outlets = 1 + SHOWN_OUTLETS + 5
    sources = [
        SourceView(f"https://o{n}.example/1", UNVEILED, None, f"Outlet {n}", "en", at)
        for n in range(outlets)
    ]
    event = EventView(
        id=1, story=STORY, milestone="unveiling", title=UNVEILED, url=sources[0].url,
        outlet=None, created_at=at, silent=False, sources=sources, deliveries=[],
    )  # fmt: skip
    found = corroboration(sources, UTC)
    assert found is not None
    assert [o["outlet"] for o in found["others"]] == [
        f"Outlet {n}" for n in range(1, 1 + SHOWN_OUTLETS)
    ]
    assert (found["more"], found["outlets"]) == (5, outlets)
    line = corroboration_line(found)
    assert line.endswith(f"Outlet {SHOWN_OUTLETS} 07:02, +5 more; {outlets} outlets, 1 language")
    body = Renderer().render("alert", fmt, alert_context(event, None, UTC)).body  # type: ignore[arg-type]
    assert "+5 more" in body
    assert f"Outlet {SHOWN_OUTLETS + 1}" not in body
    assert len(alert_data(event, None)["sources"]) == outlets
