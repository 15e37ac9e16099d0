"""Feeds appended to a config's text: in its layout, every other byte kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.config.edit import append_feeds, scalar, write_atomically
from monitor.config.yamlsrc import load_yaml
from monitor.core.errors import ConfigError

NEW = {"name": "new", "url": "https://new.example/feed"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "feeds:\n- name: a\n  url: https://a.example/\nstories: []\n",
            "feeds:\n- name: a\n  url: https://a.example/\n"
            "- name: new\n  url: https://new.example/feed\nstories: []\n",
            id="dash-at-column-0",
        ),
        pytest.param(
            "feeds:\n  # one\n  - name: a   # first\n    url: https://a.example/\n"
            "    # trailing comment inside\n\n  # about what follows\nstories: []\n",
            "feeds:\n  # one\n  - name: a   # first\n    url: https://a.example/\n"
            "  - name: new\n    url: https://new.example/feed\n"
            "    # trailing comment inside\n\n  # about what follows\nstories: []\n",
            id="comments-stay-below",
        ),
        pytest.param(
            "feeds:\n    -   name: a\n        url: https://a.example/",
            "feeds:\n    -   name: a\n        url: https://a.example/\n"
            "    -   name: new\n        url: https://new.example/feed\n",
            id="wide-indent-no-final-newline",
        ),
        pytest.param(
            "feeds:\r\n  - name: a\r\n    url: https://a.example/\r\nx: 1\r\n",
            "feeds:\r\n  - name: a\r\n    url: https://a.example/\r\n"
            "  - name: new\r\n    url: https://new.example/feed\r\nx: 1\r\n",
            id="crlf-kept",
        ),
        pytest.param(
            "feeds:\n  - name: a\n    summary: |\n      one\n\n      two\nx: 1\n",
            "feeds:\n  - name: a\n    summary: |\n      one\n\n      two\n"
            "  - name: new\n    url: https://new.example/feed\nx: 1\n",
            id="after-a-block-scalar",
        ),
    ],
)
def test_append_keeps_the_layout(text: str, expected: str) -> None:
    """The entry goes after the last feed's last line, indented like it."""
    assert append_feeds(text, [NEW]) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("feeds: [{name: a, url: 'https://a.example/'}]\n", id="flow-list"),
        pytest.param("stories: []\n", id="no-feeds"),
        pytest.param("feeds: [\n", id="not-yaml"),
    ],
)
def test_append_refuses_what_it_cannot_edit(text: str) -> None:
    """A layout it cannot extend as text is a ConfigError, not a rewrite."""
    with pytest.raises(ConfigError):
        append_feeds(text, [NEW])


@pytest.mark.parametrize(
    "value",
    ["RIA Novosti", "yes", "null", "1.5", "-x", "@x", "a: b", "a #b", "${HOME}", "Новости", "'q'"],
)
def test_scalar_reads_back_as_written(value: str) -> None:
    """Whatever the value, the config loader reads back the same string."""
    assert load_yaml(f"k: {scalar(value)}\n", env={"HOME": "/root"}).value == {"k": value}
    assert scalar("RIA Novosti") == "RIA Novosti"
    assert yaml.safe_load(f"k: {scalar('yes')}") == {"k": "yes"}


def test_write_atomically_keeps_the_mode(tmp_path: Path) -> None:
    """The file is replaced whole, with its permissions, and no temporary file is left."""
    path = tmp_path / "config.yaml"
    path.write_text("old\n", encoding="utf-8")
    path.chmod(0o640)
    write_atomically(path, "new\r\n")
    assert path.read_bytes() == b"new\r\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
