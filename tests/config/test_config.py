"""Config loading: every error names its key (and line), every default is usable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config.settings import config_path, load_config, parse_config, parse_duration
from monitor.core.errors import ConfigError
from tests.conftest import REPO, run_cli, shipped_stories

BASE = """\
database: sqlite:///state/monitor.db
feeds:
  - name: a
    url: https://example.org/a.xml
notify:
  - url: json://127.0.0.1:9/alerts
"""


def _config(top: str, env: dict[str, str] | None = None, path: Path = Path("config.yaml")):  # type: ignore[no-untyped-def]
    return parse_config(top + "\n" + shipped_stories(), path, env or {})


def test_shipped_config_is_valid() -> None:
    """The config.yaml in the repository loads with no environment variables set."""
    config = load_config(REPO / "config.yaml", env={})
    assert len(config.feeds) >= 10
    assert config.notify == ()
    assert [m.key for m in config.stories[0].milestones] == [
        "site_selection",
        "design_reveal",
        "unveiling",
    ]


@pytest.mark.parametrize(
    ("top", "key", "line", "message"),
    [
        pytest.param(BASE + "colour: blue\n", "colour", 7, "unknown key", id="unknown-top-key"),
        pytest.param(
            BASE.replace(
                "    url: https://example.org/a.xml",
                "    url: https://example.org/a.xml\n    intervall: 5m",
            ),
            "feeds[0].intervall",
            5,
            "unknown key",
            id="unknown-feed-key",
        ),
        pytest.param(
            BASE.replace("  - name: a\n", "  - nam: a\n"),
            "feeds[0].nam",
            3,
            "unknown key (did you mean 'name'?)",
            id="typo",
        ),
        pytest.param(
            BASE + "fetch:\n  intervall: 5m\n",
            "fetch.intervall",
            8,
            "unknown key (did you mean 'interval'?)",
            id="typo-of-a-key-with-a-default",
        ),
        pytest.param(
            BASE + "delivery:\n  max_atempts: 5\n",
            "delivery.max_atempts",
            8,
            "unknown key (did you mean 'max_attempts'?)",
            id="typo-in-delivery",
        ),
        pytest.param(
            BASE + "retension: 30d\n",
            "retension",
            7,
            "unknown key (did you mean 'retention'?)",
            id="typo-top-level",
        ),
        pytest.param(
            BASE.replace(
                "    url: https://example.org/a.xml",
                "    url: https://example.org/a.xml\n    lnag: ru",
            ),
            "feeds[0].lnag",
            5,
            "unknown key (did you mean 'lang'?)",
            id="typo-in-a-feed",
        ),
        pytest.param(
            BASE.replace(
                "  - url: json://",
                "  - url: json://127.0.0.1:9/x\n    recieve: [alerts]\n  - url: json://",
            ),
            "notify[0].recieve",
            7,
            "unknown key (did you mean 'receive'?)",
            id="typo-in-a-target",
        ),
        pytest.param(
            BASE.replace("sqlite:///state/monitor.db", "mysql://monitor@db.example/monitor"),
            "database",
            1,
            "monitor runs on SQLite or PostgreSQL, not 'mysql'",
            id="unsupported-database",
        ),
        pytest.param(
            BASE.replace("sqlite:///state/monitor.db", "postgres://monitor@db.example/monitor"),
            "database",
            1,
            "did you mean 'postgresql'?",
            id="misspelt-dialect",
        ),
        pytest.param(
            BASE.replace("sqlite:///state/monitor.db", "postgresql+psycopg://m@db:70000/m"),
            "database",
            1,
            "port 70000 is out of range",
            id="database-port",
        ),
        pytest.param(
            BASE.replace(
                "    url: https://example.org/a.xml",
                "    url: https://example.org/a.xml\n    lang: russian",
            ),
            "feeds[0].lang",
            5,
            "not an ISO 639-1 language code: 'russian' (did you mean 'ru'?",
            id="language-name-for-code",
        ),
        pytest.param(
            BASE + "fetch:\n  interval: soon\n",
            "fetch.interval",
            8,
            "not a duration",
            id="bad-duration",
        ),
        pytest.param(
            BASE.replace("https://example.org/a.xml", "ftp://example.org/a.xml"),
            "feeds[0].url",
            4,
            "not an http(s) URL",
            id="bad-feed-url",
        ),
        pytest.param(
            BASE.replace("json://127.0.0.1:9/alerts", "nosuchscheme://x"),
            "notify[0].url",
            6,
            "apprise does not accept",
            id="bad-apprise-url",
        ),
        pytest.param(
            BASE + "  - url: json://127.0.0.1:9/alerts\n",
            "notify[1].name",
            None,
            "duplicate name",
            id="duplicate-target",
        ),
        pytest.param(
            BASE.replace("feeds:\n", "feeds:\n  - name: a\n    url: https://example.org/b.xml\n"),
            "feeds[1].name",
            None,
            "duplicate name",
            id="duplicate-feed",
        ),
        pytest.param(
            BASE.replace("notify:\n  - url:", "notify:\n  - stories: [nope]\n    url:"),
            "notify[0].stories",
            6,
            "unknown story",
            id="unknown-story-route",
        ),
        pytest.param(
            BASE + "database: sqlite:///other.db\n",
            "database",
            7,
            "duplicate key",
            id="duplicate-yaml-key",
        ),
        pytest.param(
            BASE.replace("feeds:\n  - name: a\n    url: https://example.org/a.xml\n", ""),
            "feeds",
            None,
            "required key is missing",
            id="no-feeds",
        ),
    ],
)
def test_errors_name_the_key(top: str, key: str, line: int | None, message: str) -> None:
    """A bad value is reported with its dotted key, its line and a short reason."""
    with pytest.raises(ConfigError) as caught:
        _config(top)
    error = caught.value
    assert error.key == key
    assert message in error.message
    if line is not None:
        assert error.line == line


A_FEED = "    url: https://example.org/a.xml\n"


@pytest.mark.parametrize(
    ("top", "key", "message"),
    [
        pytest.param(
            BASE.replace(A_FEED, A_FEED + "    interval: 59s\n"),
            "feeds[0].interval",
            "at least 60s for a source on another machine (example.org; got 59s)",
            id="feed-under-a-minute",
        ),
        pytest.param(
            BASE + "fetch:\n  interval: 30s\n",
            "fetch.interval",
            "at least 60s while a source on another machine uses it (feeds[0] 'a' at "
            "example.org; got 30s)",
            id="default-under-a-minute",
        ),
        pytest.param(
            BASE.replace(A_FEED, "    telegram: kursk_channel\n    interval: 10s\n"),
            "feeds[0].interval",
            "(t.me; got 10s)",
            id="telegram-under-a-minute",
        ),
        pytest.param(
            BASE.replace("https://example.org/a.xml", "http://127.0.0.1:8/a.xml")
            + "fetch:\n  interval: 0s\n",
            "fetch.interval",
            "must be more than 0s",
            id="zero",
        ),
    ],
)
def test_intervals_under_a_minute_are_refused_for_other_machines(
    top: str, key: str, message: str
) -> None:
    """A source elsewhere is polled at most once a minute; the error names the key."""
    with pytest.raises(ConfigError) as caught:
        _config(top)
    assert caught.value.key == key
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("top", "seconds"),
    [
        pytest.param(BASE.replace(A_FEED, A_FEED + "    interval: 60s\n"), 60, id="a-minute"),
        pytest.param(BASE + "fetch:\n  interval: 1m\n", 60, id="default-a-minute"),
        pytest.param(
            BASE.replace("https://example.org/a.xml", "http://127.0.0.1:8/a.xml")
            + "fetch:\n  interval: 2s\n",
            2,
            id="this-machine",
        ),
        pytest.param(
            BASE.replace(A_FEED, "    url: http://localhost:8/a.xml\n    interval: 1s\n"),
            1,
            id="localhost",
        ),
        pytest.param(
            BASE.replace(
                "feeds:\n", "feeds:\n  - {name: b, url: 'http://[::1]:8/', interval: 3s}\n"
            )
            + "fetch:\n  interval: 5m\n",
            3,
            id="ipv6-loopback-beside-a-remote-feed",
        ),
    ],
)
def test_intervals_of_a_minute_or_of_sources_on_this_machine_are_accepted(
    top: str, seconds: float
) -> None:
    """Down to 60 s for any source; shorter only for one on this machine (a mirror, a test)."""
    config = _config(top)
    assert min(config.feed_interval(f) for f in config.feeds) == timedelta(seconds=seconds)


def test_yaml_syntax_error_names_the_line() -> None:
    """Broken YAML is reported with the line where parsing failed."""
    with pytest.raises(ConfigError) as caught:
        parse_config("feeds:\n  - name: a\n    url: [unclosed\n", Path("c.yaml"), {})
    assert "YAML syntax error" in caught.value.message
    assert caught.value.line is not None
    assert caught.value.line >= 3


def test_environment_variables_are_substituted() -> None:
    """`${VAR}` is replaced from the environment, `${VAR:-default}` falls back."""
    top = BASE.replace("json://127.0.0.1:9/alerts", "${TARGET}") + "fetch:\n  timeout: ${T:-45s}\n"
    config = _config(top, env={"TARGET": "json://127.0.0.1:9/from-env"})
    assert config.notify[0].url == "json://127.0.0.1:9/from-env"
    assert config.fetch.timeout == timedelta(seconds=45)


def test_missing_environment_variable_is_named() -> None:
    """A `${VAR}` with no such variable is an error naming the variable and key."""
    top = BASE.replace("json://127.0.0.1:9/alerts", "slack://${SLACK_TOKEN}/#news")
    with pytest.raises(ConfigError) as caught:
        _config(top)
    assert "SLACK_TOKEN" in caught.value.message
    assert caught.value.key == "notify[0].url"
    assert caught.value.line == 6


def test_secret_with_yaml_characters_is_taken_verbatim() -> None:
    """A substituted value is never parsed as YAML, so '#' or ': ' cannot break it."""
    top = BASE.replace("json://127.0.0.1:9/alerts", "json://127.0.0.1:9/${P}")
    config = _config(top, env={"P": "a#b: c"})
    assert config.notify[0].url.endswith("a#b: c")


def test_relative_sqlite_path_resolves_against_config_folder(tmp_path: Path) -> None:
    """`sqlite:///state/monitor.db` lives next to the config file, wherever we run from."""
    config = _config(BASE, path=tmp_path / "etc" / "config.yaml")
    assert config.database_url() == f"sqlite:///{tmp_path}/etc/state/monitor.db"


def test_absolute_and_server_urls_are_kept() -> None:
    """Absolute SQLite paths and PostgreSQL URLs are used as written."""
    for url in ("sqlite:////var/lib/monitor/monitor.db", "postgresql+psycopg://u@h/db"):
        config = _config(BASE.replace("sqlite:///state/monitor.db", url))
        assert config.database_url() == url


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    """Durations accept plain seconds and unit suffixes."""
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    """--config beats $MONITOR_CONFIG, which beats ./config.yaml."""
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    assert config_path(None) == Path("config.yaml")
    monkeypatch.setenv("MONITOR_CONFIG", "/etc/monitor/config.yaml")
    assert config_path(None) == Path("/etc/monitor/config.yaml")
    assert config_path("x.yaml") == Path("x.yaml")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param(BASE + "colour: blue\n", "colour: unknown key (line 7)", id="unknown-key"),
        pytest.param("feeds: [\n", "YAML syntax error", id="syntax"),
        pytest.param(None, "config file not found", id="missing-file"),
        pytest.param(
            BASE.replace(A_FEED, A_FEED + "    interval: 30s\n"),
            "feeds[0].interval: at least 60s for a source on another machine",
            id="interval-under-a-minute",
        ),
        pytest.param(
            BASE.replace("sqlite:///state/monitor.db", "mysql://monitor@db.example/monitor"),
            "database: monitor runs on SQLite or PostgreSQL, not 'mysql'",
            id="mysql",
        ),
        pytest.param(
            BASE.replace("sqlite:///state/monitor.db", "sqlite:///config.yaml/monitor.db"),
            "is not a folder",
            id="sqlite-folder-is-a-file",
        ),
        pytest.param(
            BASE.replace("sqlite:///state/monitor.db", "sqlite:///config.yaml/sub/monitor.db"),
            "(on the way to the SQLite file) is not a folder",
            id="sqlite-folder-under-a-file",
        ),
    ],
)
def test_check_config_command(tmp_path: Path, content: str | None, needle: str) -> None:
    """check-config exits 2 with one short line naming the problem, never a traceback."""
    path = tmp_path / "config.yaml"
    if content is not None:
        path.write_text(content + "\n" + shipped_stories(), encoding="utf-8")
    result = run_cli(path, "check-config")
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_config_accepts_a_minute(tmp_path: Path) -> None:
    """A feed on another machine polled every 60 s is a valid config."""
    path = tmp_path / "config.yaml"
    top = BASE.replace(A_FEED, A_FEED + "    interval: 60s\n")
    path.write_text(top + "\n" + shipped_stories(), encoding="utf-8")
    result = run_cli(path, "check-config")
    assert result.returncode == 0, result.stderr


def test_check_config_accepts_shipped_config() -> None:
    """check-config exits 0 on the shipped config."""
    result = run_cli(REPO / "config.yaml", "check-config")
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout


def test_monitor_config_environment_variable(tmp_path: Path) -> None:
    """MONITOR_CONFIG chooses the file when --config is absent."""
    path = tmp_path / "elsewhere.yaml"
    path.write_text(BASE + "\n" + shipped_stories(), encoding="utf-8")
    result = run_cli(None, "check-config", env={"MONITOR_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert str(path) in result.stdout


TARGET = BASE.replace(
    "  - url: json://127.0.0.1:9/alerts\n", "  - url: json://127.0.0.1:9/alerts\n{}"
)


@pytest.mark.parametrize(
    ("top", "key", "message"),
    [
        pytest.param(
            TARGET.format("    quiet_hours: 22-7\n"),
            "notify[0].quiet_hours",
            "HH:MM",
            id="quiet-format",
        ),
        pytest.param(
            TARGET.format("    quiet_hours: 07:00-07:00\n"),
            "notify[0].quiet_hours",
            "same time",
            id="quiet-empty",
        ),
        pytest.param(
            TARGET.format("    timezone: Europe/Atlantis\n"),
            "notify[0].timezone",
            "unknown time zone 'Europe/Atlantis'",
            id="target-zone",
        ),
        pytest.param(
            BASE + "digest:\n  timezone: Moscow\n",
            "digest.timezone",
            "unknown time zone",
            id="digest-zone",
        ),
        pytest.param(BASE + "digest:\n  time: 24:30\n", "digest.time", "HH:MM", id="digest-time"),
        pytest.param(
            TARGET.format("    receive: [alerts, ops]\n"),
            "notify[0].receive[1]",
            "'alerts', 'updates', 'digest' or 'health'",
            id="receive-kind",
        ),
        pytest.param(
            TARGET.format("    break_through: [opening]\n"),
            "notify[0].break_through",
            "unknown milestone 'opening'",
            id="break-through-milestone",
        ),
        pytest.param(
            TARGET.format("    max_per_hour: 0\n"),
            "notify[0].max_per_hour",
            "greater than or equal to 1",
            id="cap",
        ),
        pytest.param(
            TARGET.format("    explain: sometimes\n"),
            "notify[0].explain",
            "valid boolean",
            id="explain",
        ),
        pytest.param(
            TARGET.format("    format: rtf\n"),
            "notify[0].format",
            "'text', 'markdown' or 'html'",
            id="format",
        ),
        pytest.param(
            BASE + "templates:\n  alert:\n    html: '{% if title %}'\n",
            "templates.alert.html",
            "template syntax error",
            id="template-syntax",
        ),
        pytest.param(
            BASE + "templates:\n  digest:\n    title: '{{ headline }}'\n",
            "templates.digest.title",
            "'headline' is undefined",
            id="template-name",
        ),
        pytest.param(
            BASE + "templates:\n  alert:\n    slack: '{{ title }}'\n",
            "templates.alert.slack",
            "unknown key",
            id="template-part",
        ),
        pytest.param(
            BASE + "health:\n  silent_factor: 0.5\n",
            "health.silent_factor",
            "greater than or equal to 1",
            id="silent-factor",
        ),
    ],
)
def test_delivery_keys_are_checked_at_load(top: str, key: str, message: str) -> None:
    """Quiet hours, time zones, routing and templates are validated, naming the key."""
    with pytest.raises(ConfigError) as caught:
        _config(top)
    assert caught.value.key == key
    assert message in caught.value.message
    assert caught.value.line is not None


def test_delivery_keys_have_working_defaults() -> None:
    """Without the new keys a target gets alerts only, at once, in its service's format."""
    config = _config(
        TARGET.format("    quiet_hours: 22:00-07:00\n    timezone: Asia/Seoul\n")
        + "digest:\n  time: 08:30\n  timezone: Europe/Moscow\n"
    )
    [target] = config.notify
    assert target.receive == ("alerts",)
    assert target.message_format == "text"
    assert str(target.quiet(config.digest.tz)) == "22:00-07:00 Asia/Seoul"
    assert (config.digest.time.hour, config.digest.time.minute) == (8, 30)
    assert config.health.failing_after == timedelta(hours=6)


@pytest.mark.parametrize(
    ("url", "label"),
    [
        pytest.param(
            "json://user:pass@host.example/hook?+X-Api-Key=S3CR3T&-token=T0K3N",
            "json://user:****@host.example/hook",
            id="custom-header-and-field",
        ),
        pytest.param(
            "mailtos://me:pw@smtp.example.org?to=desk@example.org",
            "mailtos://me:****@smtp.example.org/desk%40example.org",
            id="email",
        ),
    ],
)
def test_target_label_has_no_secret(url: str, label: str) -> None:
    """A target's default label masks passwords and drops the query (custom headers)."""
    config = _config(BASE.replace("json://127.0.0.1:9/alerts", url))
    assert config.notify[0].label == label
    assert "S3CR3T" not in label
    assert "T0K3N" not in label


@pytest.mark.parametrize(
    ("target", "env", "label"),
    [
        pytest.param(
            "url: 'json://${USER}:${PASS}@host.example/hook'",
            {"USER": "someuser", "PASS": "pw"},
            "json://****:****@host.example/hook",
            id="user-name",
        ),
        pytest.param(
            "url: 'json://${USER}@host.example/hook'",
            {"USER": "bob"},
            "json://****@host.example/hook",
            id="short-user-name",
        ),
        pytest.param(
            "url: '${HOOK}'",
            {"HOOK": "json://someuser:pw@host.example/hook"},
            "json://****:****@host.example/hook",
            id="whole-url",
        ),
        pytest.param(
            "url: 'json://someuser@${HOST}/hook'",
            {"HOST": "hooks.internal"},
            "json://someuser@****/hook",
            id="host-from-env-user-in-file",
        ),
        pytest.param(
            "{name: 'desk-${TEAM}', url: 'json://h.example/x'}",
            {"TEAM": "nightshift"},
            "desk-****",
            id="name",
        ),
    ],
)
def test_target_label_masks_environment_values(
    target: str, env: dict[str, str], label: str
) -> None:
    """Every value taken from the environment is masked in a target's label, user names too."""
    config = _config(BASE.replace("url: json://127.0.0.1:9/alerts", target), env)
    [masked] = config.notify
    assert masked.label == label
    # What earlier versions stored showed the value; its deliveries are moved to `label`.
    assert config.relabelled() == {masked.former_label: label}
    assert masked.former_label != label


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        pytest.param("", timedelta(days=90), id="default"),
        pytest.param("retention: 30d\n", timedelta(days=30), id="duration"),
        pytest.param("retention: 1d\n", timedelta(days=1), id="least"),
        pytest.param("retention: off\n", None, id="off"),
        pytest.param('retention: "off"\n', None, id="quoted-off"),
    ],
)
def test_retention(line: str, kept: timedelta | None) -> None:
    """How long items are kept: 90 days unless set; `off` keeps everything."""
    assert _config(BASE + line).retention == kept


@pytest.mark.parametrize(
    ("value", "message"),
    [("12h", "at least 1d, or off"), ("soon", "not a duration"), ("0", "at least 1d")],
)
def test_a_bad_retention_names_its_key_and_line(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(BASE + f"retention: {value}\n")
    assert (caught.value.key, caught.value.line) == ("retention", 7)
    assert message in caught.value.message


@pytest.mark.parametrize("command", ["check-config", "once"])
@pytest.mark.parametrize(
    "url", ["mailto://desk:hunter2secret@", "json://desk:hunter2secret@[bad"], ids=["email", "json"]
)
def test_invalid_apprise_url_is_one_masked_line(tmp_path: Path, url: str, command: str) -> None:
    """A URL apprise refuses: one line with the URL masked, none of apprise's own lines."""
    path = tmp_path / "config.yaml"
    top = BASE.replace("json://127.0.0.1:9/alerts", f'"{url}"')
    path.write_text(top + "\n" + shipped_stories(), encoding="utf-8")
    result = run_cli(path, command)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert output.strip().splitlines() == [
        f"monitor: config error: notify[0].url: apprise does not accept this URL: "
        f"{url.split(':', 1)[0]}://*** (line 6)"
    ]
    assert "hunter2secret" not in output


def test_unsupported_database_is_the_same_line_for_every_command(tmp_path: Path) -> None:
    """`database: mysql://...`: check-config, once and run all exit 2 with the one line
    naming the key, before anything starts (no traceback, no crash loop)."""
    path = tmp_path / "config.yaml"
    top = BASE.replace("sqlite:///state/monitor.db", "mysql://monitor@db.example/monitor")
    path.write_text(top + "\n" + shipped_stories(), encoding="utf-8")
    lines = set()
    for command in ("check-config", "once", "run"):
        result = run_cli(path, command, timeout=60)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        lines.add(line)
    [line] = lines
    assert line.startswith("monitor: config error: database: monitor runs on SQLite or PostgreSQL")


def test_check_config_warns_of_a_folder_still_to_come(tmp_path: Path) -> None:
    """A SQLite folder not made yet (systemd's StateDirectory= makes it at start) passes
    with a warning naming it; the service itself would fail without it."""
    path = tmp_path / "config.yaml"
    path.write_text(BASE + "\n" + shipped_stories(), encoding="utf-8")
    result = run_cli(path, "check-config")
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout
    assert result.stderr.strip() == (
        f"monitor: warning: database: the folder of the SQLite file, {tmp_path / 'state'}, "
        "does not exist yet; SQLite will not create it (systemd's StateDirectory= does)"
    )
