"""`monitor eval`: labelled JSON lines in, the confusion matrix, the scores and every error out.

These tests judge with stories of their own (tests/support/harbour.py), never with the
shipped rules: tests/match/test_eval.py holds those to their bar.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from monitor.cli.main import main
from monitor.core.errors import LabelsError
from monitor.match.classify import Verdict
from monitor.match.evaluate import Bar, Scores, evaluate, outcome, read_rows, render, score
from monitor.match.rules import Story, compile_stories
from tests.conftest import run_cli, write_config
from tests.support.harbour import harbour_stories

STORIES = harbour_stories()

# (id, title, label, story): 3 wrong (a miss, a near miss, one the bridge story takes).
ROWS = [
    ("open", "Harbour bridge opened to traffic", "opening", None),
    ("design", "Design of the harbour bridge presented", "design_shown", None),
    ("will-open", "Harbour bridge will be opened in May", "other_update", None),
    ("missed", "Мост в гавани открыт для машин", "opening", None),
    ("near", "Harbour cafe opened beside the old bridge", "irrelevant", None),
    ("markets", "Stock markets rise", "irrelevant", None),
    ("tunnel", "Harbour tunnel opened", "opening", "harbour-tunnel"),
    ("taken", "Harbour tunnel opened under the bridge", "opening", "harbour-tunnel"),
    ("not-tunnel", "Harbour bridge opened", "irrelevant", "harbour-tunnel"),
]


def _stories() -> tuple[Story, ...]:
    """The test stories, compiled."""
    return compile_stories(yaml.safe_load(STORIES)["stories"])


def _jsonl(rows: list[tuple[str, str, str, str | None]]) -> str:
    """Rows as JSON lines, `story` only where a row names one."""
    lines = []
    for ident, title, label, story in rows:
        item = {"id": ident, "title": title, "summary": "", "label": label}
        lines.append(json.dumps({**item, **({"story": story} if story else {})}))
    return "\n".join(lines) + "\n"


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """The labelled file of ROWS."""
    path = tmp_path / "labelled.jsonl"
    path.write_text(_jsonl(ROWS), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config with the test stories and one (never fetched) feed."""
    return write_config(tmp_path, {"a": "http://127.0.0.1:1/a.xml"}, stories=STORIES)


@pytest.mark.parametrize(
    ("verdict", "story", "label"),
    [
        pytest.param(Verdict(None, None), None, "irrelevant", id="no-story"),
        pytest.param(Verdict("a", None), None, "other_update", id="about-a-story"),
        pytest.param(Verdict("a", "opening"), None, "opening", id="milestone"),
        pytest.param(Verdict("a", "opening"), "a", "opening", id="milestone-of-this-story"),
        pytest.param(Verdict("a", "opening"), "b", "irrelevant", id="another-storys-milestone"),
        pytest.param(Verdict("a", None), "b", "irrelevant", id="another-storys-update"),
    ],
)
def test_outcome(verdict: Verdict, story: str | None, label: str) -> None:
    """A verdict reads as a label for the given story; another story's verdict is irrelevant."""
    assert outcome(verdict, story) == label


SCORING = [
    ([("unveiling", "unveiling"), ("irrelevant", "irrelevant")], (1.0, 1.0, 1.0, 0)),
    ([("unveiling", "other_update"), ("other_update", "other_update")], (1.0, 0.0, 1.0, 0)),
    ([("irrelevant", "design_reveal"), ("design_reveal", "design_reveal")], (0.5, 1.0, 2 / 3, 1)),
    ([("site_selection", "design_reveal"), ("other_update", "irrelevant")], (0.0, 0.0, 2 / 3, 0)),
    ([("irrelevant", "irrelevant")], (1.0, 1.0, 1.0, 0)),
]


@pytest.mark.parametrize(
    ("pairs", "expected"), SCORING, ids=["perfect", "missed", "near-miss", "mixed", "nothing-said"]
)
def test_scoring(pairs: list[tuple[str, str]], expected: tuple[float, float, float, int]) -> None:
    """Precision and recall count milestones only; relevance pools every relevant label."""
    scores = score(pairs)
    got = (
        scores.milestone_precision,
        scores.milestone_recall,
        scores.relevance_f1,
        scores.near_misses_given_milestone,
    )
    assert got == pytest.approx(expected)


def test_report_on_the_test_stories(labelled: Path) -> None:
    """The rows are judged against every story; a row's `story` is the one it is scored for."""
    rows, foreign = read_rows(labelled, _stories())
    assert foreign == []
    report = evaluate(rows, _stories())
    assert report.labels == ("design_shown", "opening", "other_update", "irrelevant")
    assert dict(report.scores.matrix) == {
        ("opening", "opening"): 2,
        ("design_shown", "design_shown"): 1,
        ("other_update", "other_update"): 1,
        ("opening", "other_update"): 1,
        ("irrelevant", "opening"): 1,
        ("irrelevant", "irrelevant"): 2,
        ("opening", "irrelevant"): 1,
    }
    s = report.scores
    assert (s.milestones_right, s.milestones_predicted, s.milestones_labelled) == (3, 4, 5)
    assert (s.milestone_precision, s.milestone_recall) == (0.75, 0.6)
    assert s.relevance_f1 == pytest.approx(10 / 12)
    assert s.near_misses_given_milestone == 1
    assert [(j.row.id, j.row.line, j.predicted) for j in report.errors] == [
        ("missed", 4, "other_update"),
        ("near", 5, "opening"),
        ("taken", 8, "irrelevant"),
    ]


def test_render_names_the_milestones_and_explains_each_error(labelled: Path) -> None:
    """The matrix uses the stories' milestone keys; each error has its line, id, text and why."""
    rows, _ = read_rows(labelled, _stories())
    text = render(evaluate(rows, _stories(), source="labelled.jsonl"))
    lines = text.splitlines()
    assert lines[0] == "labelled.jsonl: 9 items, 3 wrong"
    labels = ["design_shown", "opening", "other_update", "irrelevant"]
    assert lines[2].split() == ["gold", "\\", "predicted", *labels]
    assert lines[4].split() == ["opening", "0", "2", "1", "1"]
    assert "milestone precision  0.750  (3 of 4 milestone verdicts right)" in lines
    assert "milestone recall     0.600  (3 of 5 labelled milestones found)" in lines
    assert "relevance F1         0.833" in lines
    assert "near misses given a milestone: 1" in lines
    wrong = lines[lines.index("wrong:") + 1 :]
    assert wrong == [
        "  line 4 [missed]: labelled opening, got other_update",
        "      Мост в гавани открыт для машин",
        "      About the story, no milestone words.",
        "  line 5 [near]: labelled irrelevant, got opening",
        "      Harbour cafe opened beside the old bridge",
        "      Bridge opened: “opened” in one sentence.",
        "  line 8 [taken]: labelled opening, got opening of story harbour-bridge",
        "      Harbour tunnel opened under the bridge",
        "      Bridge opened: “opened” in one sentence.",
    ]


def test_a_story_the_config_lacks_is_noted_and_not_checked(tmp_path: Path) -> None:
    """A row whose `story` names no configured story is scored for any story, and said so."""
    path = tmp_path / "rows.jsonl"
    rows = [("one", "Harbour bridge opened", "opening", "rewrites-of-one-report")]
    path.write_text(_jsonl(rows), encoding="utf-8")
    read, foreign = read_rows(path, _stories())
    assert foreign == ["rewrites-of-one-report"]
    report = evaluate(read, _stories(), "rows.jsonl", foreign)
    assert report.errors == []
    assert "(rewrites-of-one-report)" in render(report)


SHORTFALLS = [
    pytest.param(Bar(), [], id="no-bar"),
    pytest.param(Bar(min_precision=0.75, min_recall=0.6, max_near_misses=1), [], id="at-the-bar"),
    pytest.param(Bar(min_precision=0.8), ["milestone precision 0.750 < 0.800"], id="precision"),
    pytest.param(Bar(min_recall=0.7), ["milestone recall 0.600 < 0.700"], id="recall"),
    pytest.param(Bar(min_f1=0.9), ["relevance F1 0.833 < 0.900"], id="f1"),
    pytest.param(
        Bar(max_near_misses=0, min_recall=1.0),
        ["milestone recall 0.600 < 1.000", "near misses given a milestone 1 > 0"],
        id="two-at-once",
    ),
]


@pytest.mark.parametrize(("bar", "expected"), SHORTFALLS)
def test_bar_shortfalls(bar: Bar, expected: list[str]) -> None:
    """A figure below its least (or near misses above their most) is named; equal passes."""
    scores = Scores(9, 0.75, 0.6, 10 / 12, 1, {})
    assert bar.shortfalls(scores) == expected


BAD_LINES = [
    pytest.param("nope", "not JSON: Expecting value (column 1)", id="not-json"),
    pytest.param("[1]", "expected a JSON object with title, summary and label", id="not-an-object"),
    pytest.param('{"title": 3, "label": "irrelevant"}', "needs text in title", id="title-number"),
    pytest.param(
        '{"title": "", "summary": null, "label": "irrelevant"}',
        "needs text in title or summary",
        id="no-text",
    ),
    pytest.param(
        '{"title": "x"}',
        "missing label (labels: design_shown, opening, other_update, irrelevant)",
        id="no-label",
    ),
    pytest.param(
        '{"title": "x", "label": "openning"}',
        "unknown label 'openning'; did you mean 'opening'?",
        id="label-typo",
    ),
    pytest.param(
        '{"title": "x", "label": "design_shown", "story": "harbour-tunnel"}',
        "unknown label 'design_shown' (labels: opening, other_update, irrelevant)",
        id="milestone-of-another-story",
    ),
    pytest.param(
        '{"title": "x", "label": "irrelevant", "story": 5}', "'story' is a story id", id="story-5"
    ),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_lines_are_named_by_number(tmp_path: Path, line: str, message: str) -> None:
    """A bad line is reported as file:line: reason (blank lines count); nothing is scored."""
    path = tmp_path / "rows.jsonl"
    good = '{"title": "Harbour bridge opened", "label": "opening"}'
    path.write_text(f"{good}\n\n{line}\n{good}\n", encoding="utf-8")
    with pytest.raises(LabelsError) as caught:
        read_rows(path, _stories())
    assert caught.value.problems == (f"{path}:3: {message}",)


def test_many_bad_lines_are_listed_up_to_ten(tmp_path: Path) -> None:
    """A file that is not JSON lines at all gives ten lines and a count, not one per line."""
    path = tmp_path / "rows.csv"
    path.write_text("title,label\n" * 25, encoding="utf-8")
    with pytest.raises(LabelsError) as caught:
        read_rows(path, _stories())
    assert len(caught.value.problems) == 11
    assert caught.value.problems[0].startswith(f"{path}:1: not JSON")
    assert caught.value.problems[-1] == "... and 15 more"


# --- the command -------------------------------------------------------------------------


def test_eval_command_prints_the_report(config: Path, labelled: Path) -> None:
    """`monitor eval FILE` prints the report and exits 0 without a bar; it needs no database."""
    done = run_cli(config, "eval", str(labelled))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{labelled}: 9 items, 3 wrong\n")
    assert "line 8 [taken]: labelled opening, got opening of story harbour-bridge" in done.stdout
    assert not (config.parent / "monitor.db").exists()


@pytest.mark.parametrize(
    ("bar", "code", "shortfalls"),
    [
        pytest.param(["--min-precision", "0.75", "--min-f1", "0.8"], 0, [], id="passes"),
        pytest.param(
            ["--min-recall", "0.9", "--max-near-misses", "0"],
            1,
            ["milestone recall 0.600 < 0.900", "near misses given a milestone 1 > 0"],
            id="fails",
        ),
    ],
)
def test_eval_command_json_and_bar(
    config: Path, labelled: Path, bar: list[str], code: int, shortfalls: list[str]
) -> None:
    """--json prints one object with the scores; below the bar the exit is 1, and says why."""
    done = run_cli(config, "eval", str(labelled), "--json", *bar)
    assert done.returncode == code, done.stderr
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert result["shortfalls"] == shortfalls
    assert (result["items"], result["milestone_precision"], result["milestone_recall"]) == (
        9,
        0.75,
        0.6,
    )
    assert result["matrix"]["irrelevant"] == {
        "design_shown": 0,
        "opening": 1,
        "other_update": 0,
        "irrelevant": 2,
    }
    assert [(e["line"], e["id"], e["predicted"]) for e in result["errors"]] == [
        (4, "missed", "other_update"),
        (5, "near", "opening"),
        (8, "taken", "irrelevant"),
    ]
    expected_stderr = f"monitor: below the bar: {'; '.join(shortfalls)}\n" if shortfalls else ""
    assert done.stderr == expected_stderr


UNUSABLE = [
    pytest.param(None, "cannot read {path}: No such file or directory", id="missing"),
    pytest.param(b"\xff\xfe title", "cannot read {path}: 'utf-8' codec can't decode", id="bytes"),
    pytest.param(b"\n\n", "no labelled lines in {path}", id="empty"),
]


@pytest.mark.parametrize(("content", "message"), UNUSABLE)
def test_unusable_files_are_one_problem(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    """A file that cannot be read, or holds no line, is one problem naming the file."""
    path = tmp_path / "rows.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LabelsError) as caught:
        read_rows(path, _stories())
    (problem,) = caught.value.problems
    assert problem.startswith(message.format(path=path))


def test_eval_command_bad_input_exits_2(config: Path, tmp_path: Path) -> None:
    """Bad input is one line on stderr per bad line and exit 2, never a traceback."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"title": "x", "label": "nope"}\n', encoding="utf-8")
    done = run_cli(config, "eval", str(path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"monitor: {path}:1: unknown label 'nope' "
        "(labels: design_shown, opening, other_update, irrelevant)\n"
    )


def test_eval_command_refuses_a_bar_outside_0_to_1(
    config: Path, labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A least score must be a number from 0 to 1."""
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config), "eval", str(labelled), "--min-recall", "90"])
    assert exited.value.code == 2
    assert "not a number from 0 to 1: '90'" in capsys.readouterr().err


def test_eval_command_bench(config: Path, labelled: Path) -> None:
    """--bench prints the time to load the config, then µs per item of each test."""
    done = run_cli(config, "eval", str(labelled), "--bench")
    assert done.returncode == 0, done.stderr
    names = [line[:28].strip() for line in done.stdout.splitlines()]
    assert names == [
        "loading the config",
        "classify, unrelated news",
        "prefilter, unrelated news",
        "classify, relevant rows",
        "classify, all rows",
    ]
    for line in done.stdout.splitlines()[1:]:
        figure, unit = line[28:].split(maxsplit=1)
        assert float(figure) > 0
        assert unit == "µs per item"
