"""The web chat's JSON endpoints and pages, through the real app: what the runtime promises
every channel (order, de-duplication, 503 with the apology, settling, quick exit and the
pause, metrics) holds here too."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.webchat import AWAY, INBOX, PAGE, TURN
from bot.engine import apology
from bot.flood import FloodGuard
from bot.messages import Inbound, Turn
from bot.store.models import OutboxMessage, User
from bot.store.repository import PAUSED
from handoff.queue import list_cases
from tests.support import database_down
from tests.test_relay import caseworker_says
from tests.transcript import state_of
from tests.webchat.conftest import Chat, buttons, texts

TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


async def open_case(chat: Chat) -> int:
    await chat.say("hello")
    await chat.say(button="menu:human")
    await chat.say("I need advice about my contract")
    async with chat.sanad.store.session() as db:
        return (await list_cases(db))[-1].id


async def test_a_first_message_gets_a_conversation_and_the_menu(chat: Chat) -> None:
    answer = await chat.say("مرحبا")
    assert chat.token is not None and TOKEN.fullmatch(chat.token)
    assert "menu:learn" in buttons(answer)
    assert answer["exit"] is False
    state, language = await state_of(chat.sanad, chat.token, "webchat")
    assert (state, language) == ("menu.main", "ar")
    assert chat.counted("processed") == 1

    await chat.say(button="menu:check")
    assert (await state_of(chat.sanad, chat.token, "webchat"))[0] == "screening.consent"


async def test_the_same_message_sent_twice_is_answered_once(chat: Chat) -> None:
    first = await chat.say("hello", message_id="retry-0001")
    again = await chat.say("hello", message_id="retry-0001")
    assert first["messages"] and again["messages"] == []
    assert chat.counted("duplicate") == 1


async def test_the_database_down_answers_503_with_the_apology_and_nothing_is_lost(
    chat: Chat,
) -> None:
    with database_down(chat.sanad):
        status, answer = await chat.post({"id": "down-0001", "text": "help", "lang": "en"})
    assert status == 503
    assert answer["retry"] is True and TOKEN.fullmatch(answer["token"])
    chat.token = answer["token"]
    # honest words and the emergency numbers, built without the database
    assert texts(answer) == apology(chat.sanad.ui, chat.sanad.content, "en").text
    assert chat.counted("database_unavailable") == 1
    again = await chat.say("help", message_id="down-0001")  # the page sends it again
    assert again["messages"]


async def test_a_bug_in_a_turn_gets_the_apology(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(chat.sanad.engine, "handle_turn", broken)
    answer = await chat.say("hello")
    lang = chat.sanad.settings.default_language
    assert texts(answer) == apology(chat.sanad.ui, chat.sanad.content, lang).text
    assert chat.counted("failed") == 1


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2]", b'{"text": "no id"}', b'{"id": "short", "text": "x"}',
    b'{"id": "message-0001", "token": "not-a-token", "text": "x"}',
    b'{"id": "message-0001", "text": 5}',
    b'{"id": "message-0001", "button": ""}',
])
async def test_bad_requests_are_refused_with_400(chat: Chat, body: bytes) -> None:
    response = await chat.client.post(TURN, data=body,
                                      headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await chat.client.post(INBOX, data=body)).status == 400


async def test_a_text_over_the_limit_is_refused(chat: Chat) -> None:
    status, _ = await chat.post({"id": "long-0001", "text": "x" * 4001})
    assert status == 400


async def test_the_quick_exit_button_pauses_contact_and_holds_a_caseworker_reply(
    chat: Chat,
) -> None:
    case_id = await open_case(chat)
    answer = await chat.say(button="exit")
    assert answer["exit"] is True
    async with chat.sanad.store.session() as db:
        user = await db.scalar(select(User).where(
            User.key == chat.sanad.store.user_ref("webchat", chat.token or "").key))
        assert user is not None and user.contact_paused_at is not None

    await caseworker_says(chat.sanad, case_id, "Hello, I am Mona. Are you safe now?")
    assert (await chat.inbox())["messages"] == []  # whoever holds the phone sees nothing
    async with chat.sanad.store.session() as db:
        statuses = list(await db.scalars(select(OutboxMessage.status)
                                         .where(OutboxMessage.kind == "caseworker")))
    assert statuses == [PAUSED]


async def test_a_typed_exit_word_tells_the_page_to_clear_itself(chat: Chat) -> None:
    await chat.say("مرحبا")
    answer = await chat.say("خروج")
    assert answer["exit"] is True
    assert "menu:learn" not in buttons(answer)


async def test_a_caseworker_reply_reaches_the_page_once(chat: Chat) -> None:
    case_id = await open_case(chat)
    await caseworker_says(chat.sanad, case_id, "Hello, I am Mona. Are you safe now?")
    assert "Mona" in texts(await chat.inbox())
    assert (await chat.inbox())["messages"] == []


async def test_new_conversations_are_rate_limited_per_client_but_never_a_conversation(
    chat: Chat,
) -> None:
    now = [0.0]
    chat.channel._new = FloodGuard(rate=1.0, burst=2, max_wait=0.0, clock=lambda: now[0])
    await chat.say("hello")
    assert (await chat.post({"id": "other-0001", "text": "hello"}))[0] == 200
    assert (await chat.post({"id": "other-0002", "text": "hello"}))[0] == 429
    for _ in range(5):  # the first conversation goes on: danger is never held back here
        await chat.say("I am locked in a room and they took my passport")
    now[0] = 1.0
    assert (await chat.post({"id": "other-0003", "text": "hello"}))[0] == 200


async def test_the_page_is_self_contained_strict_neutral_and_right_to_left(chat: Chat) -> None:
    response = await chat.client.get(PAGE)
    page = await response.text()
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in csp and "unsafe" not in csp and "default-src 'none'" in csp
    assert response.headers["Cache-Control"] == "no-store"
    assert '<html lang="ar" dir="rtl">' in page
    title = re.search(r"<title>(.*)</title>", page)
    assert title is not None and title.group(1) == "محادثة"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external asset
    for revealing in ("سند", "Sanad", "traffick", "اتجار", "migration", "هجرة"):
        assert revealing not in page

    english = await (await chat.client.get(PAGE, params={"lang": "en"})).text()
    assert '<html lang="en" dir="ltr">' in english

    away = await chat.client.get(AWAY)
    assert away.headers["Clear-Site-Data"] == '"cache"'
    assert "<title>علامة تبويب جديدة</title>" in await away.text()


async def test_nothing_personal_is_logged(chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with database_down(chat.sanad):
        status, answer = await chat.post({"id": "down-0002", "text": "Samira is here"})
    assert status == 503
    chat.token = answer["token"]
    await chat.say("my name is Samira and my number is 01001234567")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert chat.token is not None and chat.token not in logged
    assert "Samira" not in logged and "01001234567" not in logged


async def test_one_conversation_runs_in_order_while_others_run_alongside(
    chat: Chat, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await chat.say("hello")
    other = Chat(chat.client, chat.channel, chat.sanad, chat.metrics)
    await other.say("hello")
    real = chat.sanad.engine.handle_turn
    running: dict[str, int] = {}
    most = {"same": 0, "all": 0}
    started = {"one": asyncio.Event(), "three": asyncio.Event()}

    async def slow(inbound: Inbound, **kwargs: Any) -> Turn:
        running[inbound.user.key] = running.get(inbound.user.key, 0) + 1
        most["same"] = max(most["same"], running[inbound.user.key])
        most["all"] = max(most["all"], sum(running.values()))
        try:
            if inbound.text in started:  # "one" and "three" meet: two users at once
                started[inbound.text].set()
                await asyncio.wait_for(started[{"one": "three", "three": "one"}[inbound.text]]
                                       .wait(), timeout=30)
            await asyncio.sleep(0)
            return await real(inbound, **kwargs)
        finally:
            running[inbound.user.key] -= 1

    monkeypatch.setattr(chat.sanad.engine, "handle_turn", slow)
    await asyncio.gather(chat.say("one"), chat.say("two"), other.say("three"))
    assert most == {"same": 1, "all": 2}
