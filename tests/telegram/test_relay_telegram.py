"""A caseworker's reply, written in the back office, arrives in the user's Telegram chat."""

from __future__ import annotations

import asyncio
import json

from handoff import relay
from handoff.queue import list_cases
from tests.telegram.conftest import Harness
from tests.telegram.updates import Updates


async def test_caseworker_reply_reaches_the_telegram_chat(tg: Harness) -> None:
    updates = Updates(chat_id=7301)
    assert await tg.post(updates.message("مرحبا")) == 200
    assert await tg.post(updates.callback("menu:human")) == 200
    assert await tg.post(updates.message("محتاج أتكلم مع حد عن عقد الشغل")) == 200
    async with tg.sanad.store.session() as db:
        [case] = await list_cases(db)
        await relay.reply(db, cipher=tg.sanad.store.cipher, ui=tg.sanad.ui, case_id=case.id,
                          author="mona", text="أهلاً، أنا منى. إنت في أمان دلوقتي؟")
    for _ in range(50):  # the channel's outbox sender polls every second
        if any("أنا منى" in t for t in tg.texts(7301)):
            break
        await asyncio.sleep(0.1)
    replies = [t for t in tg.texts(7301) if "أنا منى" in t]
    assert len(replies) == 1, tg.texts(7301)
    await asyncio.sleep(1.2)
    assert len([t for t in tg.texts(7301) if "أنا منى" in t]) == 1, "delivered exactly once"


async def test_a_reply_that_could_not_be_sent_is_delivered_when_telegram_recovers(
    tg: Harness,
) -> None:
    updates = Updates(chat_id=7302)
    tg.fake.fail_next(50, status=502, methods=("sendMessage",))  # outlasts the send retries
    assert await tg.post(updates.message("hello")) == 200
    assert not tg.texts(7302), "nothing got through while Telegram failed"
    async with tg.sanad.store.session() as db:
        from sqlalchemy import update

        from bot.store.models import OutboxMessage

        # skip the short back-off wait of the retry
        await db.execute(update(OutboxMessage).values(next_attempt_at=OutboxMessage.created_at))
    tg.fake._faults.clear()  # Telegram is back
    for _ in range(50):
        if len(tg.texts(7302)) >= 2:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.2)  # one more round of the sender: nothing is sent twice
    texts = tg.texts(7302)
    assert len(texts) == 2 and "Sanad" in texts[0] and "menu" in texts[1], texts


async def test_delete_my_data_also_clears_the_chat(tg: Harness) -> None:
    updates = Updates(chat_id=7303, language_code="en")
    assert await tg.post(updates.message("hello")) == 200
    assert await tg.post(updates.message("/delete")) == 200
    shown = set(tg.fake.sent_ids(7303))
    assert await tg.post(updates.callback("pv:delete:yes")) == 200
    deleted = {i for call in tg.fake.calls_to("deleteMessages")
               for i in call.params["message_ids"]}
    assert shown <= deleted, (shown, deleted)
    assert "deleted" in tg.texts(7303)[-1]


def callback_ids(params: dict[str, object]) -> list[str]:
    markup = params.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    assert isinstance(markup, dict)
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def test_after_a_quick_exit_a_reply_waits_for_the_person_to_come_back(tg: Harness) -> None:
    """The chat was just wiped: a caseworker's reply must not land on it (nor on the lock
    screen) until the person writes again and says it is OK to continue here."""
    updates = Updates(chat_id=7304)
    assert await tg.post(updates.message("مرحبا")) == 200
    assert await tg.post(updates.callback("menu:human")) == 200
    assert await tg.post(updates.message("محتاج أتكلم مع حد")) == 200
    assert await tg.post(updates.message("خروج")) == 200
    assert tg.fake.calls_to("deleteMessages"), "the chat was wiped"
    wiped = len(tg.texts(7304))
    async with tg.sanad.store.session() as db:
        [case] = await list_cases(db)
        assert case.contact_paused, "the console shows it"
        await relay.reply(db, cipher=tg.sanad.store.cipher, ui=tg.sanad.ui, case_id=case.id,
                          author="mona", text="أهلاً، أنا منى")
    await asyncio.sleep(1.5)  # more than a round of the channel's outbox sender
    assert len(tg.texts(7304)) == wiped, "nothing reached the wiped chat"

    assert await tg.post(updates.message("هاي")) == 200
    check = tg.sent(7304)[-1]
    assert check["text"] == tg.sanad.ui.text("ar", "contact.check")
    await asyncio.sleep(1.2)
    assert not any("أنا منى" in t for t in tg.texts(7304))
    assert await tg.post(updates.callback(callback_ids(check)[0])) == 200
    for _ in range(50):
        if any("أنا منى" in t for t in tg.texts(7304)):
            break
        await asyncio.sleep(0.1)
    [reply] = [t for t in tg.texts(7304) if "أنا منى" in t]
    assert not reply.startswith("👤"), "the lock screen shows nothing about the service"
