"""The matching commands as a user runs them: explain, classify, replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

import pytest

from monitor.cli.main import _date
from tests.conftest import REPO, run_cli, write_config
from tests.support.feeds import FILLER, UNVEILING_EN, UNVEILING_RU, rss
from tests.support.servers import FeedServer

CONFIG = REPO / "config.yaml"

WEATHER_ONLY = """\
stories:
  - id: weather
    name: Weather
    watch:
      all: [[snow*]]
    milestones:
      blizzard:
        label: Blizzard
        event: [blizzard]
"""


@pytest.mark.parametrize(
    ("headline", "verdict"),
    [
        pytest.param(
            "В Курске открыли памятник бойцам КНДР", "Monument unveiled", id="unveiling-ru"
        ),
        pytest.param(
            "Unveiling of Kursk monument to North Korean troops set for May 9",
            "no milestone",
            id="announced-date",
        ),
        pytest.param("Football: Spartak beat Zenit", "Not relevant", id="unrelated"),
    ],
)
def test_explain(headline: str, verdict: str) -> None:
    """explain ends with a verdict a person can read."""
    result = run_cli(CONFIG, "explain", headline)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("verdict:")
    assert verdict in last


RAW = ("\x1b", "\x07", "\x08", "\x9b", "\u202e", "\ud800")
HOSTILE = "\x1b]0;owned\x07\x1b[2J\x08Monument\u202e unveiled in Kursk\x9b"


def _raw(text: str) -> list[str]:
    return [repr(c) for c in RAW if c in text]


def test_explain_shows_controls_escaped() -> None:
    """explain quotes the words it matched with their controls escaped, never raw."""
    result = run_cli(CONFIG, "explain", "Monument to North\x1b\x07 Korean soldiers unveiled")
    assert result.returncode == 0, result.stderr
    assert _raw(result.stdout) == []
    assert "“North\\x1b\\x07 Korean”" in result.stdout


def test_classify_writes_safe_json_for_any_text() -> None:
    """classify answers controls and lone surrogates with valid JSON that holds none raw."""
    line = json.dumps({"id": HOSTILE, "title": f"{HOSTILE} \ud800", "summary": "\x9b"})
    result = run_cli(CONFIG, "classify", stdin=line)
    assert result.returncode == 0, result.stderr
    assert _raw(result.stdout) == []
    assert json.loads(result.stdout)["id"] == HOSTILE


def test_eval_shows_controls_escaped(tmp_path: Path) -> None:
    """eval's errors and bad-line reports show a labelled text's controls as escapes."""
    labelled = tmp_path / "labels.jsonl"
    wrong = {"id": HOSTILE, "title": f"{UNVEILING_EN.title} {HOSTILE}", "label": "irrelevant"}
    labelled.write_text(json.dumps(wrong) + "\n", encoding="utf-8")
    result = run_cli(CONFIG, "eval", str(labelled))
    assert result.returncode == 0, result.stderr
    assert "labelled irrelevant, got unveiling" in result.stdout
    assert _raw(result.stdout) == []
    assert json.loads(run_cli(CONFIG, "eval", str(labelled), "--json").stdout)["errors"]
    labelled.write_text(json.dumps({**wrong, "label": HOSTILE}) + "\n", encoding="utf-8")
    result = run_cli(CONFIG, "eval", str(labelled))
    assert result.returncode == 2
    assert "unknown label" in result.stderr
    assert _raw(result.stderr) == []


def test_classify_keeps_order_and_survives_bad_lines() -> None:
    """classify answers every input line in order, reporting a bad line in place."""
    lines = [
        json.dumps({"id": "a", "title": UNVEILING_EN.title, "summary": UNVEILING_EN.summary}),
        "not json",
        json.dumps({"id": "c", "url": "https://x.example/", "title": "Snow", "summary": ""}),
    ]
    result = run_cli(CONFIG, "classify", stdin="\n".join(lines))
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("id") for o in out] == ["a", None, "c"]
    assert out[0]["milestone"] == "unveiling"
    assert out[0]["terms"]
    assert out[0]["why"]
    assert "error" in out[1]
    assert out[2]["story"] is None
    assert out[2]["url"] == "https://x.example/"


def test_replay_shows_what_new_rules_would_alert(tmp_path: Path, feed_server: FeedServer) -> None:
    """Items stored under old rules are re-judged by new ones, and nothing is sent."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"feed": url}, stories=WEATHER_ONLY)
    assert run_cli(config, "once").returncode == 0
    feed_server.serve("/feed.xml", rss([UNVEILING_EN, UNVEILING_RU, *FILLER]))
    first = run_cli(config, "once")
    assert first.returncode == 0
    assert "=== " not in first.stdout  # the weather story alerted nothing

    config = write_config(tmp_path, {"feed": url})  # now with the shipped stories
    result = run_cli(config, "replay", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    [milestone] = [r for r in records if r["type"] == "milestone"]
    assert milestone["milestone"] == "unveiling"
    assert milestone["would_alert"] is True
    assert len(milestone["sources"]) == 2
    changed = {r["title"]: (r["was"], r["now"]) for r in records if r["type"] == "changed"}
    for item in (UNVEILING_EN, UNVEILING_RU):
        assert changed[item.title] == (
            {"story": None, "milestone": None},
            {"story": "kursk-kpa-monument", "milestone": "unveiling"},
        )
    snow = next(f.title for f in FILLER if "snow" in f.title)
    assert changed[snow] == (
        {"story": "weather", "milestone": None},
        {"story": None, "milestone": None},
    )
    assert len(changed) == 3

    text = run_cli(config, "replay")
    assert "Would alert now:" in text.stdout
    assert "Nothing was sent." in text.stdout
    history = run_cli(config, "history", "--json")
    assert history.stdout.strip() == ""  # replay recorded no event


def test_replay_since_filters_by_date(tmp_path: Path, feed_server: FeedServer) -> None:
    """--since keeps items seen before that date out of the replay."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"feed": url})
    assert run_cli(config, "once").returncode == 0
    everything = run_cli(config, "replay", "--since", "2000-01-01").stdout
    assert f"Replayed {len(FILLER)} stored items" in everything
    text = run_cli(config, "replay", "--since", "2999-01-01").stdout
    assert "Replayed 0 stored items seen since 2999-01-01" in text
    bad = run_cli(config, "replay", "--since", "soon")
    assert bad.returncode == 2
    assert "not a date" in bad.stderr


@pytest.mark.parametrize("since", ["yesterday", "today", "2d", "12h"])
def test_replay_since_reads_words_and_spans(
    tmp_path: Path, feed_server: FeedServer, since: str
) -> None:
    """--since takes today, yesterday and spans back (3d, 12h) as well as ISO dates."""
    url = feed_server.serve("/feed.xml", rss(FILLER))
    config = write_config(tmp_path, {"feed": url})
    assert run_cli(config, "once").returncode == 0
    result = run_cli(config, "replay", "--since", since)
    assert result.returncode == 0, result.stderr
    assert f"Replayed {len(FILLER)} stored items seen since " in result.stdout


def test_replay_since_dates_back_from_now() -> None:
    """The words and spans of --since are reckoned from now, in UTC."""
    now = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    assert _date("yesterday", now) == datetime(2026, 11, 29, tzinfo=UTC)
    assert _date("today", now) == datetime(2026, 11, 30, tzinfo=UTC)
    assert _date("3d", now) == now - timedelta(days=3)
    assert _date("12h", now) == now - timedelta(hours=12)
    assert _date("2026-11-28", now) == datetime(2026, 11, 28, tzinfo=UTC)


def test_classify_accepts_a_line_without_summary() -> None:
    """A line with a title and no `summary` is judged on its title."""
    line = json.dumps({"id": "t", "title": UNVEILING_EN.title})
    result = run_cli(CONFIG, "classify", stdin=line)
    assert result.returncode == 0, result.stderr
    [out] = [json.loads(row) for row in result.stdout.splitlines()]
    assert "error" not in out
    assert out["milestone"] == "unveiling"


def test_explain_shows_the_text_as_read_not_a_repr() -> None:
    """explain's first line is the text the rules read, as prose, not a Python repr."""
    result = run_cli(CONFIG, "explain", "Monument unveiled", "It opened today.")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first == "read as: monument unveiled / it opened today."


@pytest.mark.parametrize("command", ["check-config", "classify"])
def test_config_is_accepted_after_the_command(command: str) -> None:
    """`--config` may follow the command (`monitor check-config --config PATH`)."""
    result = run_cli(None, command, "--config", str(CONFIG), stdin="")
    assert result.returncode == 0, result.stderr


def test_version() -> None:
    """`monitor --version` prints the installed version."""
    result = run_cli(None, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"monitor {metadata.version('monitor')}"
