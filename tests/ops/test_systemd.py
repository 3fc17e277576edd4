"""The systemd units in ``deploy/`` are valid and hardened (``systemd-analyze``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ("sanad-serve@.service", "sanad-worker.service", "sanad.target")
HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
             "CapabilityBoundingSet=", "SystemCallFilter=@system-service")

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed")


def installed_copy(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at this interpreter's ``sanad``, as installed."""
    sanad = Path(sys.executable).with_name("sanad")
    copies = []
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        text = text.replace("/opt/sanad/venv/bin/sanad", str(sanad))
        copies.append(tmp_path / name)
        copies[-1].write_text(text)
    return copies


def test_units_verify(tmp_path: Path) -> None:
    units = installed_copy(tmp_path)
    result = subprocess.run(["systemd-analyze", "verify", *map(str, units)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("name", ["sanad-serve@.service", "sanad-worker.service"])
def test_services_are_hardened(name: str, tmp_path: Path) -> None:
    text = (DEPLOY / name).read_text()
    for setting in HARDENING:
        assert re.search(rf"^{re.escape(setting)}", text, re.M), setting
    unit = next(p for p in installed_copy(tmp_path) if p.name == name)
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0 and "offline" in result.stderr:
        pytest.skip("this systemd-analyze cannot score unit files offline")
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert score is not None, result.stdout[-500:] + result.stderr
    assert float(score.group(1)) <= 2.0, result.stdout[-2000:]
