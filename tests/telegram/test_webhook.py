"""End to end: real Update JSON posted to the webhook of the real aiohttp app; the real PTB
client answers through the fake Bot API, whose recorded calls are what we assert on."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from bot.config import ConfigError
from bot.messages import Button, Inbound, Outbound, Turn
from bot.store.models import User
from tests.telegram.conftest import (
    SECRET,
    Harness,
    bot_core,
    database_down,
    running,
    telegram_settings,
)
from tests.telegram.fake_bot_api import FakeBotAPI, utf16_len
from tests.telegram.updates import Updates, group_chat

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def buttons(params: dict[str, Any]) -> list[str]:
    markup = params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def unreachable(h: Harness, chat_id: int) -> bool:
    key = h.sanad.store.user_ref("telegram", chat_id).key
    async with h.sanad.store.session() as db:
        return bool(await db.scalar(select(User.unreachable).where(User.key == key)))


# --- start-up -----------------------------------------------------------------------------
async def test_start_introduces_the_bot_without_a_webhook(tg: Harness) -> None:
    fake = tg.fake
    assert fake.calls_to("getMe")
    languages = {c.params.get("language_code") for c in fake.calls_to("setMyCommands")}
    assert languages == {"ar", "en", "fr", None}
    assert [c["command"] for c in fake.commands["fr"]] == [
        "start", "help", "menu", "language", "exit", "delete"]
    assert fake.commands["ar"][4]["description"] == "إخفاء المحادثة فورًا"
    assert not fake.calls_to("setWebhook")


async def test_webhook_registered_when_url_is_set(sqlite_url: str, embedded_nlu: Any,
                                                  fake: FakeBotAPI) -> None:
    url = "https://bot.example.org/telegram/webhook"
    settings = telegram_settings(sqlite_url, fake, telegram_webhook_url=url)
    async with bot_core(settings, embedded_nlu) as sanad, running(sanad, fake):
        (call,) = fake.calls_to("setWebhook")
    assert call.params["url"] == url and call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query", "my_chat_member"]


async def test_production_refuses_a_webhook_without_secret(sqlite_url: str, embedded_nlu: Any,
                                                           fake: FakeBotAPI) -> None:
    settings = telegram_settings(sqlite_url, fake, telegram_webhook_secret=None,
                                 environment="production")
    async with bot_core(settings, embedded_nlu) as sanad:
        with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
            async with running(sanad, fake):
                pass
    assert not fake.calls


async def test_rejected_token_is_not_quoted(sqlite_url: str, embedded_nlu: Any,
                                            fake: FakeBotAPI) -> None:
    settings = telegram_settings(sqlite_url, fake, telegram_bot_token="999:wrong-token")
    async with bot_core(settings, embedded_nlu) as sanad:
        with pytest.raises(ConfigError) as caught:
            async with running(sanad, fake):
                pass
    assert "wrong-token" not in str(caught.value)


# --- conversations ------------------------------------------------------------------------
async def test_arabic_text_gets_an_arabic_answer_with_buttons(tg: Harness) -> None:
    assert await tg.post(tg.updates.message("مرحبا")) == 200
    sent = tg.sent(tg.updates.chat_id)
    assert sent and any(tg.sanad.ui.text("ar", "menu.prompt") in p["text"] for p in sent)
    assert "menu:language" in buttons(sent[-1])
    assert all(p["link_preview_options"] == {"is_disabled": True} for p in sent)


async def test_english_text_gets_an_english_answer(tg: Harness) -> None:
    updates = Updates(chat_id=6002, language_code="en")
    assert await tg.post(updates.message("hello")) == 200
    texts = tg.texts(6002)
    assert any(tg.sanad.ui.text("en", "menu.prompt") in t for t in texts)


async def test_button_tap_answers_the_callback_and_continues(tg: Harness) -> None:
    await tg.post(tg.updates.message("مرحبا"))
    last = tg.sent()[-1]
    assert "menu:language" in buttons(last)
    tap = tg.updates.callback("menu:language", message_id=1001)
    assert await tg.post(tap) == 200
    (answer,) = tg.fake.calls_to("answerCallbackQuery")
    assert answer.params["callback_query_id"] == tap["callback_query"]["id"]
    assert answer.via_webhook_answer  # in the 200 answer: no request of its own
    assert tg.sanad.ui.text("ar", "language.prompt") in tg.texts()[-1]
    assert {"lang:ar", "lang:en", "lang:fr"} <= set(buttons(tg.sent()[-1]))


async def test_start_with_payload(tg: Harness) -> None:
    assert await tg.post(tg.updates.message("/start campaign_7")) == 200
    assert tg.texts()


@pytest.mark.parametrize("kind", ["sticker", "voice", "location"])
async def test_media_gets_a_kind_reply(tg: Harness, kind: str) -> None:
    assert await tg.post(getattr(tg.updates, kind)()) == 200
    expected = tg.sanad.ui.text("ar", f"media.{kind}")
    assert any(expected in t for t in tg.texts())


async def test_bot_side_long_text_is_split(tg: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    long_text = "\n".join(f"سطر {i}: " + " ".join(["معلومة"] * 40) for i in range(18))
    assert len(long_text) > 5000

    async def long_turn(inbound: Inbound, **kwargs: Any) -> Turn:
        return Turn(outbound=(Outbound(long_text, (Button("menu:learn", "📚"),)),))

    monkeypatch.setattr(tg.sanad.engine, "handle_turn", long_turn)
    assert await tg.post(tg.updates.message("اكتب كتير")) == 200
    sent = tg.sent()
    assert len(sent) == 2
    assert all(utf16_len(p["text"]) <= 4096 for p in sent)
    assert "\n".join(p["text"] for p in sent) == long_text
    assert buttons(sent[0]) == [] and buttons(sent[1]) == ["menu:learn"]


# --- at-least-once delivery -----------------------------------------------------------------
async def test_duplicate_update_is_processed_once(tg_any_db: Harness) -> None:
    update = tg_any_db.updates.message("مرحبا")
    assert await tg_any_db.post(update) == 200
    first = tg_any_db.texts()
    assert first
    assert await tg_any_db.post(update) == 200
    assert tg_any_db.texts() == first


async def test_database_down_answers_503_then_processes_the_retry_once(tg: Harness) -> None:
    update = tg.updates.message("مرحبا")
    with database_down(tg.sanad):
        assert await tg.post(update) == 503
    assert not tg.fake.calls_to("sendMessage", ok_only=False)
    assert await tg.post(update) == 200  # Telegram's retry
    once = tg.texts()
    assert once
    assert await tg.post(update) == 200
    assert tg.texts() == once


async def test_callback_is_answered_even_when_the_database_is_down(tg: Harness) -> None:
    with database_down(tg.sanad):
        assert await tg.post(tg.updates.callback("menu:learn")) == 503
    (answer,) = tg.fake.calls_to("answerCallbackQuery")
    assert not answer.via_webhook_answer  # Telegram ignores the body of a 503: a request
    assert not tg.fake.calls_to("sendMessage")


async def test_turns_of_a_chat_stay_in_order_while_chats_run_concurrently(
    tg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    running_now = {"now": 0, "max": 0}

    async def two_part_turn(inbound: Inbound, **kwargs: Any) -> Turn:
        running_now["now"] += 1
        running_now["max"] = max(running_now["max"], running_now["now"])
        await asyncio.sleep(0.01)
        running_now["now"] -= 1
        return Turn(outbound=(Outbound(f"{inbound.text}/1"), Outbound(f"{inbound.text}/2")))

    monkeypatch.setattr(tg.sanad.engine, "handle_turn", two_part_turn)
    tg.fake.latency = 0.01
    chats = {chat: Updates(chat_id=chat) for chat in (7001, 7002, 7003)}
    posts = [tg.post(chats[chat].message(f"m{i}")) for i in range(4) for chat in chats]
    assert set(await asyncio.gather(*posts)) == {200}
    assert running_now["max"] >= 2  # chats proceeded side by side
    for chat in chats:
        texts = tg.texts(chat)
        assert len(texts) == 8
        pairs = [texts[i:i + 2] for i in range(0, 8, 2)]
        assert all(a.split("/")[0] == b.split("/")[0] for a, b in pairs)  # never interleaved


# --- quick exit -------------------------------------------------------------------------------
async def test_quick_exit_deletes_the_conversation_and_leaves_one_neutral_line(
    tg: Harness
) -> None:
    chat = tg.updates.chat_id
    hello = tg.updates.message("مرحبا")
    await tg.post(hello)
    await tg.post(tg.updates.callback("menu:language"))
    bot_ids = set(tg.fake.sent_ids(chat))
    assert len(bot_ids) >= 3
    exit_message = tg.updates.message("خروج")
    calls_before = len(tg.fake.calls)
    assert await tg.post(exit_message) == 200
    after = tg.fake.calls[calls_before:]
    deletions = [c for c in after if c.method == "deleteMessages"]
    deleted = {i for c in deletions for i in c.params["message_ids"]}
    user_ids = {hello["message"]["message_id"], exit_message["message"]["message_id"]}
    assert deleted == bot_ids | user_ids
    assert all(c.params["chat_id"] == chat for c in deletions)
    sends = [c for c in after if c.method == "sendMessage"]
    assert len(sends) == 1
    assert sends[0].params["text"] == tg.sanad.ui.text("ar", "exit.cover")
    assert "reply_markup" not in sends[0].params
    assert after.index(deletions[-1]) < after.index(sends[0])

    # The cover line is remembered: the next exit takes it away too.
    cover_id = tg.fake.sent_ids(chat)[-1]
    second = tg.updates.message("/exit")
    calls_before = len(tg.fake.calls)
    assert await tg.post(second) == 200
    (deletion,) = [c for c in tg.fake.calls[calls_before:] if c.method == "deleteMessages"]
    assert set(deletion.params["message_ids"]) == {cover_id, second["message"]["message_id"]}


async def test_quick_exit_deletes_in_batches_of_100(tg: Harness) -> None:
    await tg.post(tg.updates.message("مرحبا"))
    user = tg.sanad.store.user_ref("telegram", tg.updates.chat_id)
    await tg.sanad.store.remember_messages(user, [str(i) for i in range(5000, 5230)])
    await tg.post(tg.updates.message("/exit"))
    sizes = [len(c.params["message_ids"]) for c in tg.fake.calls_to("deleteMessages")]
    assert sizes[:2] == [100, 100] and sum(sizes) > 230 and max(sizes) <= 100


# --- failures at Telegram ----------------------------------------------------------------------
async def test_flood_wait_from_telegram_is_honoured(tg: Harness) -> None:
    tg.fake.fail_next(1, status=429, retry_after=1, methods=("sendMessage",))
    assert await tg.post(tg.updates.message("مرحبا")) == 200
    attempts = tg.fake.calls_to("sendMessage", ok_only=False)
    assert attempts[0].status == 429 and attempts[1].status == 200
    assert attempts[1].at - attempts[0].at >= 0.95
    assert tg.texts()


async def test_server_errors_are_retried(tg: Harness) -> None:
    tg.fake.fail_next(2, status=502, methods=("sendMessage",))
    assert await tg.post(tg.updates.message("مرحبا")) == 200
    assert [c.status for c in tg.fake.calls_to("sendMessage", ok_only=False)][:3] == [
        502, 502, 200]


async def test_blocked_user_is_marked_unreachable(tg: Harness) -> None:
    tg.fake.fail_next(1, status=403, methods=("sendMessage",))
    assert await tg.post(tg.updates.message("مرحبا")) == 200
    assert await unreachable(tg, tg.updates.chat_id)
    assert len(tg.fake.calls_to("sendMessage", ok_only=False)) == 1  # no more tries
    assert await tg.post(tg.updates.message("مرحبا")) == 200  # writing again: reachable
    assert not await unreachable(tg, tg.updates.chat_id)


async def test_blocking_the_bot_marks_unreachable(tg: Harness) -> None:
    await tg.post(tg.updates.message("مرحبا"))
    assert await tg.post(tg.updates.my_chat_member("kicked")) == 200
    assert await unreachable(tg, tg.updates.chat_id)


async def test_groups_are_left_and_never_answered(tg: Harness) -> None:
    group = group_chat(-1001)
    assert await tg.post(tg.updates.my_chat_member("member", chat=group)) == 200
    assert tg.fake.calls_to("leaveChat")[0].params["chat_id"] == -1001
    assert await tg.post(tg.updates.message("hello", chat=group)) == 200
    assert not tg.fake.calls_to("sendMessage")


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", [None, "wrong", "test_secret-", "تجربة"])
async def test_missing_or_wrong_secret_is_401(tg: Harness, secret: str | None) -> None:
    update = tg.updates.message("مرحبا")
    assert await tg.post(update, secret=secret) == 401
    assert not tg.fake.calls_to("sendMessage")
    assert await tg.post(update) == 200  # nothing was consumed by the refused call
    assert tg.texts()


@pytest.mark.parametrize("body", [
    b"{not json", b"[1, 2]", b'"text"', b'{"message": {}}', b'{"update_id": "1"}', b"",
])
async def test_malformed_body_is_400(tg: Harness, body: bytes) -> None:
    """Not an update at all. One with an integer update_id is acknowledged, whatever the rest
    (test_unreadable_updates.py)."""
    assert await tg.post(body) == 400
    assert not tg.fake.calls_to("sendMessage")


async def test_unknown_update_type_is_200_and_ignored(tg: Harness) -> None:
    assert await tg.post({"update_id": 1, "message_reaction_count": {"x": 1}}) == 200
    edited = tg.updates.message("hello")
    edited["edited_message"] = edited.pop("message")
    assert await tg.post(edited) == 200
    assert not tg.fake.calls_to("sendMessage")


async def test_body_over_1_mb_is_413(tg: Harness) -> None:
    body = b'{"update_id": 1, "padding": "' + b"a" * (1024 * 1024) + b'"}'
    assert await tg.post(body) == 413
    assert not tg.fake.calls_to("sendMessage")


# --- privacy and robustness ---------------------------------------------------------------------
async def test_an_engine_failure_apologises_without_logging_data(
    tg: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(inbound: Inbound, **kwargs: Any) -> Turn:
        raise RuntimeError(f"failed on {inbound.text}")

    monkeypatch.setattr(tg.sanad.engine, "handle_turn", broken)
    caplog.set_level(logging.DEBUG, logger="bot")
    assert await tg.post(tg.updates.message("سر خاص جدا")) == 200  # not retried forever
    assert tg.sanad.ui.text("ar", "errors.unavailable") in tg.texts()[0]
    assert "سر خاص" not in caplog.text and "telegram turn failed: RuntimeError" in caplog.text


async def test_logs_carry_no_text_chat_id_or_token(
    tg: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    for noisy in ("httpx", "httpcore", "telegram", "aiohttp.access", "asyncio"):  # as the CLI
        logger = logging.getLogger(noisy)
        monkeypatch.setattr(logger, "level", logger.level)  # restored after the test
        logger.setLevel(logging.WARNING)
    updates = Updates(chat_id=987654321, language_code="en")
    tg.fake.fail_next(1, status=502, methods=("sendMessage",))
    await tg.post(updates.message("my secret plan to travel"))
    await tg.post(updates.callback("menu:language"))
    await tg.post(updates.message("exit"))
    assert tg.texts(987654321)
    logged = caplog.text
    assert "retrying" in logged and "turn channel=telegram" in logged  # logs were captured
    assert "987654321" not in logged and "secret plan" not in logged
    assert "123:abc" not in logged and "Mona" not in logged


async def test_secret_with_invalid_utf8_is_401_not_500(tg: Harness) -> None:
    server = tg.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    body = orjson.dumps(tg.updates.message("مرحبا"))
    writer.write(b"POST /telegram/webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"X-Telegram-Bot-Api-Secret-Token: \xff\xfe\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"401"
