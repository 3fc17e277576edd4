"""Through the real engine: people opt in by talking to the bot, get a campaign, tap its
button, and stop further messages with the word its footer suggests."""

from __future__ import annotations

from bot.app import Sanad
from bot.messages import Button, Inbound
from bot.outreach import campaigns
from bot.outreach.message_file import LanguageMessage, MessageFile
from bot.outreach.sender import CampaignSender
from bot.outreach.stats import report
from bot.outreach.targeting import target_all
from tests.outreach.conftest import FakeDeliverer, new_campaign, start
from tests.outreach.helpers import fast, run_senders

BUTTON = Button("aw:open:what_is_trafficking", "ما هو الاتجار بالبشر؟")


async def say(sanad: Sanad, user: str, text: str = "", button: str | None = None) -> None:
    ref = sanad.store.user_ref("telegram", user)
    await sanad.engine.handle_turn(Inbound(user=ref, text=text, button_id=button),
                                   address=user)


async def test_opt_in_campaign_click_and_opt_out(sanad_sqlite: Sanad) -> None:
    store = sanad_sqlite.store
    for user in ("p0", "p1", "p2", "never"):
        await say(sanad_sqlite, user, "مرحبا")
    for user in ("p0", "p1", "p2"):  # opt in: all topics, Arabic tips, nothing optional
        for tap in ("sub:yes", "sub:topic:all", "sub:lang:ar", "sub:gov:skip", "sub:age:skip"):
            await say(sanad_sqlite, user, button=tap)

    file = MessageFile((LanguageMessage("ar", "اعرف علامات الاتجار بالبشر", (BUTTON,)),))
    first = await new_campaign(store, "first", file=file)
    await start(store, "first")
    fake = FakeDeliverer()
    await run_senders(store, first, CampaignSender(store, "telegram", fake, fast(100)))
    assert sorted(fake.addresses) == ["p0", "p1", "p2"]  # "never" did not opt in

    await say(sanad_sqlite, "p1", button=BUTTON.id)  # taps the campaign's button
    await say(sanad_sqlite, "p0", "الغاء")  # the word the footer suggests

    async with store.session() as db:
        figures = await report(db, await campaigns.get(db, "first"))
    assert (figures.sent, figures.clicked, figures.opted_out) == (3, 1, 1)

    second = await new_campaign(store, "second", file=file)
    await start(store, "second")
    await target_all(store, second)
    again = FakeDeliverer()
    await run_senders(store, second, CampaignSender(store, "telegram", again, fast(100)))
    assert sorted(again.addresses) == ["p1", "p2"]  # p0 opted out
