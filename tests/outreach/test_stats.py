"""``campaign report``: the funnel and what recipients did within the attribution window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update

from bot.messages import Button
from bot.outreach import campaigns
from bot.outreach.message_file import LanguageMessage, MessageFile
from bot.outreach.models import CampaignDelivery
from bot.outreach.sender import CampaignSender, SenderOptions
from bot.outreach.stats import report
from bot.outreach.targeting import target_all
from bot.store.models import EventRecord, OutboxMessage, Subscription
from bot.store.repository import Store, as_utc
from tests.outreach.conftest import FakeDeliverer, add_users, new_campaign, start
from tests.outreach.helpers import run_senders

BUTTON = Button("aw:open:what_is_trafficking", "What is trafficking?")


async def test_report_figures_match_what_happened(store: Store) -> None:
    ids = await add_users(store, 12)
    await add_users(store, 3, prefix="x", subscribed=False)  # never targeted
    file = MessageFile((LanguageMessage("ar", "نص", (BUTTON,)),))
    campaign_id = await new_campaign(store, file=file)
    await start(store)
    await target_all(store, campaign_id)
    async with store.session() as db:  # u11 opts out before the message goes
        await db.execute(delete(Subscription).where(Subscription.user_id == ids[11]))
    fake = FakeDeliverer(blocked={"u9", "u10"})
    await run_senders(store, campaign_id, CampaignSender(
        store, "telegram", fake, SenderOptions(rate=200, idle=0.05)))

    async with store.session() as db:
        sent_at = {user: as_utc(at) for user, at in await db.execute(
            select(CampaignDelivery.user_id, CampaignDelivery.sent_at)) if at is not None}

        def event(n: int, name: str, after: timedelta, **data: str) -> EventRecord:
            return EventRecord(user_id=ids[n], name=name, channel="telegram", data=data,
                               created_at=sent_at[ids[n]] + after)

        minute = timedelta(minutes=1)
        db.add_all([
            event(0, "ModuleOpened", minute, module_id="what_is_trafficking"),  # clicked
            event(0, "ModuleOpened", 2 * minute, module_id="what_is_trafficking"),  # same one
            event(1, "ModuleOpened", minute, module_id="safe_migration"),  # not its button
            event(2, "ScreeningStarted", minute),
            event(3, "HandoffRequested", minute),
            event(4, "Unsubscribed", minute),
            event(5, "ModuleOpened", -minute, module_id="what_is_trafficking"),  # before
            event(6, "HandoffRequested", timedelta(hours=30)),  # after the 24 h attribution
        ])
        # WhatsApp rolls Meta's delivery reports up into the outbox row.
        for n, status in ((7, "delivered"), (8, "read")):
            await db.execute(update(OutboxMessage).where(OutboxMessage.user_id == ids[n])
                             .values(status=status))

    async with store.session() as db:
        figures = (await report(db, await campaigns.get(db, "c1"))).to_dict()

    assert figures == {
        "campaign": "c1", "status": "sending", "targeted": 12, "sent": 9, "delivered": 2,
        "read": 1, "failed": 0, "blocked": 2, "opted_out": 1, "clicked": 1,
        "screenings_started": 1, "handoffs": 1, "pending": 0, "held": 0, "skipped": 1,
        "in_doubt": 0,
    }
