"""The campaign message file: one text per language and optional buttons into awareness modules.

    ar: "..."
    en: "..."
    fr: "..."
    buttons: [aw:open:what_is_trafficking]
    window: "09:00-21:00"          # optional: quiet hours for scheduled sends
    max_handoffs_per_hour: 5        # optional: pause when recipients flood the caseworkers

Everything is checked when the campaign is created (lengths, module ids in every language), so
nothing can fail for a content reason in the middle of a send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import yaml

from bot.config import SUPPORTED_LANGUAGES
from bot.i18n import UiCatalog
from bot.messages import Button, Outbound
from bot.outreach.window import WindowError, parse_window

MAX_TEXT = 4096
"""Telegram's limit for one message (WhatsApp allows more)."""
MAX_BUTTONS = 3
"""WhatsApp shows at most three reply buttons; more would be degraded to a list."""
BUTTON_PREFIX = "aw:open:"
_OPTIONS = ("buttons", "window", "max_handoffs_per_hour")


@cache
def _catalog() -> UiCatalog:
    return UiCatalog.load()


def footer(lang: str) -> str:
    """The opt-out line every campaign message ends with (nobody is messaged unable to stop);
    ``campaign.footer`` in ``content/<lang>/ui.yml``, in words the bot reads as "unsubscribe"."""
    return _catalog().text(lang, "campaign.footer")


class MessageFileError(ValueError):
    """The message file cannot be used; the message lists every problem found."""


class _Module(Protocol):
    @property
    def button(self) -> str: ...


class ModuleLookup(Protocol):
    """What validation needs from ``bot.content.ContentLibrary``."""

    def module(self, module_id: str, lang: str) -> _Module | None: ...


@dataclass(frozen=True, slots=True)
class LanguageMessage:
    lang: str
    text: str
    buttons: tuple[Button, ...] = ()

    def outbound(self) -> Outbound:
        """The message as sent: the text, then how to stop these messages."""
        return Outbound(text=f"{self.text}\n\n{footer(self.lang)}", buttons=self.buttons)


@dataclass(frozen=True, slots=True)
class MessageFile:
    messages: tuple[LanguageMessage, ...]
    """In file order; the first is the fallback for recipients of another language."""
    window: str | None = None
    max_handoffs_per_hour: int | None = None

    def to_json(self) -> list[dict[str, Any]]:
        return [{"lang": m.lang, "text": m.text, "buttons": [[b.id, b.title] for b in m.buttons]}
                for m in self.messages]


def messages_from_json(data: list[Any]) -> tuple[LanguageMessage, ...]:
    """The stored form (``Campaign.messages``) back as values."""
    return tuple(LanguageMessage(str(m["lang"]), str(m["text"]),
                                 tuple(Button(str(i), str(t)) for i, t in m.get("buttons", ())))
                 for m in data)


def pick(messages: tuple[LanguageMessage, ...], language: str | None) -> LanguageMessage:
    """The recipient's language, else the campaign's first."""
    return next((m for m in messages if m.lang == language), messages[0])


def load(path: Path, content: ModuleLookup) -> MessageFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MessageFileError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise MessageFileError(f"{path}: not valid YAML ({exc})") from None
    return parse(raw, content, where=str(path))


def parse(raw: object, content: ModuleLookup, *, where: str = "message file") -> MessageFile:
    if not isinstance(raw, Mapping):
        raise MessageFileError(f"{where}: expected a mapping with keys "
                               f"{', '.join(SUPPORTED_LANGUAGES)}")
    problems: list[str] = []
    unknown = [str(k) for k in raw if k not in SUPPORTED_LANGUAGES and k not in _OPTIONS]
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)} (expected "
                        f"{', '.join((*SUPPORTED_LANGUAGES, *_OPTIONS))})")
    texts: dict[str, str] = {}
    for lang in (k for k in raw if k in SUPPORTED_LANGUAGES):
        text = raw[lang]
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{lang}: the text must be a non-empty string")
        elif len(text.strip()) + 2 + len(footer(lang)) > MAX_TEXT:
            room = MAX_TEXT - 2 - len(footer(lang))
            problems.append(f"{lang}: {len(text.strip())} characters, more than {room} "
                            f"({MAX_TEXT} with the opt-out line)")
        else:
            texts[str(lang)] = text.strip()
    if not texts and not problems:
        problems.append(f"no text: give at least one of {', '.join(SUPPORTED_LANGUAGES)}")
    button_ids = _button_ids(raw.get("buttons"), problems)
    messages = []
    for lang, text in texts.items():
        buttons = []
        for button_id in button_ids:
            module = content.module(button_id.removeprefix(BUTTON_PREFIX), lang)
            if module is None:
                problems.append(f"buttons: no awareness module {button_id!r} in {lang!r}")
            else:
                buttons.append(Button(button_id, module.button))
        messages.append(LanguageMessage(lang, text, tuple(buttons)))
    window = _window(raw.get("window"), problems)
    cap = raw.get("max_handoffs_per_hour")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        problems.append("max_handoffs_per_hour must be a whole number of at least 1")
    if problems:
        raise MessageFileError(f"{where}:\n  " + "\n  ".join(problems))
    return MessageFile(tuple(messages), window, cap)


def _button_ids(raw: object, problems: list[str]) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append("buttons must be a list of ids like aw:open:<module_id>")
        return []
    ids = []
    for item in raw:
        button_id = item.get("id") if isinstance(item, Mapping) else item
        if not isinstance(button_id, str) or not button_id.startswith(BUTTON_PREFIX):
            problems.append(f"buttons: {button_id!r} is not an id like {BUTTON_PREFIX}<module_id>")
        elif len(button_id.encode()) > 64:
            problems.append(f"buttons: {button_id!r} is longer than 64 bytes")
        else:
            ids.append(button_id)
    if len(ids) > MAX_BUTTONS:
        problems.append(f"buttons: at most {MAX_BUTTONS} (WhatsApp's reply-button limit)")
    return ids


def _window(raw: object, problems: list[str]) -> str | None:
    if raw is None:
        return None
    try:
        parse_window(str(raw))
    except WindowError as exc:
        problems.append(f"window: {exc}")
        return None
    return str(raw)
