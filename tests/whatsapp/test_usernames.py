"""Users with a WhatsApp username: business-scoped user ids (BSUIDs) through the real webhook.

Meta adds ``from_user_id`` / ``contacts[].user_id`` to every message and may drop the phone
number for a user with a username; such a user is answered through ``recipient``; a changed
number or BSUID (system messages) carries the conversation over.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from bot.channels.whatsapp_store import WhatsAppIdentity
from bot.store.models import User
from tests.whatsapp.conftest import Harness
from tests.whatsapp.fake_graph_api import Invalid, button_ids, validate, visible_text
from tests.whatsapp.payloads import BSUID, WA_ID

NEW_NUMBER = "201009998877"
NEW_BSUID = "EG.77700011122233344455"


async def users(h: Harness) -> int:
    async with h.sanad.store.session() as db:
        return int(await db.scalar(select(func.count()).select_from(User)) or 0)


async def test_a_bsuid_only_user_is_answered_through_recipient(wa_any_db: Harness) -> None:
    h = wa_any_db
    assert await h.say("مرحبا", bsuid_only=True) == 200
    [welcome, menu] = h.fake.messages(BSUID)
    assert "to" not in welcome and welcome["recipient"] == BSUID
    assert button_ids(menu)[0] == "menu:learn"
    assert h.fake.ok()[-1].response["contacts"][0] == {"input": BSUID, "user_id": BSUID}
    user = await h.user(BSUID)  # keyed by the BSUID
    assert user.key == h.user_key(BSUID)
    await h.tap("menu:learn", row=True, bsuid_only=True)
    assert len(h.fake.messages(BSUID)) > 2


async def test_a_bsuid_only_user_in_danger_gets_the_numbers(wa: Harness) -> None:
    assert await wa.say("أنا محبوس ومش قادر أخرج وبيضربوني", bsuid_only=True) == 200
    assert wa.ui("ar", "emergency.intro") in visible_text(wa.fake.messages(BSUID)[0])


async def test_phone_users_are_unchanged(wa: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert await wa.say("hello") == 200
    assert all(m["to"] == WA_ID and "recipient" not in m for m in wa.fake.messages())
    assert (await wa.user()).key == wa.user_key(WA_ID)
    async with wa.sanad.store.session() as db:
        assert await db.scalar(select(func.count()).select_from(WhatsAppIdentity)) == 0
    assert BSUID not in caplog.text and WA_ID not in caplog.text


async def test_a_number_that_disappears_keeps_the_conversation(
    wa_any_db: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    h = wa_any_db
    with caplog.at_level(logging.INFO):
        await h.say("hello", bsuid=BSUID)  # phone and BSUID: keyed by the phone, BSUID learnt
        await h.tap("menu:learn", row=True, wa_id=WA_ID)
        assert await users(h) == 1
        await h.say("menu", bsuid_only=True)  # Meta no longer shares the number
    assert await users(h) == 1
    assert BSUID not in caplog.text and WA_ID not in caplog.text
    assert h.fake.messages(BSUID)[-1]["recipient"] == BSUID
    assert (await h.user()).language == "en"  # the same person, the same language


async def test_a_number_that_appears_keeps_the_conversation(wa: Harness) -> None:
    await wa.say("bonjour", bsuid_only=True)
    await wa.say("menu", bsuid=BSUID)  # the number shows up later (Meta's contact book)
    assert await users(wa) == 1
    assert (await wa.user(BSUID)).language == "fr"
    assert wa.fake.messages(WA_ID)  # answered at the number, as Meta recommends


async def test_a_changed_number_carries_the_conversation_over(wa_any_db: Harness) -> None:
    h = wa_any_db
    await h.say("bonjour", bsuid=BSUID)
    change = h.meta.changed_number(NEW_NUMBER, bsuid=BSUID, new_bsuid=NEW_BSUID)
    assert await h.post(h.meta.notification(h.meta.value(change))) == 200
    assert not h.fake.messages(NEW_NUMBER)  # a system message is not answered
    assert await users(h) == 1
    await h.say("menu", NEW_NUMBER, bsuid=NEW_BSUID)
    assert await users(h) == 1 and (await h.user(NEW_NUMBER)).language == "fr"
    await h.say("menu", bsuid=NEW_BSUID, bsuid_only=True)
    assert await users(h) == 1


async def test_a_changed_bsuid_carries_a_username_user_over(wa: Harness) -> None:
    await wa.say("bonjour", bsuid_only=True)
    change = wa.meta.changed_user_id(BSUID, NEW_BSUID)
    assert await wa.post(wa.meta.notification(wa.meta.value(change))) == 200
    await wa.say("menu", bsuid=NEW_BSUID, bsuid_only=True)
    assert await users(wa) == 1 and (await wa.user(NEW_BSUID)).language == "fr"
    assert wa.fake.messages(NEW_BSUID)[-1]["recipient"] == NEW_BSUID


async def test_a_change_to_an_id_with_its_own_conversation_keeps_both(wa: Harness) -> None:
    await wa.say("bonjour")
    await wa.say("hello", NEW_NUMBER)  # the new number wrote before the system message
    change = wa.meta.changed_number(NEW_NUMBER)
    assert await wa.post(wa.meta.notification(wa.meta.value(change))) == 200
    assert await users(wa) == 2
    assert (await wa.user(NEW_NUMBER)).language == "en"


async def test_a_change_for_someone_unknown_does_nothing(wa: Harness) -> None:
    change = wa.meta.changed_number(NEW_NUMBER)
    assert await wa.post(wa.meta.notification(wa.meta.value(change))) == 200
    assert await users(wa) == 0 and wa.fake.calls == []


async def test_a_caseworker_reaches_a_username_user(wa: Harness) -> None:
    case_id = await wa.open_case(bsuid_only=True)
    await wa.caseworker_says(case_id, "أنا منى")
    assert await wa.deliver_outbox() == 1
    reply = wa.fake.messages(BSUID)[-1]
    assert reply["recipient"] == BSUID and "أنا منى" in visible_text(reply)
    wamid = wa.fake.ok(to=BSUID)[-1].wamid or ""
    report = wa.meta.status(wamid, "read", bsuid=BSUID)
    assert "recipient_id" not in report
    assert await wa.post(wa.meta.statuses(report)) == 200
    [row] = await wa.outbox()
    assert row.status == "read"


async def test_an_unknown_bsuid_recipient_failure_is_harmless(wa: Harness) -> None:
    report = wa.meta.status("wamid.unknown", "failed", bsuid=BSUID, error_code=131026)
    assert await wa.post(wa.meta.statuses(report)) == 200
    assert await users(wa) == 0


def test_the_fake_takes_a_bsuid_only_as_recipient() -> None:
    text = {"messaging_product": "whatsapp", "type": "text", "text": {"body": "hi"}}
    validate({**text, "recipient": BSUID})
    validate({**text, "to": WA_ID, "recipient": BSUID})  # ``to`` wins
    for wrong in ({"to": BSUID}, {"recipient": WA_ID}, {}):
        with pytest.raises(Invalid):
            validate({**text, **wrong})
