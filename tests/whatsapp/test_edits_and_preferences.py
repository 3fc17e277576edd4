"""A deleted message, an edited one, and WhatsApp's own "stop / resume marketing messages"."""

from __future__ import annotations

from sqlalchemy import select

from bot.channels.whatsapp_store import WhatsAppMarketingStop
from bot.store.models import EventRecord, Subscription
from tests.whatsapp.conftest import Harness
from tests.whatsapp.fake_graph_api import visible_text
from tests.whatsapp.payloads import BSUID, WA_ID


async def topics(h: Harness) -> list[str] | None:
    async with h.sanad.store.session() as db:
        return await db.scalar(select(Subscription.topics))


async def events(h: Harness) -> list[str]:
    async with h.sanad.store.session() as db:
        return list(await db.scalars(select(EventRecord.name).order_by(EventRecord.id)))


async def test_a_deleted_message_puts_nothing_on_the_screen(wa: Harness) -> None:
    sent = wa.meta.text("أنا في خطر")
    await wa.post(wa.meta.messages(sent))
    before = len(wa.fake.calls)
    assert await wa.post(wa.meta.messages(wa.meta.revoke(sent["id"]))) == 200
    quiet_edit = wa.meta.base("unsupported", unsupported={"type": "edit"}, errors=[
        {"code": 131051, "title": "Message type unknown"}])
    assert await wa.post(wa.meta.messages(quiet_edit)) == 200
    assert await wa.post(wa.meta.messages(wa.meta.revoke(sent["id"], bsuid_only=True))) == 200
    assert len(wa.fake.calls) == before  # not an answer, not even a read receipt


async def test_an_edited_message_is_answered_as_its_new_words(wa: Harness) -> None:
    first = wa.meta.text("hello")
    await wa.post(wa.meta.messages(first))
    await wa.post(wa.meta.messages(wa.meta.edit(first["id"], "أنا محبوس وبيضربوني")))
    assert wa.ui("ar", "emergency.intro") in visible_text(wa.last())
    assert "EmergencyTriggered" in await events(wa)
    edit = wa.meta.edit(first["id"], "bonjour")
    assert await wa.post(wa.meta.messages(edit)) == 200
    count = len(wa.fake.calls)
    assert await wa.post(wa.meta.messages(edit)) == 200  # Meta's retry: a duplicate
    assert len(wa.fake.calls) == count


async def test_stop_then_resume_marketing(wa_any_db: Harness) -> None:
    h = wa_any_db
    await h.subscribe()
    subscribed = await topics(h)
    assert subscribed
    sent, wrote = len(h.fake.calls), (await h.user()).last_inbound_at
    assert await h.post(h.meta.preference("stop")) == 200
    assert await topics(h) is None and (await events(h))[-1] == "Unsubscribed"
    assert await h.post(h.meta.preference("stop")) == 200  # again: nothing more to do
    assert await h.post(h.meta.preference("resume")) == 200
    assert await topics(h) == subscribed and (await events(h))[-1] == "Subscribed"
    async with h.sanad.store.session() as db:
        assert await db.scalar(select(WhatsAppMarketingStop)) is None
    assert len(h.fake.calls) == sent  # nothing is sent back for a preference
    assert (await h.user()).last_inbound_at == wrote  # nor is it a message: no new window


async def test_resume_is_never_a_new_opt_in(wa: Harness) -> None:
    await wa.say("hello")
    assert await wa.post(wa.meta.preference("resume")) == 200
    assert await wa.post(wa.meta.preference("stop")) == 200
    assert await wa.post(wa.meta.preference("resume")) == 200
    assert await topics(wa) is None
    signup = wa.meta.preference("resume")
    signup["entry"][0]["changes"][0]["value"]["user_preferences"][0]["value"] = "signup"
    assert await wa.post(signup) == 200 and await topics(wa) is None


async def test_a_username_user_stops_marketing(wa: Harness) -> None:
    await wa.subscribe(bsuid_only=True)
    assert await topics(wa)
    assert await wa.post(wa.meta.preference("stop", bsuid=BSUID)) == 200
    assert await topics(wa) is None
    assert WA_ID not in {m.get("to") for m in wa.fake.messages()}
