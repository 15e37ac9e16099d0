"""deploy/: the systemd unit passes systemd's own checks; install.sh is idempotent.

systemd is not running here (nor in CI), so what is checked is what systemd-analyze
can check offline: the unit's syntax and references (`verify`, where any message on
stderr counts as a failure, since verify exits 0 on unknown keys) and its sandboxing
(`security --offline=yes`). verify insists that ExecStart's binary exists, so it
checks a copy of the unit whose ExecStart points at a monitor that exists: this
checkout's, or the one install.sh put under a temporary root.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "monitor.service"
EXEC_PATH = "/opt/monitor/bin/monitor"
MAX_EXPOSURE = 2.0

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and not os.environ.get("CI"),
    reason="systemd-analyze is not installed (.ci/run installs the systemd package)",
)


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _unit_running(binary: Path, folder: Path, source: Path = UNIT) -> Path:
    """A copy of `source` whose ExecStart runs `binary` (verify needs it to exist)."""
    text = source.read_text(encoding="utf-8")
    assert EXEC_PATH in text
    copy = folder / "monitor.service"
    copy.write_text(text.replace(EXEC_PATH, str(binary)), encoding="utf-8")
    return copy


@needs_systemd_analyze
def test_unit_verifies_without_a_word(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit and prints nothing on stderr."""
    binary = Path(sys.executable).with_name("monitor")
    assert binary.exists(), "install the package into this environment (pip install -e .)"
    result = _verify(_unit_running(binary, tmp_path))
    assert (result.returncode, result.stderr) == (0, "")


@needs_systemd_analyze
def test_unit_exposure_is_low() -> None:
    """`systemd-analyze security --offline=yes` rates the unit 2.0 or lower."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for monitor\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        pytest.param("Type", "notify", id="notify"),
        pytest.param("Restart", "on-failure", id="restart"),
        pytest.param("StateDirectory", "monitor", id="state-directory"),
        pytest.param("EnvironmentFile", "-/etc/monitor/monitor.env", id="secrets"),
        pytest.param("ExecReload", "/bin/kill -HUP $MAINPID", id="reload-is-sighup"),
        pytest.param("DynamicUser", "yes", id="dynamic-user"),
        pytest.param("CapabilityBoundingSet", "", id="no-capabilities"),
        pytest.param("SystemCallFilter", "@system-service", id="syscalls"),
    ],
)
def test_unit_settings(setting: str, value: str) -> None:
    """The settings the service relies on are in the unit."""
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    assert f"{setting}={value}" in lines


def _tree(root: Path) -> dict[str, str]:
    """Every file and link under root (the virtualenv aside), with a digest or target."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("opt/"):
            continue
        if path.is_symlink():
            found[relative] = "-> " + os.readlink(path)
        elif path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            found[relative] = f"{oct(path.stat().st_mode & 0o777)} {digest}"
    return found


def _install(root: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["sh", str(DEPLOY / "install.sh"), "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.slow
@needs_systemd_analyze
def test_install_twice_into_a_temporary_root(tmp_path: Path) -> None:
    """Installing again changes nothing, keeps an edited config and the secrets."""
    root = tmp_path / "root"
    first = _install(root)
    etc = root / "etc" / "monitor"
    assert "created /etc/monitor/config.yaml" in first.stdout
    config = (etc / "config.yaml").read_text(encoding="utf-8")
    assert "\ndatabase: sqlite:////var/lib/monitor/monitor.db" in config
    assert (etc / "monitor.env").stat().st_mode & 0o777 == 0o600
    wants = root / "etc/systemd/system/multi-user.target.wants/monitor.service"
    assert os.readlink(wants) == "/etc/systemd/system/monitor.service"
    unchanged = _tree(root)
    again = _install(root)
    assert "kept /etc/monitor/config.yaml" in again.stdout
    assert _tree(root) == unchanged

    edited = config.replace("interval: 15m", "interval: 20m").replace(
        "notify: []",
        'notify:\n  - name: desk\n    url: "json://127.0.0.1:9/alerts?+X-Key=${DESK_KEY}"',
    )
    assert edited != config
    (etc / "config.yaml").write_text(edited, encoding="utf-8")
    with (etc / "monitor.env").open("a", encoding="utf-8") as secrets:
        secrets.write("DESK_KEY=k3y&with?shell=chars\n")
    second = _install(root)
    assert "kept /etc/monitor/config.yaml" in second.stdout
    assert re.search(r"config OK: \d+ feeds, 1 targets", second.stdout), second.stdout
    assert "k3y" not in second.stdout + second.stderr
    assert (etc / "config.yaml").read_text(encoding="utf-8") == edited
    assert "DESK_KEY=k3y&with?shell=chars" in (etc / "monitor.env").read_text(encoding="utf-8")
    after = _tree(root)
    changed = {k for k in unchanged.keys() | after.keys() if unchanged.get(k) != after.get(k)}
    assert changed == {"etc/monitor/config.yaml", "etc/monitor/monitor.env"}
    assert (etc / "monitor.env").stat().st_mode & 0o777 == 0o600

    # A config that names PostgreSQL gets the driver with the next install.
    postgres = edited.replace(
        "database: sqlite:////var/lib/monitor/monitor.db",
        "database: postgresql+psycopg://monitor@127.0.0.1:5432/monitor",
    )
    assert postgres != edited
    (etc / "config.yaml").write_text(postgres, encoding="utf-8")
    third = _install(root)
    assert f"installing monitor from {REPO}[postgres]" in third.stdout
    assert re.search(r"config OK: \d+ feeds, 1 targets", third.stdout), third.stdout
    python = root / "opt/monitor/bin/python"
    assert subprocess.run([python, "-c", "import psycopg"], check=False).returncode == 0

    installed = root / "etc/systemd/system/monitor.service"
    assert installed.read_text(encoding="utf-8") == UNIT.read_text(encoding="utf-8")
    binary = root / EXEC_PATH.lstrip("/")
    check = tmp_path / "check"
    check.mkdir()
    result = _verify(_unit_running(binary, check, source=installed))
    assert (result.returncode, result.stderr) == (0, "")
