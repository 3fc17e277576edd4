"""``requirements.lock`` pins every dependency of ``pyproject.toml`` (runtime, test, dev) to a
version its specifier allows: an added or re-bounded dependency fails here until
``scripts/lock.sh`` is run."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]


def pinned() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not a pin: {line}"
            pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"])
    for extra in ("test", "dev"):
        listed += project["optional-dependencies"][extra]
    return [Requirement(item) for item in listed]


def test_every_dependency_is_pinned_within_its_bounds() -> None:
    pins = pinned()
    problems = []
    for requirement in requirements():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name}: not in requirements.lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} outside {requirement.specifier}")
    assert not problems, "run scripts/lock.sh: " + "; ".join(problems)


def test_private_apis_have_upper_bounds() -> None:
    """bot/store/direct.py, sqlite_inline.py and the Telegram channel use private APIs."""
    bounded = {canonicalize_name(r.name): r.specifier for r in requirements()}
    for name in ("sqlalchemy", "python-telegram-bot", "aiosqlite"):
        assert any(spec.operator in ("<", "<=", "~=", "==") for spec in bounded[name]), name
