"""``sanad --help``/``--version`` are written for people; every option says what it does."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from bot.cli import build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"sanad {version('sanad')}"


def test_help_points_inside_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "docs/contract.md" in out and "CONTRACT.md for" not in out
    assert "sanad db upgrade" in out and "common tasks" in out


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _subparsers(child)
    return found


OWNED = ("sanad chat", "sanad nlu", "sanad content check", "sanad serve",
         "sanad worker", "sanad db", "sanad cases", "sanad keys")
"""Commands defined in ``bot/cli.py`` (the back office and outreach register their own)."""


def test_every_command_and_option_has_help() -> None:
    missing = []
    for parser in _subparsers(build_parser()):
        if parser.prog != "sanad" and not any(
                parser.prog == own or parser.prog.startswith(own + " ") for own in OWNED):
            continue
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                if parser.prog == "sanad":
                    continue  # top-level commands: checked below through their own parsers
                missing += [f"{parser.prog} {choice.dest}" for choice in action._choices_actions
                            if not choice.help]
            elif not action.help:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing
