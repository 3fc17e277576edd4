"""The fake Bot API refuses what Telegram refuses (https://core.telegram.org/bots/api), with
Telegram's descriptions, so the channel tests cannot pass on requests Telegram would reject."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.telegram.conftest import Harness
from tests.telegram.fake_bot_api import FakeBotAPI, FakeClock
from tests.telegram.updates import Updates

HOURS = 3600
CHAT = 4242


@pytest.fixture
async def api(fake: FakeBotAPI) -> AsyncIterator[Any]:
    """Call the fake as any client would: a JSON POST, the envelope back."""
    async with aiohttp.ClientSession() as session:
        async def call(method: str, **params: Any) -> dict[str, Any]:
            async with session.post(f"{fake.base_url}{fake.token}/{method}",
                                    json=params) as response:
                body: dict[str, Any] = await response.json()
                assert body["ok"] is (response.status == 200)
                assert body.get("error_code", 200) == response.status
                return body
        yield call


# --- setWebhook -------------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "description"), [
    ({"url": "http://bot.example.org/hook"},
     "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"),
    ({"url": "https://bot.example.org:8080/hook"},
     "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"),
    ({"url": "https://bot.example.org:70000/hook"}, "Bad Request: bad webhook: invalid URL"),
    ({"url": "https://bot.example.org/hook", "secret_token": "has space"},
     "Bad Request: secret token contains unallowed characters"),
    ({"url": "https://bot.example.org/hook", "secret_token": "a+b/c="},
     "Bad Request: secret token contains unallowed characters"),
    ({"url": "https://bot.example.org/hook", "secret_token": "x" * 257},
     "Bad Request: secret token is too long"),
])
async def test_setwebhook_refuses_what_telegram_refuses(
    api: Any, fake: FakeBotAPI, params: dict[str, Any], description: str
) -> None:
    answer = await api("setWebhook", **params)
    assert answer["error_code"] == 400 and answer["description"] == description
    assert fake.webhook is None


@pytest.mark.parametrize("url", ["https://bot.example.org/hook", "https://bot.example.org:88/h",
                                 "https://bot.example.org:8443/h", "https://bot.example.org:80/h"])
async def test_setwebhook_accepts_https_on_the_four_ports(api: Any, fake: FakeBotAPI,
                                                          url: str) -> None:
    assert (await api("setWebhook", url=url, secret_token="A-z_09" * 40))["result"] is True
    assert (await api("getWebhookInfo"))["result"]["url"] == url
    assert (await api("setWebhook", url=""))["result"] is True  # removes it
    assert fake.webhook is None


# --- sendMessage --------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "description"), [
    ({"text": ""}, "Bad Request: message text is empty"),
    ({"text": " \n "}, "Bad Request: message text is empty"),
    ({"text": "x" * 4097}, "Bad Request: message is too long"),
    ({"text": "🤝" * 2049}, "Bad Request: message is too long"),  # 4098 UTF-16 units
    ({"text": "ok", "reply_markup": {"inline_keyboard": [[{"text": "t",
                                                           "callback_data": "x" * 65}]]}},
     "Bad Request: BUTTON_DATA_INVALID"),
    ({"text": "ok", "reply_markup": {"inline_keyboard": [[{"text": "t",
                                                           "callback_data": "س" * 33}]]}},
     "Bad Request: BUTTON_DATA_INVALID"),  # 66 bytes
    ({"text": "ok", "reply_markup": {"inline_keyboard": [[{"text": "t", "callback_data": ""}]]}},
     "Bad Request: BUTTON_DATA_INVALID"),
])
async def test_sendmessage_refuses_what_telegram_refuses(
    api: Any, params: dict[str, Any], description: str
) -> None:
    answer = await api("sendMessage", chat_id=CHAT, **params)
    assert answer["error_code"] == 400 and answer["description"] == description


async def test_sendmessage_accepts_the_limits(api: Any) -> None:
    keyboard = {"inline_keyboard": [[{"text": "t", "callback_data": "x" * 64}]]}
    for text in ("x" * 4096, "🤝" * 2048):
        assert (await api("sendMessage", chat_id=CHAT, text=text,
                          reply_markup=keyboard))["ok"]


# --- deleting: 48 hours, on the fake's clock ------------------------------------------------
async def test_deletemessage_fails_after_48_hours(api: Any, fake: FakeBotAPI) -> None:
    clock = fake.clock = FakeClock()
    old = (await api("sendMessage", chat_id=CHAT, text="old"))["result"]["message_id"]
    clock.advance(47 * HOURS)
    recent = (await api("sendMessage", chat_id=CHAT, text="recent"))["result"]["message_id"]
    assert (await api("deleteMessage", chat_id=CHAT, message_id=old))["result"] is True
    clock.advance(2 * HOURS)
    new = (await api("sendMessage", chat_id=CHAT, text="new"))["result"]["message_id"]
    clock.advance(48 * HOURS)
    refused = await api("deleteMessage", chat_id=CHAT, message_id=recent)
    assert refused["description"] == "Bad Request: message can't be deleted for everyone"
    gone = await api("deleteMessage", chat_id=CHAT, message_id=old)
    assert gone["description"] == "Bad Request: message to delete not found"
    assert fake.visible(CHAT) == {recent, new}


async def test_deletemessages_skips_what_it_cannot_delete(api: Any, fake: FakeBotAPI) -> None:
    clock = fake.clock = FakeClock()
    old = (await api("sendMessage", chat_id=CHAT, text="old"))["result"]["message_id"]
    clock.advance(49 * HOURS)
    fresh = (await api("sendMessage", chat_id=CHAT, text="fresh"))["result"]["message_id"]
    fake.note_message(CHAT, 7, int(clock()))  # the user's own message
    answer = await api("deleteMessages", chat_id=CHAT, message_ids=[old, fresh, 7, 99999])
    assert answer["result"] is True  # "messages that can't be found are skipped"
    assert fake.visible(CHAT) == {old}
    for ids in ([], list(range(101))):
        refused = await api("deleteMessages", chat_id=CHAT, message_ids=ids)
        assert refused["error_code"] == 400


async def test_quick_exit_after_two_days_deletes_what_telegram_still_allows(
    tg: Harness
) -> None:
    """The store remembers ids by its own clock; Telegram decides by the message's date. The
    exit must still hide what can be hidden and leave the one neutral line."""
    clock = tg.fake.clock = FakeClock()
    updates = Updates(chat_id=CHAT, clock=clock)
    first = updates.message("مرحبا")
    assert await tg.post(first) == 200
    old = tg.fake.visible(CHAT)
    assert first["message"]["message_id"] in old and len(old) >= 2
    clock.advance(49 * HOURS)
    assert await tg.post(updates.message("مرحبا")) == 200
    recent = tg.fake.visible(CHAT) - old
    assert await tg.post(updates.message("خروج")) == 200
    deletions = tg.fake.calls_to("deleteMessages", ok_only=False)
    assert deletions and all(c.status == 200 for c in deletions)
    asked = {i for c in deletions for i in c.params["message_ids"]}
    assert old | recent <= asked  # the bot asked for all of them...
    cover = tg.fake.sent_ids(CHAT)[-1]
    assert tg.fake.visible(CHAT) == old | {cover}  # ...Telegram kept what is over 48 hours
    assert tg.texts(CHAT)[-1] == tg.sanad.ui.text("ar", "exit.cover")
