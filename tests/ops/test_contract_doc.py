"""``docs/contract.md`` names every ``sanad`` command and every environment variable the code
reads: the public contract stays in the repository and in step with the code."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bot.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "docs" / "contract.md"
ENV_NAME = re.compile(r"""["']((?:SANAD|TELEGRAM|WHATSAPP)_[A-Z0-9_]+)["']""")
OTHER_ENV = ("DATABASE_URL", "NLU_BACKEND", "RASA_URL", "PORT", "PROMETHEUS_MULTIPROC_DIR")


def commands() -> list[tuple[str, str | None]]:
    found = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                children = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
                found.append((name, None))
                for child in children:
                    found += [(name, leaf) for leaf in child.choices]
    return found


def test_every_command_is_documented() -> None:
    text = CONTRACT.read_text()
    lines = text.splitlines()
    missing = []
    for command, sub in commands():
        rows = [line for line in lines if f"`sanad {command}" in line]
        if not rows:
            missing.append(f"sanad {command}")
        elif sub is not None and not any(re.search(rf"\b{re.escape(sub)}\b", row)
                                         for row in rows):
            missing.append(f"sanad {command} {sub}")
    assert not missing, f"add to docs/contract.md: {missing}"
    assert "`sanad --version`" in text


def test_every_environment_variable_is_documented() -> None:
    text = CONTRACT.read_text()
    names = set(OTHER_ENV)
    for package in ("bot", "nlu", "handoff"):
        for source in (REPO / package).rglob("*.py"):
            names |= set(ENV_NAME.findall(source.read_text(encoding="utf-8")))
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"add to docs/contract.md, Environment: {missing}"


def test_nothing_points_outside_the_repository() -> None:
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        assert "../shared/spec" not in path.read_text(), path
