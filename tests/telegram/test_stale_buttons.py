"""A tap on a button that is no longer offered (an old message, a removed module, an earlier
release): the tap is always answered, and the user should read "that option is no longer
available" with the menu (``menu.stale_button``), not "I didn't get any text".

The wording is the engine's to choose (it knows the user's language and the flows' buttons):
a tap that no flow owns, or that its flow cannot read, gets ``menu.stale_button``."""

from __future__ import annotations

from typing import Any

from tests.telegram.conftest import Harness
from tests.telegram.updates import Updates

STALE = ["quiz:old:3", "x", "menu:gone", "pv:bogus", "aw:next:no_such_module:3"]
"""No flow owns the first two; the others are owned prefixes with an unknown rest."""


def buttons(params: dict[str, Any]) -> list[str]:
    markup = params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def tap_each(tg: Harness) -> dict[str, dict[str, Any]]:
    """In a chat of its own for each stale button: greet, then tap it. The last message each
    tap got; every tap's callback query is answered."""
    updates = Updates(chat_id=9100)
    last: dict[str, dict[str, Any]] = {}
    for number, data in enumerate(STALE):
        chat = 9100 + number
        assert await tg.post(updates.message("مرحبا", chat_id=chat)) == 200
        before = len(tg.fake.calls)
        update = updates.callback(data, chat_id=chat)
        assert await tg.post(update) == 200, data
        calls = tg.fake.calls[before:]
        answers = [c.params["callback_query_id"] for c in calls
                   if c.method == "answerCallbackQuery"]
        assert answers == [update["callback_query"]["id"]], data
        sent = [c.params for c in calls if c.method == "sendMessage"]
        assert sent, f"{data}: no answer"
        last[data] = sent[-1]
    return last


async def test_a_stale_tap_is_answered_with_the_menu(tg: Harness) -> None:
    for data, message in (await tap_each(tg)).items():
        assert "menu:learn" in buttons(message), data


async def test_a_stale_tap_says_the_option_is_gone(tg: Harness) -> None:
    ui = tg.sanad.ui
    for data, message in (await tap_each(tg)).items():
        assert ui.text("ar", "menu.stale_button") in message["text"], data
        assert ui.text("ar", "menu.empty") not in message["text"], data
        assert ui.text("ar", "menu.not_understood") not in message["text"], data
