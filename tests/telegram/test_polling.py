"""``sanad serve --polling``: updates from getUpdates, acknowledged only once processed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.channels.telegram import WEBHOOK_PATH
from tests.support import bot_core, database_down
from tests.telegram.conftest import Harness, running, telegram_settings
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.updates import Updates


@pytest.fixture
async def polling(sqlite_url: str, embedded_nlu: Any, fake: FakeBotAPI
                  ) -> AsyncIterator[Harness]:
    fake.webhook = {"url": "https://old.example.org/hook"}  # polling must remove it first
    settings = telegram_settings(sqlite_url, fake, telegram_webhook_secret=None)
    async with bot_core(settings, embedded_nlu) as sanad, \
            running(sanad, fake, polling=True) as harness:
        yield harness


async def wait_until(condition: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_polling_answers_and_acknowledges(polling: Harness) -> None:
    fake = polling.fake
    updates = Updates(chat_id=8001)
    update = fake.push_update(updates.message("مرحبا"))
    prompt = polling.sanad.ui.text("ar", "menu.prompt")
    await wait_until(lambda: any(prompt in text for text in fake.sent_texts(8001)))
    assert fake.calls_to("deleteWebhook") and fake.webhook is None
    acknowledged = update["update_id"] + 1
    await wait_until(lambda: any(c.params.get("offset") == acknowledged
                                 for c in fake.calls_to("getUpdates")))
    tap = fake.push_update(updates.callback("menu:language"))
    await fake.wait_for("answerCallbackQuery")
    assert fake.calls_to("answerCallbackQuery")[0].params["callback_query_id"] == (
        tap["callback_query"]["id"])


async def test_polling_mounts_no_webhook(polling: Harness) -> None:
    response = await polling.client.post(WEBHOOK_PATH, data=b"{}")
    assert response.status in (404, 405)


async def test_polling_keeps_an_update_while_the_database_is_down(polling: Harness) -> None:
    fake = polling.fake
    with database_down(polling.sanad):
        fake.push_update(Updates(chat_id=8002).message("مرحبا"))
        polls = len(fake.calls_to("getUpdates"))
        await wait_until(lambda: len(fake.calls_to("getUpdates")) >= polls + 2)
        assert not fake.calls_to("sendMessage", ok_only=False)
    prompt = polling.sanad.ui.text("ar", "menu.prompt")
    await wait_until(lambda: any(prompt in text for text in fake.sent_texts(8002)))
    sent = len(fake.sent_texts(8002))
    await asyncio.sleep(1.2)  # a few more polls: the update is not processed twice
    assert len(fake.sent_texts(8002)) == sent


async def test_an_update_ptb_cannot_build_does_not_stop_polling(polling: Harness) -> None:
    """PTB's get_updates builds a whole batch at once: one such update used to end the
    polling task. Each is now read as the webhook reads it."""
    fake = polling.fake
    updates = Updates(chat_id=8003)
    broken = updates.message("مرحبا")
    broken["message"]["entities"] = "not a list"
    fake.push_update(broken)
    last = fake.push_update(updates.message("مرحبا", chat_id=8004))
    await wait_until(lambda: fake.sent_texts(8003) and fake.sent_texts(8004))
    await wait_until(lambda: any(c.params.get("offset") == last["update_id"] + 1
                                 for c in fake.calls_to("getUpdates")))
