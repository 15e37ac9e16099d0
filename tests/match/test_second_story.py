"""A second story, written from docs/rules.md alone, works beside the shipped one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, shipped_stories, write_config

DOCS = REPO / "docs" / "rules.md"


def documented_story() -> str:
    """The YAML block that "Adding a story" in docs/rules.md shows, as written there."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## Adding a story") :]
    found = re.search(r"```yaml\n(  - id: kursk-kaesong-twinning.*?)```", section, re.S)
    assert found is not None, "docs/rules.md no longer shows the second story"
    return found.group(1)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The shipped story, then the documented one, as a user would paste it."""
    stories = shipped_stories() + documented_story()
    return write_config(tmp_path, {"feed": "http://127.0.0.1:9/feed.xml"}, stories=stories)


def test_the_documented_story_loads_and_its_examples_hold(config: Path) -> None:
    """check-config compiles both stories and judges the documented examples right."""
    done = run_cli(config, "check-config")
    assert done.returncode == 0, done.stderr
    assert "2 stories" in done.stdout


CASES = [
    ("Kursk and Kaesong sign sister city agreement", "kursk-kaesong-twinning", "agreement_signed"),
    ("Kursk, Kaesong to sign twinning agreement next month", "kursk-kaesong-twinning", None),
    ("Курск и Кэсон не подписали соглашение о побратимстве", "kursk-kaesong-twinning", None),
    ("쿠르스크-개성 자매도시 협정 서명", "kursk-kaesong-twinning", "agreement_signed"),
    ("Памятник бойцам КНДР разместят в сквере в Курске", "kursk-kpa-monument", "site_selection"),
    ("Kaesong weather: snow expected", None, None),
]


def test_each_story_keeps_its_own_items(config: Path) -> None:
    """Items go to the story they are about; the built-in cues serve the new story too."""
    lines = "".join(json.dumps({"title": t, "summary": ""}) + "\n" for t, _, _ in CASES)
    done = run_cli(config, "classify", stdin=lines)
    assert done.returncode == 0, done.stderr
    got = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["story"], r["milestone"]) for r in got] == [(s, m) for _, s, m in CASES]
