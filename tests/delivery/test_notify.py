"""The notify stage through real apprise plugins to loopback servers: Slack, email, JSON."""

from __future__ import annotations

import copy
import io
import logging
import re
from email.message import Message as Email
from pathlib import Path

import pytest

from monitor.config.settings import TargetConfig
from monitor.delivery.notify import AppriseSender, smtp_trouble
from monitor.delivery.routing import STDOUT
from monitor.templates.render import SAMPLES, Message, Renderer
from tests.conftest import run_cli, write_config
from tests.support.plugins import loopback_plugins
from tests.support.servers import AlertReceiver, MailSink

SLACK_URL = "https://hooks.slack.com/services/T0000TEST/B0000TEST/abcdefTESTtoken123"
HOSTILE = '<!channel> <@U1> <https://evil.example|x> <script>alert(1)</script> & "q"'


def hostile_alert() -> dict[str, object]:
    context = copy.deepcopy(SAMPLES["alert"])
    context.update(title=f"Monument unveiled {HOSTILE}", outlet=HOSTILE, lead=HOSTILE)
    context["corroboration"]["first"].update(outlet=HOSTILE)
    return context


@pytest.fixture
def slack() -> AlertReceiver:
    server = AlertReceiver(reply=b"ok").start()
    yield server  # type: ignore[misc]
    server.stop()


def test_slack_payload_is_readable_mrkdwn(slack: AlertReceiver) -> None:
    """Slack gets mrkdwn with the label, story, linked headline, outlet, the lead and the
    other reports."""
    target = TargetConfig(url=SLACK_URL, name="slack")
    sender = AppriseSender([target], plugin_factory=loopback_plugins(slack.base))
    message = Renderer().render("alert", target.message_format, SAMPLES["alert"])
    assert sender.send("slack", message).ok
    [payload] = slack.messages()
    assert slack.paths == ["/services/T0000TEST/B0000TEST/abcdefTESTtoken123"]
    assert payload["mrkdwn"] is True
    [attachment] = payload["attachments"]
    assert attachment["title"] == "Unveiled: Monument to North Korean soldiers in the Kursk region"
    assert [line for line in attachment["text"].splitlines() if line][:5] == [
        "*Unveiled* · Monument to North Korean soldiers in the Kursk region",
        "<https://tass.example/society/1"
        "|Monument to North Korean soldiers unveiled in Kursk region>",
        "TASS · 2026-11-27 14:05 MSK",
        "The governor opened the monument at a ceremony attended by veterans.",
        "First: <https://tass.example/society/1|TASS> (agency) 14:05; "
        "<https://ria.example/1|RIA Novosti> (agency) 14:20, "
        "<https://kp.example/2|Kursk Pravda> 15:10; 3 outlets, 2 languages",
    ]


def test_slack_payload_carries_no_injected_controls(slack: AlertReceiver) -> None:
    """Feed text posted to Slack forms no broadcast, mention or link of its own."""
    target = TargetConfig(url=SLACK_URL, name="slack")
    sender = AppriseSender([target], plugin_factory=loopback_plugins(slack.base))
    context = hostile_alert()
    assert sender.send("slack", Renderer().render("alert", "markdown", context)).ok
    [payload] = slack.messages()
    text = payload["attachments"][0]["text"] + payload["attachments"][0]["title"]
    assert re.findall(r"<([^|>]*)", text) == [
        "https://tass.example/society/1",
        "https://tass.example/society/1",
        "https://ria.example/1",
        "https://kp.example/2",
    ]
    assert "&lt;!channel&gt;" in text


def test_email_is_html_with_a_plain_text_part(mail_sink: MailSink) -> None:
    """An email alert is multipart/alternative: text/plain then text/html, feed text escaped."""
    target = TargetConfig(url=mail_sink.url(), name="desk")
    assert target.message_format == "html"
    sender = AppriseSender([target], plugin_factory=loopback_plugins())
    outcome = sender.send("desk", Renderer().render("alert", "html", hostile_alert()))
    assert outcome.ok, outcome.error
    [mail] = mail_sink.wait_for(1)
    assert mail["Subject"] == "Unveiled: Monument to North Korean soldiers in the Kursk region"
    assert mail.get_content_type() == "multipart/alternative"
    plain, html = parts(mail)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert '<a href="https://tass.example/society/1">' in html
    assert "<a href" not in plain
    assert "<div" not in plain
    assert "Link: https://tass.example/society/1" in plain
    assert "RIA Novosti (agency) 14:20, Kursk Pravda 15:10; 3 outlets, 2 languages." in plain


def parts(mail: Email) -> tuple[str, str]:
    found = {}
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found["text/plain"], found["text/html"]


def test_json_target_gets_plain_text(receiver: AlertReceiver) -> None:
    """A json:// target gets the plain-text rendering, title and message."""
    target = TargetConfig(url=receiver.url, name="hook")
    sender = AppriseSender([target], plugin_factory=loopback_plugins())
    assert sender.send("hook", Renderer().render("alert", "text", SAMPLES["alert"])).ok
    [payload] = receiver.messages()
    assert payload["title"].startswith("Unveiled:")
    assert "Link: https://tass.example/society/1" in payload["message"]


@pytest.mark.parametrize("status", [429, 500, 503], ids=str)
def test_failure_reports_http_status(receiver: AlertReceiver, status: int) -> None:
    """A refused send is a failure with apprise's log line and the HTTP status it logged."""
    receiver.down, receiver.fail_status = True, status
    sender = AppriseSender([TargetConfig(url=receiver.url, name="hook")])
    outcome = sender.send("hook", Message("t", "b"))
    assert not outcome.ok
    assert outcome.status == status
    assert outcome.error
    assert f"error={status}" in outcome.error


def test_unreachable_target_fails_without_status() -> None:
    """A connection error is a failure with no HTTP status."""
    sender = AppriseSender([TargetConfig(url="json://127.0.0.1:9/nothing", name="gone")])
    outcome = sender.send("gone", Message("t", "b"))
    assert not outcome.ok
    assert outcome.status is None
    assert outcome.error
    assert "onnection" in outcome.error


def test_stdout_target_prints() -> None:
    """Without targets, messages are printed with their title."""
    stream = io.StringIO()
    assert AppriseSender([], stdout=stream).send(STDOUT, Message("Title", "Body\n")).ok
    assert stream.getvalue() == "=== Title ===\nBody\n\n"


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        (SLACK_URL, "markdown"),
        ("slack://T0000TEST/B0000TEST/abcdefTESTtoken123", "markdown"),
        ("mailtos://user:pw@smtp.example.org?to=a@example.org", "html"),
        ("json://127.0.0.1:9/x", "text"),
    ],
    ids=["slack-hook", "slack-scheme", "email", "json"],
)
def test_format_follows_the_service(url: str, fmt: str) -> None:
    """Slack gets Markdown, email HTML, anything else plain text, unless `format` says."""
    assert TargetConfig(url=url).message_format == fmt
    assert TargetConfig(url=url, format="text").message_format == "text"


def test_emails_to_one_target_are_not_throttled(
    mail_sink: MailSink, caplog: pytest.LogCaptureFixture
) -> None:
    """Three emails to one target go out without apprise's pause between them (its
    default, 5.5 s a message, made three alerts take 11 s): apprise logs each pause."""
    target = TargetConfig(url=mail_sink.url(), name="desk")
    sender = AppriseSender([target])  # the plugins monitor builds, not the tests' ones
    with caplog.at_level(logging.DEBUG, logger="apprise"):
        outcomes = [sender.send("desk", Message(f"alert {i}", "body")) for i in range(3)]
    assert all(outcome.ok for outcome in outcomes), outcomes
    assert len(mail_sink.wait_for(3)) == 3
    assert [r.message for r in caplog.records if "Throttling" in r.message] == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(
            "mailto://user:pass@127.0.0.1:{port}?from=a@x.example&to=b@x.example",
            "does not offer AUTH: leave the user name and password out of the URL (or use "
            "mailtos:// if it offers AUTH over TLS only)",
            id="auth-without-AUTH",
        ),
        pytest.param(
            "mailtos://127.0.0.1:{port}?from=a@x.example&to=b@x.example&mode=starttls",
            "does not offer STARTTLS: use mailto:// for a server without TLS",
            id="starttls-without-STARTTLS",
        ),
    ],
)
def test_smtp_trouble_says_what_the_server_lacks(
    mail_sink: MailSink, url: str, reason: str
) -> None:
    """What apprise calls a connection error is named: what the SMTP server does not offer."""
    trouble = smtp_trouble(url.format(port=mail_sink.port))
    assert trouble == f"the SMTP server at 127.0.0.1:{mail_sink.port} {reason}"


def test_test_notify_names_what_the_smtp_server_lacks(tmp_path: Path, mail_sink: MailSink) -> None:
    """`test-notify` to a server without AUTH, with a password in the URL: exit 1 and the
    reason, not only apprise's "Connection error"."""
    url = f"mailto://desk:pw@127.0.0.1:{mail_sink.port}?from=a@x.example&to=b@x.example"
    config = write_config(
        tmp_path, {"wire": "http://127.0.0.1:1/feed.xml"}, [{"name": "mail", "url": url}]
    )
    result = run_cli(config, "test-notify")
    assert result.returncode == 1, result.stderr
    [line] = [row for row in result.stdout.splitlines() if row.startswith("FAILED")]
    assert line.startswith("FAILED  mail: Connection error while submitting email")
    assert f"(the SMTP server at 127.0.0.1:{mail_sink.port} does not offer AUTH:" in line


def test_smtp_trouble_is_none_for_a_server_that_looks_fine(mail_sink: MailSink) -> None:
    """A plain mailto:// to a working server, and a JSON target: nothing to explain."""
    assert smtp_trouble(mail_sink.url()) is None
    assert smtp_trouble("json://127.0.0.1:9/alerts") is None
