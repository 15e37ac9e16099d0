"""Source tiers (`tier:` on any source) and confirmation (`confirm:` on a target),
checked at load time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.config.settings import Config, load_config, parse_config
from monitor.core.errors import ConfigError
from tests.conftest import REPO, run_cli, shipped_stories

SOURCES = """\
feeds:
  - name: wire
    url: https://wire.example/rss
  - name: governor
    telegram: kursk_gov_test
    tier: official
  - name: city
    page: https://city.example/news/
    items: a.news
    tier: aggregator
  - name: agency
    url: https://agency.example/rss
    tier: {tier}
notify:
  - name: desk
    url: json://127.0.0.1:9/desk
  - name: careful
    url: json://127.0.0.1:9/careful
{confirm}"""


def _config(tier: str = "agency", confirm: str = "    confirm: 2\n") -> Config:
    text = SOURCES.format(tier=tier, confirm=confirm) + "\n" + shipped_stories()
    return parse_config(text, Path("config.yaml"), {})


def test_tiers_and_confirm_are_read() -> None:
    """Every kind of source takes a tier (press by default); a target takes `confirm`."""
    config = _config()
    assert [(f.kind, f.tier) for f in config.feeds] == [
        ("feed", "press"),
        ("telegram", "official"),
        ("page", "aggregator"),
        ("feed", "agency"),
    ]
    assert [t.confirm for t in config.notify] == [None, 2]


@pytest.mark.parametrize(
    ("tier", "confirm", "key", "message"),
    [
        pytest.param(
            "agnecy",
            "",
            "feeds[3].tier",
            "not a tier: 'agnecy' (one of official, agency, press, aggregator; "
            "did you mean 'agency'?)",
            id="tier-typo",
        ),
        pytest.param(
            "blog",
            "",
            "feeds[3].tier",
            "not a tier: 'blog' (one of official, agency, press, aggregator)",
            id="tier-unknown",
        ),
        pytest.param(
            "agency",
            "    confirm: 1\n",
            "notify[1].confirm",
            "greater than or equal to 2",
            id="confirm-one",
        ),
        pytest.param(
            "agency",
            "    confirm: two\n",
            "notify[1].confirm",
            "valid integer",
            id="confirm-not-a-number",
        ),
        pytest.param(
            "agency",
            "    confrim: 2\n",
            "notify[1].confrim",
            "unknown key",
            id="confirm-typo",
        ),
    ],
)
def test_bad_tier_or_confirm_names_its_key(tier: str, confirm: str, key: str, message: str) -> None:
    """A tier that is none of the four, or a confirm below 2, is one error naming the key."""
    with pytest.raises(ConfigError) as caught:
        _config(tier, confirm)
    assert caught.value.key == key
    assert message in caught.value.message
    assert caught.value.line is not None


def test_check_config_names_a_bad_tier_in_one_line(tmp_path: Path) -> None:
    """check-config reports a misspelt tier as one line with its key, a suggestion and
    its line."""
    path = tmp_path / "config.yaml"
    path.write_text(
        SOURCES.format(tier="offical", confirm="") + "\n" + shipped_stories(), encoding="utf-8"
    )
    result = run_cli(path, "check-config")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "feeds[3].tier: not a tier: 'offical'" in line
    assert "did you mean 'official'?" in line
    assert line.endswith("(line 13)")


def _readme_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text[
        text.index("### Source tiers and confirmation") : text.index(
            "### Delivery, digests and quiet hours"
        )
    ]


def test_readme_example_is_valid_and_means_what_it_says() -> None:
    """The README's tiers example loads: its sources have the tiers it names and only
    the public channel waits for confirmation."""
    [block] = re.findall(r"```yaml\n(.*?)```", _readme_section(), re.DOTALL)
    config = parse_config(
        block + "\n" + shipped_stories(),
        Path("config.yaml"),
        {"NEWSROOM_WEBHOOK": "json://127.0.0.1:9/n", "PUBLIC_WEBHOOK": "json://127.0.0.1:9/p"},
    )
    assert [(f.name, f.kind, f.tier) for f in config.feeds] == [
        ("Kursk governor", "telegram", "official"),
        ("TASS", "feed", "agency"),
        ("Kommersant", "feed", "press"),
        ("Google News (en)", "feed", "aggregator"),
    ]
    assert [(t.label, t.confirm) for t in config.notify] == [
        ("newsroom", None),
        ("public-channel", 2),
    ]


def test_the_shipped_feeds_say_what_they_are() -> None:
    """The shipped config marks the wires as agencies and Google News as an aggregator;
    the newspapers are press by default."""
    tiers = {feed.name: feed.tier for feed in load_config(REPO / "config.yaml").feeds}
    assert {tiers[name] for name in ("TASS", "RIA Novosti", "Yonhap (North Korea)")} == {"agency"}
    assert {tier for name, tier in tiers.items() if name.startswith("Google News")} == {
        "aggregator"
    }
    assert tiers["NK News"] == tiers["Kommersant"] == "press"
