"""Conversations end to end: Meta-shaped notifications posted to the real app, answers read from
the fake Graph API. The flows are the same as on every channel; only the rendering differs."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.store.models import Case
from tests.whatsapp.conftest import Harness
from tests.whatsapp.fake_graph_api import button_ids, visible_text
from tests.whatsapp.payloads import WA_ID

OTHER = "201112223334"


def kind(payload: dict) -> str:
    return payload["interactive"]["type"] if payload["type"] == "interactive" else payload["type"]


async def test_arabic_message_gets_an_arabic_list_and_a_read_receipt(wa_any_db: Harness) -> None:
    h = wa_any_db
    message = h.meta.text("السلام عليكم")
    assert await h.post(h.meta.messages(message)) == 200
    assert h.fake.reads() == [message["id"]]
    menu = h.last()
    assert kind(menu) == "list" and h.ui("ar", "menu.prompt") in visible_text(menu)
    assert menu["interactive"]["action"]["button"] == "الاختيارات"
    assert button_ids(menu) == ["menu:learn", "menu:check", "menu:help", "menu:human",
                                "menu:privacy", "menu:language"]
    assert all(p["to"] == WA_ID and p["messaging_product"] == "whatsapp"
               for p in h.fake.messages())


async def test_list_reply_and_button_reply_lead_on(wa: Harness) -> None:
    await wa.say("مرحبا")
    assert await wa.tap("menu:language", row=True) == 200
    languages = wa.last()
    assert kind(languages) == "button" and button_ids(languages) == ["lang:ar", "lang:en",
                                                                     "lang:fr"]
    assert await wa.tap("lang:en") == 200
    assert kind(wa.last()) == "list" and wa.ui("en", "menu.prompt") in visible_text(wa.last())


async def test_template_quick_reply_payload_is_a_button(wa: Harness) -> None:
    await wa.say("hello")
    assert await wa.post(wa.meta.messages(wa.meta.template_button("menu:language"))) == 200
    assert button_ids(wa.last()) == ["lang:ar", "lang:en", "lang:fr"]


async def test_twelve_topics_are_numbered_and_a_typed_number_opens_one(wa: Harness) -> None:
    await wa.say("hello")
    await wa.tap("menu:learn", row=True)
    topics = wa.last()
    body = visible_text(topics)
    assert kind(topics) == "text" and "\n1. " in body and "\n12. " in body
    assert body.endswith("Reply with the number of your choice.")
    first = wa.sanad.content.modules("en")[0]
    assert f"\n1. {first.button}\n" in body
    await wa.say("1")
    module = wa.last()
    assert first.title in visible_text(module) and kind(module) == "button"
    assert button_ids(module) == [f"aw:next:{first.id}:1", "aw:topics"]


async def test_duplicate_wamid_is_processed_once(wa_any_db: Harness) -> None:
    h = wa_any_db
    payload = h.meta.messages(h.meta.text("مرحبا"))
    assert await h.post(payload) == 200
    sent = len(h.fake.calls)
    assert await h.post(payload) == 200
    assert len(h.fake.calls) == sent


async def test_every_message_of_a_payload_is_answered_in_order(wa: Harness) -> None:
    meta = wa.meta
    payload = meta.messages(
        meta.text("hello"), meta.list_reply("menu:language"), meta.button_reply("lang:fr"),
        meta.text("مرحبا", wa_id=OTHER),
    )
    payload["entry"].append(meta.messages(meta.button_reply("menu:check", wa_id=OTHER))["entry"][0])
    assert await wa.post(payload) == 200
    mine = wa.fake.messages(WA_ID)
    assert button_ids(mine[-2]) == ["lang:ar", "lang:en", "lang:fr"]
    assert wa.ui("fr", "menu.prompt") in visible_text(mine[-1])  # the three in order
    other = wa.fake.messages(OTHER)
    assert wa.ui("ar", "menu.prompt") in " ".join(map(visible_text, other))
    assert button_ids(other[-1]) == ["sc:consent:yes", "sc:consent:no"]
    assert len(wa.fake.reads()) == 5


@pytest.mark.parametrize(("message", "key"), [
    ("image", "photo"), ("voice", "voice"), ("audio", "audio"), ("video", "video"),
    ("document", "document"), ("sticker", "sticker"), ("location", "location"),
    ("contacts", "contact"), ("unsupported", "other"),
])
async def test_media_gets_a_kind_reply(wa: Harness, message: str, key: str) -> None:
    meta = wa.meta
    builders = {
        "voice": lambda: meta.media("audio", voice=True), "location": meta.location,
        "contacts": meta.contacts, "unsupported": meta.unsupported,
    }
    build = builders.get(message, lambda: meta.media(message))
    assert await wa.post(meta.messages(build())) == 200
    assert any(wa.ui("ar", f"media.{key}") in t for t in wa.fake.texts(WA_ID))


async def test_a_reaction_is_not_answered(wa: Harness) -> None:
    assert await wa.post(wa.meta.messages(wa.meta.reaction("wamid.earlier"))) == 200
    assert wa.fake.calls == []


async def test_the_whole_journey_over_whatsapp(wa: Harness) -> None:
    """Menu → awareness → screening → a caseworker → quick exit, with no WhatsApp-specific
    flow code: only the channel's rendering (lists, buttons, a numbered list) differs."""
    await wa.say("مرحبا")
    await wa.tap("menu:learn", row=True)
    assert "\n12. " in visible_text(wa.last())
    await wa.say("٢")  # Arabic-Indic digits pick the second topic
    second = wa.sanad.content.modules("ar")[1]
    assert second.title in visible_text(wa.last())
    await wa.tap(f"aw:next:{second.id}:1")
    assert f"(2/{len(second.messages)})" in visible_text(wa.last())

    await wa.tap("menu:check", row=True)  # an older list stays tappable
    assert button_ids(wa.last()) == ["sc:consent:yes", "sc:consent:no"]
    await wa.tap("sc:consent:yes")
    assert kind(wa.last()) == "list" and "sc:age:18_24" in button_ids(wa.last())
    await wa.tap("sc:age:18_24", row=True)
    for _ in range(20):
        if button_ids(wa.last()) != ["sc:ans:yes", "sc:ans:no", "sc:ans:skip"]:
            break
        await wa.tap("sc:ans:yes")
    assert "sc:handoff:yes" in button_ids(wa.last())
    await wa.tap("sc:handoff:yes")
    assert button_ids(wa.last()) == ["ho:end"]
    async with wa.sanad.store.session() as db:
        case = await db.scalar(select(Case))
    assert case is not None and case.channel == "whatsapp" and case.risk_level in {
        "high", "urgent"}

    await wa.caseworker_says(case.id, "أنا منى من فريق سند. إنت في أمان دلوقتي؟")
    assert await wa.deliver_outbox() == 1
    assert "أنا منى" in visible_text(wa.last()) and button_ids(wa.last()) == ["ho:end"]

    before = len(wa.fake.messages(WA_ID))
    await wa.say("خروج")
    after = wa.fake.messages(WA_ID)[before:]
    assert [p["type"] for p in after] == ["text"]
    assert visible_text(after[0]) == wa.ui("ar", "exit.cover")

    await wa.caseworker_says(case.id, "رديت عليك")  # nothing may follow the cover line …
    assert await wa.deliver_outbox() == 0
    assert len(wa.fake.messages(WA_ID)) == before + 1
    [_, held] = await wa.outbox()
    assert (held.status, held.last_error) == ("paused", "contact paused")
    await wa.say("مرحبا")  # … until the user writes again and says it is OK to go on here
    check = wa.last()
    assert visible_text(check) == wa.ui("ar", "contact.check")
    await wa.tap(button_ids(check)[0])
    assert await wa.deliver_outbox() == 1
    assert "رديت عليك" in visible_text(wa.last())
