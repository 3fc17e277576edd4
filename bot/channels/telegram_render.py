"""``Outbound`` → Telegram messages: text split at 4096, buttons as an inline keyboard.

Channels degrade what the platform lacks; Telegram lacks only length: a longer text becomes
several messages, cut at line boundaries (then at spaces), with the buttons under the last one.
Plain text only (no parse mode), so nothing a content editor writes can break a message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup

from bot.messages import Button, Outbound

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
"""Telegram's limit, counted in UTF-16 code units."""
CALLBACK_DATA_LIMIT = 64
SHORT_TITLE = 14
"""Titles at most this long go two per row (they fit side by side on a phone)."""
EMPTY_TEXT = "…"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One ``sendMessage``."""

    text: str
    keyboard: dict[str, Any] | None = None
    """The inline keyboard as the Bot API's JSON (``reply_markup``): built as plain data,
    because PTB's frozen button objects and their serialisation cost ~8% of a reply's CPU."""

    @property
    def markup(self) -> InlineKeyboardMarkup | None:
        """The keyboard as PTB's object, for PTB's typed ``send_message``."""
        return None if self.keyboard is None else InlineKeyboardMarkup.de_json(self.keyboard)


def render(outbound: Outbound) -> list[Chunk]:
    parts = split_text(outbound.text) or [EMPTY_TEXT]
    chunks = [Chunk(part) for part in parts]
    markup = keyboard(outbound.buttons)
    if markup is not None:
        chunks[-1] = Chunk(chunks[-1].text, markup)
    return chunks


def keyboard(buttons: Sequence[Button]) -> dict[str, Any] | None:
    """One button per row, or two per row when every title is short."""
    usable = []
    for button in buttons:
        if 0 < len(button.id.encode()) <= CALLBACK_DATA_LIMIT and button.title.strip():
            usable.append(button)
        else:  # content checks prevent this; never let one button cost the whole message
            log.warning("dropped a button whose id is not 1..64 bytes or has no title")
    if not usable:
        return None
    per_row = 2 if all(len(b.title) <= SHORT_TITLE for b in usable) else 1
    rows = [
        [{"text": b.title, "callback_data": b.id} for b in usable[i:i + per_row]]
        for i in range(0, len(usable), per_row)
    ]
    return {"inline_keyboard": rows}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-16 units, at newlines when possible."""
    text = text.strip()
    if utf16_len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in _pieces(text.split("\n"), limit, " "):
        width = utf16_len(line)
        joined = size + width + (1 if current else 0)
        if current and joined > limit:
            chunks.append("\n".join(current))
            current, size = [], 0
            joined = width
        current.append(line)
        size = joined
    if current:
        chunks.append("\n".join(current))
    return [c.strip() for c in chunks if c.strip()]


def _pieces(lines: Sequence[str], limit: int, separator: str) -> Iterator[str]:
    """Lines no longer than ``limit``: long ones cut at spaces, then anywhere."""
    for line in lines:
        if utf16_len(line) <= limit:
            yield line
        elif separator:
            yield from _rejoin(_pieces(line.split(separator), limit, ""), limit, separator)
        else:
            yield from _cut(line, limit)


def _rejoin(words: Iterator[str], limit: int, separator: str) -> Iterator[str]:
    current: list[str] = []
    size = 0
    for word in words:
        width = utf16_len(word)
        joined = size + width + (len(separator) if current else 0)
        if current and joined > limit:
            yield separator.join(current)
            current, size, joined = [], 0, width
        current.append(word)
        size = joined
    if current:
        yield separator.join(current)


def _cut(word: str, limit: int) -> Iterator[str]:
    """Cut a word with no spaces, never inside a character (emoji are 2 UTF-16 units)."""
    piece: list[str] = []
    size = 0
    for char in word:
        width = 2 if ord(char) > 0xFFFF else 1
        if size + width > limit:
            yield "".join(piece)
            piece, size = [], 0
        piece.append(char)
        size += width
    if piece:
        yield "".join(piece)
