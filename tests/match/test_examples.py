"""A story's `examples`: checked for shape, judged at load, and a config whose rules break
one is refused by check-config and by a reload of the running service."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from monitor.config.settings import parse_config
from monitor.core.errors import ConfigError
from tests.conftest import run_cli, write_config
from tests.support.daemon import Daemon
from tests.support.feeds import FILLER, rss
from tests.support.harbour import harbour_stories
from tests.support.servers import FeedServer

TOP = """\
feeds:
  - {name: a, url: "http://127.0.0.1:1/a.xml"}
"""

PASSING = """\
    examples:
      - title: Harbour bridge opened to traffic
        expect: opening
      - title: Harbour bridge will be opened in May
        expect: other_update
      - title: Design of the harbour bridge presented
        summary: The sketch shows two towers.
        expect: design_shown
      - title: Harbour tunnel opened
        expect: irrelevant"""


def _stories(bridge: str = PASSING, tunnel: str = "") -> str:
    """The test stories with these examples blocks."""
    return harbour_stories(bridge, tunnel)


def _line(text: str, needle: str) -> int:
    """The 1-based number of the first line of `text` that holds `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_examples_that_hold_load_with_the_story() -> None:
    """A config whose rules judge every example as it expects loads; the story keeps them."""
    tunnel = "    examples:\n      - {title: Harbour tunnel opened, expect: opening}"
    config = parse_config(TOP + _stories(tunnel=tunnel), env={})
    bridge, tunnel_story = config.stories
    assert [(e.path, e.expect) for e in bridge.examples] == [
        ("stories[0].examples[0]", "opening"),
        ("stories[0].examples[1]", "other_update"),
        ("stories[0].examples[2]", "design_shown"),
        ("stories[0].examples[3]", "irrelevant"),
    ]
    assert bridge.examples[2].summary == "The sketch shows two towers."
    assert [e.title for e in tunnel_story.examples] == ["Harbour tunnel opened"]


WRONG = [
    pytest.param(
        "    examples:\n      - {title: Harbour bridge will be opened in May, expect: opening}",
        "",
        "stories[0].examples[0]",
        "will be opened",
        "expected opening, got other_update "
        "(About the story, no milestone: “opened” is cancelled by future “will”.)",
        id="cancelled-by-modality",
    ),
    pytest.param(
        "    examples:\n      - {title: Harbour cafe opened beside the bridge, expect: irrelevant}",
        "",
        "stories[0].examples[0]",
        "cafe",
        "expected irrelevant, got opening (Bridge opened: “opened” in one sentence.)",
        id="look-alike-alerts",
    ),
    pytest.param(
        "    examples:\n      - {title: Stock markets rise, expect: other_update}",
        "",
        "stories[0].examples[0]",
        "Stock markets",
        "expected other_update, got irrelevant "
        "(Not relevant: nothing from watch.all[0] of harbour-bridge.)",
        id="not-about-the-story",
    ),
    pytest.param(
        "",
        "    examples:\n      - {title: Harbour tunnel opened under the bridge, expect: opening}",
        "stories[1].examples[0]",
        "under the bridge",
        "expected opening, got opening of story harbour-bridge "
        "(Bridge opened: “opened” in one sentence.)",
        id="taken-by-an-earlier-story",
    ),
    pytest.param(
        PASSING.replace("expect: other_update", "expect: opening").replace(
            "expect: irrelevant", "expect: opening"
        ),
        "",
        "stories[0].examples[1]",
        "will be opened",
        "expected opening, got other_update "
        "(About the story, no milestone: “opened” is cancelled by future “will”.); "
        "1 more example fails too",
        id="first-of-two",
    ),
]


@pytest.mark.parametrize(("bridge", "tunnel", "key", "needle", "message"), WRONG)
def test_an_example_judged_wrong_refuses_the_config(
    bridge: str, tunnel: str, key: str, needle: str, message: str
) -> None:
    """The error names the example, its line, what it expected, what it got and why."""
    text = TOP + _stories(bridge, tunnel)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    assert (caught.value.key, caught.value.message) == (key, message)
    assert caught.value.line == _line(text, needle)


SHAPES = [
    pytest.param(
        "    examples: {title: x, expect: opening}",
        "stories[0].examples",
        "examples:",
        "expected a list of {title, summary, expect} mappings",
        id="not-a-list",
    ),
    pytest.param(
        "    examples:\n      - Harbour bridge opened",
        "stories[0].examples[0]",
        "- Harbour",
        "expected a mapping with keys: title, summary, expect",
        id="a-bare-headline",
    ),
    pytest.param(
        "    examples:\n      - title: x\n        expcet: opening",
        "stories[0].examples[0].expcet",
        "expcet",
        "unknown key 'expcet'; did you mean 'expect'?",
        id="typo-in-a-key",
    ),
    pytest.param(
        "    examples:\n      - summary: x\n        expect: opening",
        "stories[0].examples[0].title",
        "- summary",
        "missing 'title'",
        id="missing-title",
    ),
    pytest.param(
        "    examples:\n      - title: x",
        "stories[0].examples[0].expect",
        "- title",
        "missing 'expect'",
        id="missing-expect",
    ),
    pytest.param(
        "    examples:\n      - title: x\n        expect: openning",
        "stories[0].examples[0].expect",
        "openning",
        "unknown milestone 'openning'; did you mean 'opening'?",
        id="expect-typo",
    ),
    pytest.param(
        "    examples:\n      - title: x\n        expect: launch",
        "stories[0].examples[0].expect",
        "launch",
        "unknown milestone 'launch' (expect: design_shown, opening, other_update, irrelevant)",
        id="expect-unknown",
    ),
    pytest.param(
        "    examples:\n      - title: yes\n        expect: opening",
        "stories[0].examples[0].title",
        "title: yes",
        "expected non-empty text",
        id="title-read-as-true",
    ),
]


@pytest.mark.parametrize(("bridge", "key", "needle", "message"), SHAPES)
def test_example_shape_errors_name_key_and_line(
    bridge: str, key: str, needle: str, message: str
) -> None:
    """A malformed example is a config error at its key and line, like every other rule."""
    text = TOP + _stories(bridge)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    assert (caught.value.key, caught.value.message) == (key, message)
    assert caught.value.line == _line(text, needle)


def test_check_config_refuses_a_broken_example(tmp_path: Path) -> None:
    """check-config exits 2 with one line naming the example, its line and what it got."""
    bridge = PASSING.replace("expect: other_update", "expect: opening")
    path = write_config(tmp_path, {"a": "http://127.0.0.1:1/a.xml"}, stories=_stories(bridge))
    done = run_cli(path, "check-config")
    assert done.returncode == 2
    line = _line(path.read_text(encoding="utf-8"), "- title: Harbour bridge will be opened")
    assert done.stderr == (
        "monitor: config error: stories[0].examples[1]: expected opening, got other_update "
        f"(About the story, no milestone: “opened” is cancelled by future “will”.) (line {line})\n"
    )
    write_config(tmp_path, {"a": "http://127.0.0.1:1/a.xml"}, stories=_stories())
    assert run_cli(path, "check-config").returncode == 0


def test_the_rule_tools_run_and_warn_when_an_example_fails(tmp_path: Path) -> None:
    """explain still explains (it is how to see why an example fails), with a warning."""
    bridge = PASSING.replace("expect: other_update", "expect: opening")
    path = write_config(tmp_path, {"a": "http://127.0.0.1:1/a.xml"}, stories=_stories(bridge))
    done = run_cli(path, "explain", "Harbour bridge will be opened in May")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("“opened” is cancelled by future “will”.\n")
    assert done.stderr == (
        "monitor: warning: stories[0].examples[1]: expected opening, got other_update "
        "(About the story, no milestone: “opened” is cancelled by future “will”.) "
        "(the service refuses this config)\n"
    )


@pytest.mark.slow
def test_a_reload_that_breaks_an_example_keeps_the_running_config(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """SIGHUP with rules that judge an example wrong: rejected by key and line, old config runs."""
    a = feed_server.serve("/a.xml", rss(FILLER))
    b = feed_server.serve("/b.xml", rss(FILLER))
    fetch = {"interval": "1s"}
    config = write_config(tmp_path, {"a": a}, stories=_stories(), fetch=fetch)
    with Daemon(config) as daemon:
        daemon.wait_for_log("service.started")

        # The edit adds feed b and loosens the opening rule so that "will be opened" alerts.
        loosened = "    cues:\n      future: [soon]\n    milestones:\n      design_shown:"
        broken = _stories().replace("    milestones:\n      design_shown:", loosened)
        assert broken != _stories()
        write_config(tmp_path, {"a": a, "b": b}, stories=broken, fetch=fetch)
        daemon.signal(signal.SIGHUP)
        rejected = daemon.wait_for_log("config.rejected")
        line = _line(config.read_text(encoding="utf-8"), "- title: Harbour bridge will be opened")
        assert (rejected["key"], rejected["line"], rejected["kept"]) == (
            "stories[0].examples[1]",
            line,
            "running config",
        )
        assert rejected["error"] == (
            "expected other_update, got opening (Bridge opened: “opened” in one sentence.)"
        )
        polled = feed_server.hits("/a.xml")
        daemon.wait_until(lambda: feed_server.hits("/a.xml") >= polled + 2, what="a polled")
        assert feed_server.hits("/b.xml") == 0

        write_config(tmp_path, {"a": a, "b": b}, stories=_stories(), fetch=fetch)
        daemon.signal(signal.SIGHUP)
        assert daemon.wait_for_log("config.reloaded")["added"] == ["b"]
        daemon.wait_until(lambda: feed_server.hits("/b.xml") >= 1, what="b polled")
    assert daemon.returncode == 0
