"""Secrets never printed: what the redactor learns from a config, and where it applies."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from monitor.config.settings import parse_config
from monitor.service.logs import configure_logging
from monitor.service.redact import MASK, Redactor, config_secrets, url_secrets
from monitor.store.store import Store
from monitor.store.views import Notice
from tests.conftest import run_cli, shipped_stories, write_config
from tests.support.daemon import Daemon
from tests.support.feeds import FILLER, UNVEILING_EN, rss
from tests.support.servers import AlertReceiver, FeedServer, MailSink

NOW = datetime.now(UTC)


def _config(notify: str, env: dict[str, str] | None = None, database: str = "sqlite:///m.db"):  # type: ignore[no-untyped-def]
    text = (
        f"database: {database}\n"
        "feeds: [{name: a, url: 'http://127.0.0.1:1/a.xml'}]\n"
        f"notify:\n{notify}\n" + shipped_stories()
    )
    return parse_config(text, Path("config.yaml"), env or {})


@pytest.mark.parametrize(
    ("url", "secrets", "public"),
    [
        pytest.param(
            "json://user:S3cretTok3n@127.0.0.1:8080/alerts",
            {"S3cretTok3n"},
            {"user", "127.0.0.1", "alerts"},
            id="json-password",
        ),
        pytest.param(
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
            {"T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"},
            {"slack"},
            id="slack-webhook-tokens",
        ),
        pytest.param(
            "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
            {"TIiajkdnlazkcOXrIdevi7FQ"},
            {"hooks.slack.com"},
            id="slack-raw-url",
        ),
        pytest.param(
            "mailtos://me:p4ssw0rd@smtp.example.org?to=desk@example.org",
            {"p4ssw0rd"},
            {"smtp.example.org"},
            id="mailtos-password",
        ),
        pytest.param(
            "tgram://123456789:ABCdefGhIJKlmnOPqrsTUVwxyz/-1001234567",
            {"123456789%3AABCdefGhIJKlmnOPqrsTUVwxyz"},
            {"-1001234567"},
            id="telegram-bot-token",
        ),
        pytest.param("json://127.0.0.1:8080/alerts", set(), {"alerts"}, id="no-secret"),
    ],
)
def test_url_secrets_are_the_parts_apprise_masks(
    url: str, secrets: set[str], public: set[str]
) -> None:
    """The tokens and passwords apprise hides are secrets; hosts and paths are not."""
    found = url_secrets(url)
    assert secrets <= found
    assert not (public & found)


@pytest.mark.parametrize(
    ("notify", "env", "leaked", "kept"),
    [
        pytest.param(
            "  - url: json://user:S3cretTok3n@127.0.0.1:8080/alerts",
            {},
            "S3cretTok3n",
            "127.0.0.1:8080",
            id="password-in-url",
        ),
        pytest.param(
            "  - url: 'json://127.0.0.1:9/x?+X-Api-Key=${API_KEY}'",
            {"API_KEY": "HeaderKey123"},
            "HeaderKey123",
            "127.0.0.1:9",
            id="env-value-in-header",
        ),
        pytest.param(
            "  - url: '${SLACK_WEBHOOK}'",
            {"SLACK_WEBHOOK": "https://hooks.slack.com/services/T0001/B0001/WebhookSecret9"},
            "WebhookSecret9",
            "slack://",
            id="whole-url-from-env",
        ),
        pytest.param(
            "  - url: 'mailtos://${SMTP_USER}:${SMTP_PASSWORD}@smtp.example.org?to=d@example.org'",
            {"SMTP_USER": "deskuser", "SMTP_PASSWORD": "MailPass77"},
            "deskuser",
            "smtp.example.org",
            id="user-name-from-env",
        ),
        pytest.param(
            "  - url: 'mailtos://monitor:${SMTP_PASSWORD}@smtp.example.org?to=d@example.org'",
            {"SMTP_PASSWORD": "MailPass77"},
            "MailPass77",
            "monitor.service.daemon",
            id="user-name-in-the-file-is-shown",
        ),
    ],
)
def test_redactor_masks_config_secrets(
    notify: str, env: dict[str, str], leaked: str, kept: str
) -> None:
    """Every way a secret enters the config is masked; ordinary text is left alone."""
    config = _config(notify, env)
    redact = Redactor()
    redact.learn(config)
    url = config.notify[0].url
    for text in (url, f"failed to send to {url}: boom", f"token={leaked}", f"{kept} {leaked}"):
        assert leaked not in redact(text)
    assert kept in redact(f"{kept} {leaked}")
    assert redact(redact(url)) == redact(url)


def test_database_password_is_masked() -> None:
    """The password in a database URL is a secret too."""
    config = _config("  []", database="postgresql+psycopg://monitor:DbPa55word@db.example/m")
    assert config_secrets(config) == {"DbPa55word": MASK}


def test_structured_values_are_redacted() -> None:
    """Strings inside lists and dicts of an event are redacted, other values kept."""
    redact = Redactor({"Tok3nTok3n": MASK})
    event = {
        "error": "bad Tok3nTok3n",
        "targets": ["a", "x Tok3nTok3n"],
        "n": 3,
        "d": {"k": "Tok3nTok3n"},
    }
    assert redact.processor(None, "info", event) == {
        "error": f"bad {MASK}",
        "targets": ["a", f"x {MASK}"],
        "n": 3,
        "d": {"k": MASK},
    }


def test_stream_redacts_what_is_written() -> None:
    """Text printed through the wrapped stream comes out redacted."""
    inner = io.StringIO()
    stream = Redactor({"Tok3nTok3n": MASK}).stream(inner)
    print("sending with Tok3nTok3n", file=stream)
    assert inner.getvalue() == f"sending with {MASK}\n"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_logs_are_redacted_whichever_logger(fmt: str) -> None:
    """structlog events, stdlib records and exception text all pass the redactor."""
    out = io.StringIO()
    redactor = Redactor({"Tok3nTok3n": MASK})
    configure_logging("INFO", stream=out, fmt=fmt, redactor=redactor)  # type: ignore[arg-type]
    try:
        structlog.get_logger("monitor.test").info("delivery.failed", error="401 for Tok3nTok3n")
        logging.getLogger("apprise").warning("Failed to send to json://u:Tok3nTok3n@h/")
        try:
            raise RuntimeError("boom Tok3nTok3n")
        except RuntimeError:
            structlog.get_logger("monitor.test").exception("job.crashed")
    finally:
        logging.getLogger().handlers.clear()
    text = out.getvalue()
    assert "Tok3nTok3n" not in text
    assert text.count(MASK) >= 3
    if fmt == "json":
        assert (
            next(json.loads(line)["event"] for line in text.splitlines() if line.startswith("{"))
            == "delivery.failed"
        )


@pytest.mark.slow
def test_no_command_prints_a_secret(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, mail_sink: MailSink
) -> None:
    """Failing targets with secrets: no command's stdout or stderr shows them."""
    secrets = {"API_KEY": "HeaderKey4242"}
    receiver.down = True
    url = feed_server.serve("/feed.xml", rss(FILLER))
    targets = [
        {"url": f"json://monitor:Tok3nJSON42@127.0.0.1:{receiver.port}/alerts"},
        {"url": f"json://127.0.0.1:{receiver.port}/hook?+X-Api-Key=${{API_KEY}}"},
        {
            "url": f"mailto://user:MailPass4242@127.0.0.1:{mail_sink.port}?from=a@x.example&to=b@x.example"
        },
    ]
    # The service resumes the schedule `once` left: a short interval makes the feed due.
    config = write_config(
        tmp_path, {"feed": url}, targets, fetch={"interval": "1s"}, delivery={"interval": "1s"}
    )
    outputs: dict[str, str] = {}

    def cli(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        result = run_cli(config, "--log-level", "DEBUG", *args, env=secrets)
        outputs[name] = result.stdout + result.stderr
        return result

    cli("once (baseline)", "once")
    feed_server.serve("/feed.xml", rss([UNVEILING_EN, *FILLER]))
    with Daemon(config, "--log-level", "DEBUG", env=secrets) as daemon:
        daemon.wait_for_log("delivery.failed")
    outputs["run"] = daemon.output()
    assert daemon.returncode == 0
    cli("status", "status")
    cli("status --wide", "status", "--wide")
    cli("status --json", "status", "--json")
    cli("history", "history")
    cli("history --json", "history", "--json")
    assert cli("test-notify", "test-notify").returncode == 1
    assert cli("deliver", "deliver").returncode == 1
    cli("check-config", "check-config")
    cli("once", "once")
    history = cli("history --json, at the end", "history", "--json")

    deliveries = json.loads(history.stdout.splitlines()[0])["deliveries"]
    assert {d["status"] for d in deliveries} == {"failed"}
    assert all(d["last_error"] for d in deliveries)
    assert "FAILED" in outputs["test-notify"]
    for name, text in outputs.items():
        for secret in ("Tok3nJSON42", "HeaderKey4242", "MailPass4242"):
            assert secret not in text, f"{secret} printed by `{name}`"


@pytest.mark.slow
def test_user_name_from_the_environment_is_shown_nowhere(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver, second: AlertReceiver
) -> None:
    """`json://${JSON_USER}:...`: the user name is in no output, no log, no database file."""
    env = {"JSON_USER": "someuser", "JSON_PASS": "Pa55wordJSON"}
    second.down = True
    url = feed_server.serve("/feed.xml", rss(FILLER))
    targets = [
        {"url": f"json://${{JSON_USER}}:${{JSON_PASS}}@127.0.0.1:{port}/alerts"}
        for port in (receiver.port, second.port)
    ]
    config = write_config(tmp_path, {"feed": url}, targets)
    outputs: dict[str, str] = {}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = run_cli(config, "--log-level", "DEBUG", "--log-format", "json", *args, env=env)
        outputs[" ".join(args)] = result.stdout + result.stderr
        return result

    cli("once")
    feed_server.serve("/feed.xml", rss([UNVEILING_EN, *FILLER]))
    assert cli("once").returncode == 0
    for command in (
        ["status"],
        ["status", "--wide"],
        ["status", "--json", "--deliveries"],
        ["history"],
        ["history", "--json"],
        ["replay"],
    ):
        assert cli(*command).returncode == 0
    assert cli("test-notify").returncode == 1
    assert cli("deliver").returncode == 1

    assert len(receiver.messages()) == 2  # the alert, the test message: the target works
    [event] = [json.loads(line) for line in outputs["history --json"].splitlines()]
    assert {d["target"] for d in event["deliveries"]} == {
        f"json://****:****@127.0.0.1:{port}/alerts" for port in (receiver.port, second.port)
    }
    assert "delivery.failed" in outputs["once"]
    for name, text in outputs.items():
        assert "someuser" not in text, f"the user name printed by `{name}`"
        assert "Pa55wordJSON" not in text, f"the password printed by `{name}`"
    for stored in tmp_path.glob("monitor.db*"):
        assert b"someuser" not in stored.read_bytes(), stored.name


def test_deliveries_queued_under_a_label_with_the_user_name_are_sent(
    tmp_path: Path, feed_server: FeedServer, receiver: AlertReceiver
) -> None:
    """A delivery stored under a label that showed an environment user name still goes out."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    hook = f"json://${{JSON_USER}}:${{JSON_PASS}}@127.0.0.1:{receiver.port}/alerts"
    config = write_config(tmp_path, {"feed": url}, [{"url": hook}])
    former = f"json://someuser:****@127.0.0.1:{receiver.port}/alerts"
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.enqueue([Notice("before", [former], "Queued by an earlier version", "body")], now=NOW)
    store.close()

    env = {"JSON_USER": "someuser", "JSON_PASS": "Pa55wordJSON"}
    result = run_cli(config, "deliver", env=env)
    assert result.returncode == 0, result.stderr
    [sent] = receiver.messages()
    assert sent["title"].endswith("Queued by an earlier version")
    history = run_cli(config, "status", "--json", "--deliveries", env=env)
    [row] = [json.loads(line) for line in history.stdout.splitlines()]
    assert row["target"] == f"json://****:****@127.0.0.1:{receiver.port}/alerts"
    assert row["counts"]["sent"] == 1
