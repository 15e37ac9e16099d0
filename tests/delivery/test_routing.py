"""Routing: who receives each kind of message, answered from the config alone."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config.settings import Config, load_config
from monitor.delivery import routing
from tests.conftest import write_config

STORY = "kursk-kpa-monument"
FEEDS = {"wire": "https://wire.example/rss"}
TARGETS: list[dict[str, Any]] = [
    {"name": "desk", "url": "json://localhost:1/"},
    {"name": "sites", "url": "json://localhost:2/", "milestones": ["site_selection"]},
    {"name": "other", "url": "json://localhost:3/", "stories": []},
    {"name": "news", "url": "json://localhost:4/", "receive": ["alerts", "updates"]},
    {"name": "daily", "url": "json://localhost:5/", "receive": ["digest"]},
    {"name": "daily-none", "url": "json://localhost:6/", "receive": ["digest"], "stories": []},
    {"name": "ops", "url": "json://localhost:7/", "receive": ["health"]},
]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_config(write_config(tmp_path_factory.mktemp("routing"), FEEDS, TARGETS))


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_config(write_config(tmp_path_factory.mktemp("bare"), FEEDS, []))


@pytest.mark.parametrize(
    ("milestone", "expected"),
    [
        pytest.param("unveiling", ["desk", "news"], id="alert-all-milestones"),
        pytest.param("site_selection", ["desk", "sites", "news"], id="alert-listed-milestone"),
        pytest.param(None, ["news"], id="update-ignores-milestones-filter"),
    ],
)
def test_route_alerts_and_updates(
    config: Config, milestone: str | None, expected: list[str]
) -> None:
    """An alert goes to the targets that take alerts, follow the story and want the
    milestone; an update to those that take updates and follow the story."""
    assert list(routing.route(config, STORY, milestone)) == expected


def test_other_story_reaches_only_unfiltered_targets(config: Config) -> None:
    """A target listing stories hears nothing of the others."""
    assert routing.alert_targets(config, "another-story", "unveiling") == ["desk", "news"]
    assert routing.digest_targets(config, "another-story") == ["daily"]


def test_digest_health_and_addresses(config: Config) -> None:
    """Digests, health notices and the full address list each have their own targets."""
    assert routing.digest_targets(config, STORY) == ["daily"]
    assert routing.health_targets(config) == ["ops"]
    assert routing.addresses(config) == [t["name"] for t in TARGETS]


@pytest.mark.parametrize(
    ("dead", "warned"),
    [
        pytest.param("desk", "ops", id="health-target-first"),
        pytest.param("ops", "desk", id="else-the-first-other"),
    ],
)
def test_dead_letter_target(config: Config, dead: str, warned: str) -> None:
    """A dead target is warned about through a health target, never through itself."""
    assert routing.dead_letter_target(config, dead) == warned


def test_target_lookup(config: Config) -> None:
    """A label names its configured target; stdout and removed targets name none."""
    found = routing.target(config, "sites")
    assert found is not None
    assert found.milestones == ("site_selection",)
    assert routing.target(config, routing.STDOUT) is None
    assert routing.target(config, "gone") is None


def test_without_targets_everything_is_printed(bare: Config) -> None:
    """With no `notify`, every kind of message goes to stdout, and a dead one nowhere."""
    assert routing.addresses(bare) == [routing.STDOUT]
    assert list(routing.route(bare, STORY, "unveiling")) == [routing.STDOUT]
    assert list(routing.route(bare, STORY, None)) == [routing.STDOUT]
    assert routing.digest_targets(bare, STORY) == [routing.STDOUT]
    assert routing.health_targets(bare) == [routing.STDOUT]
    assert routing.dead_letter_target(bare, routing.STDOUT) is None


def test_confirming_targets_wait_and_are_not_alerted_at_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A target with `confirm` is no immediate alert target: it is a confirming one, with
    its count, under the same story and milestone filters; updates ignore `confirm`."""
    targets = [
        *TARGETS[:2],
        {"name": "careful", "url": "json://localhost:8/", "confirm": 2},
        {
            "name": "careful-sites",
            "url": "json://localhost:9/",
            "confirm": 3,
            "milestones": ["site_selection"],
            "receive": ["alerts", "updates"],
        },
    ]
    config = load_config(write_config(tmp_path_factory.mktemp("confirm"), FEEDS, targets))
    assert routing.alert_targets(config, STORY, "site_selection") == ["desk", "sites"]
    assert routing.confirming(config, STORY, "site_selection") == {
        "careful": 2,
        "careful-sites": 3,
    }
    assert routing.confirming(config, STORY, "unveiling") == {"careful": 2}
    assert list(routing.route(config, STORY, None)) == ["careful-sites"]
    assert (
        routing.confirming(
            load_config(write_config(tmp_path_factory.mktemp("b"), FEEDS, [])), STORY, "unveiling"
        )
        == {}
    )
