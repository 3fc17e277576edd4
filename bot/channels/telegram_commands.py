"""The Telegram command menu (``setMyCommands``) in every language, from ``content/<lang>/
telegram.yml``: command descriptions are text, and text is data that editors translate."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from telegram import BotCommand

from bot.config import SUPPORTED_LANGUAGES
from bot.content import ContentError, Problem
from bot.i18n import content_root
from bot.languages import LANGUAGES

COMMANDS = ("start", "help", "menu", "language", "exit", "delete")
"""Offered in this order; the engine understands each of them."""
DESCRIPTION_LIMIT = 256


def load_commands(root: Path | None = None) -> dict[str, list[BotCommand]]:
    """Commands per language code; raises :class:`ContentError` listing every problem."""
    root = root or content_root()
    menus: dict[str, list[BotCommand]] = {}
    problems: list[Problem] = []
    for lang in SUPPORTED_LANGUAGES:
        shown = f"content/{lang}/telegram.yml"
        if lang not in LANGUAGES.complete and not (root / lang / "telegram.yml").exists():
            continue  # a progressive language: Telegram shows the default menu meanwhile
        try:
            with (root / lang / "telegram.yml").open(encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            problems.append(Problem(shown, "-", f"cannot read: {type(exc).__name__}"))
            continue
        texts = data.get("commands") if isinstance(data, Mapping) else None
        if not isinstance(texts, Mapping):
            problems.append(Problem(shown, "commands", "expected a mapping of command: text"))
            continue
        menu = []
        for name in COMMANDS:
            text = texts.get(name)
            if not isinstance(text, str) or not 1 <= len(text.strip()) <= DESCRIPTION_LIMIT:
                problems.append(Problem(shown, f"commands.{name}",
                                        f"needs a description of 1..{DESCRIPTION_LIMIT} chars"))
                continue
            menu.append(BotCommand(name, text.strip()))
        for name in sorted(set(texts) - set(COMMANDS)):
            problems.append(Problem(shown, f"commands.{name}", "not a command the bot has"))
        menus[lang] = menu
    if problems:
        raise ContentError(problems)
    return menus
