"""Click-to-chat attribution, the opt-in lists and "الغاء" through the real WhatsApp webhook."""

from __future__ import annotations

from sqlalchemy import select

from bot.store.models import Subscription
from tests.whatsapp.conftest import Harness
from tests.whatsapp.fake_graph_api import button_ids, visible_text

OTHER = "201112223335"


async def test_click_to_chat_text_attributes_a_new_user(wa_any_db: Harness) -> None:
    h = wa_any_db
    assert await h.say("مرحبا سند #caritas-alex") == 200
    assert "caritas" not in visible_text(h.last())
    assert "menu:learn" in button_ids(h.last())
    assert (await h.user()).joined_via == "caritas-alex"
    await h.say("hello #another")
    assert (await h.user()).joined_via == "caritas-alex"
    await h.say("#2", wa_id=OTHER)
    assert (await h.user(OTHER)).joined_via is None


async def test_opt_in_choices_fit_whatsapp_and_stop_word_opts_out(wa: Harness) -> None:
    h = wa
    await h.say("ابعتلي نصايح")
    await h.tap("sub:yes")
    topics = h.last()
    assert topics["interactive"]["type"] == "list" and button_ids(topics)[0] == "sub:topic:all"
    await h.tap("sub:topic:all", row=True)
    assert h.last()["interactive"]["type"] == "button"  # three languages: reply buttons
    await h.tap("sub:lang:ar")
    governorates = h.last()
    assert governorates["interactive"]["type"] == "list"
    assert len(button_ids(governorates)) <= 10 and button_ids(governorates)[-1] == "sub:gov:skip"
    await h.say("المنصورة")  # typed: an alias of Dakahlia
    await h.tap("sub:age:skip", row=True)
    user = await h.user()
    assert (user.governorate, user.age_band) == ("dakahlia", None)
    async with h.sanad.store.session() as db:
        assert await db.scalar(select(Subscription.topics)) == [
            "jobs", "travel", "trafficking", "rights"]
    await h.say("الغاء")
    assert h.ui("ar", "subscribe.stopped") in visible_text(h.last())
    async with h.sanad.store.session() as db:
        assert await db.scalar(select(Subscription.topics)) is None
