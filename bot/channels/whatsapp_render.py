"""``Outbound`` → Cloud API message bodies: where WhatsApp's limits meet the flows' buttons.

The flows offer any number of buttons with titles of any length; WhatsApp allows 3 reply buttons
of 20 characters, or one list of 10 rows of 24 characters, under a body of 1024 characters.
The channel degrades, never the flows:

* no buttons: text messages of at most 4096 characters, cut at paragraphs, lines or spaces;
* 1–3 buttons: reply buttons (``interactive.type=button``);
* 4–10 buttons: a list (``interactive.type=list``) opened by a label from the YAML;
* more than 10 (the awareness topics): one numbered text; the engine already maps a typed
  number or title back to the button. Nothing is hidden behind a "More…" row, so someone in a
  hurry sees every choice at once, and there is no channel state to lose between two taps.

A text longer than an interactive body goes out as text messages first, the last part carrying
the buttons. Titles over a limit end in "…"; a shortened list row keeps the full title as its
description. Lengths are counted in UTF-16 units (an emoji counts two): never over Meta's limit.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from typing import Any

from bot.channels.whatsapp_templates import Labels
from bot.content.limits import (
    WHATSAPP_LIST_ROW_DESCRIPTION_MAX,
    WHATSAPP_LIST_ROW_TITLE_MAX,
    WHATSAPP_REPLY_BUTTON_MAX,
)
from bot.messages import Button, Outbound

log = logging.getLogger(__name__)

TEXT_MAX = 4096
BODY_MAX = 1024
"""Body of an interactive message."""
REPLY_BUTTONS_MAX = 3
LIST_ROWS_MAX = 10
BUTTON_ID_MAX = 256
ROW_ID_MAX = 200
ELLIPSIS = "…"
Body = dict[str, Any]
"""A message body without ``messaging_product`` and ``to`` (the sender adds those)."""


def render(outbound: Outbound, labels: Labels) -> list[Body]:
    buttons = usable(outbound.buttons)
    if not buttons or len(buttons) > LIST_ROWS_MAX:
        return as_text(outbound, labels)
    parts = split(outbound.text.strip() or ELLIPSIS, TEXT_MAX)
    tail = split(parts.pop(), BODY_MAX)
    body = tail.pop()
    if len(buttons) <= REPLY_BUTTONS_MAX:
        last = reply_buttons(body, buttons)
    else:
        last = list_body(body, buttons, labels.list_button)
    return [*(text_body(part) for part in (*parts, *tail)), last]


def text_body(text: str) -> Body:
    # No link previews: WhatsApp would fetch and show them, and they say more than the text.
    return {"type": "text", "text": {"body": text, "preview_url": False}}


def reply_buttons(body: str, buttons: Sequence[Button]) -> Body:
    titles = distinct([b.title for b in buttons], WHATSAPP_REPLY_BUTTON_MAX)
    return {"type": "interactive", "interactive": {
        "type": "button",
        "body": {"text": body},
        "action": {"buttons": [{"type": "reply", "reply": {"id": b.id, "title": title}}
                               for b, title in zip(buttons, titles, strict=True)]},
    }}


def list_body(body: str, buttons: Sequence[Button], label: str) -> Body:
    titles = distinct([b.title for b in buttons], WHATSAPP_LIST_ROW_TITLE_MAX)
    rows = []
    for button, title in zip(buttons, titles, strict=True):
        row = {"id": button.id, "title": title}
        if title != button.title.strip():  # shortened: the description shows it whole (or more)
            row["description"] = shorten(button.title, WHATSAPP_LIST_ROW_DESCRIPTION_MAX)
        rows.append(row)
    return {"type": "interactive", "interactive": {
        "type": "list",
        "body": {"text": body},
        "action": {"button": shorten(label, WHATSAPP_REPLY_BUTTON_MAX),
                   "sections": [{"rows": rows}]},
    }}


def as_text(outbound: Outbound, labels: Labels) -> list[Body]:
    """The plain-text form: choices numbered under the text (also the fallback when Meta
    refuses an interactive message)."""
    buttons = usable(outbound.buttons)
    text = outbound.text.strip() or ELLIPSIS
    if buttons:
        text = numbered(text, buttons, labels)
    return [text_body(part) for part in split(text, TEXT_MAX)]


def numbered(text: str, buttons: Sequence[Button], labels: Labels) -> str:
    choices = "\n".join(f"{n}. {b.title.strip()}" for n, b in enumerate(buttons, 1))
    return f"{text}\n\n{choices}\n\n{labels.numbered_hint}"


def usable(buttons: Sequence[Button]) -> list[Button]:
    """Buttons WhatsApp accepts: an id of 1–200 characters (rows; 256 for reply buttons),
    unique, and a title. Content checks prevent the others; one never costs the message."""
    limit = BUTTON_ID_MAX if len(buttons) <= REPLY_BUTTONS_MAX else ROW_ID_MAX
    kept: list[Button] = []
    seen: set[str] = set()
    for button in buttons:
        if 0 < len(button.id) <= limit and button.id not in seen and button.title.strip():
            kept.append(button)
            seen.add(button.id)
        else:
            log.warning("whatsapp: dropped a button with an unusable id or no title")
    return kept


def distinct(titles: Sequence[str], limit: int) -> list[str]:
    """Shortened titles; if shortening made two equal (Meta rejects that), number them all."""
    short = [shorten(t, limit) for t in titles]
    if len(set(short)) == len(short):
        return short
    return [shorten(f"{n}. {t.strip()}", limit) for n, t in enumerate(titles, 1)]


def shorten(title: str, limit: int) -> str:
    """``title`` in at most ``limit`` UTF-16 units, ending in "…" when cut."""
    title = title.strip()
    if units(title) <= limit:
        return title
    kept = _prefix(title, limit - units(ELLIPSIS))
    while kept and (kept[-1].isspace() or _joins(kept[-1])):
        kept = kept[:-1]
    return kept + ELLIPSIS


def split(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-16 units: cut at a blank line, else a line
    break, else a space (in the second half of the piece), else anywhere between characters."""
    pieces: list[str] = []
    rest = text.strip()
    while units(rest) > limit:
        cut = _boundary(_prefix(rest, limit))
        while cut > 1 and (_joins(rest[cut]) or rest[cut - 1] == "\u200d"):
            cut -= 1  # keep "❤" + VS16, an accent or a ZWJ sequence in one piece
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces or [ELLIPSIS]


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-16 units (whole code points)."""
    size = 0
    for index, char in enumerate(text):
        size += 2 if ord(char) > 0xFFFF else 1
        if size > limit:
            return text[:index]
    return text


def _boundary(window: str) -> int:
    half = len(window) // 2
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator, half)
        if at > 0:
            return at
    return len(window)


def _joins(char: str) -> bool:
    """A character that belongs to the one before it (combining mark, joiner, variation)."""
    return unicodedata.combining(char) > 0 or char in "\u200d\ufe0e\ufe0f"
