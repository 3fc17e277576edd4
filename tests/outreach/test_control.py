"""Operators and safeguards: pause and resume, quiet hours, the handoff cap, the worker."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.outreach import campaigns
from bot.outreach.models import Campaign, CampaignDelivery
from bot.outreach.scheduler import CampaignScheduler
from bot.outreach.sender import CampaignSender, SenderOptions
from bot.outreach.targeting import target_all
from bot.store.models import EventRecord
from bot.store.repository import Store, utcnow
from tests.outreach.conftest import FakeDeliverer, add_users, new_campaign, start
from tests.outreach.helpers import delivery_statuses, fast, run_senders, settled


async def _until(condition: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_pause_stops_at_once_and_resume_finishes(sqlite_store: Store) -> None:
    store = sqlite_store
    await add_users(store, 300)
    campaign_id = await new_campaign(store)
    await start(store)
    await target_all(store, campaign_id)
    fake = FakeDeliverer()
    rate = 300.0
    stop = asyncio.Event()
    task = asyncio.create_task(CampaignSender(
        store, "telegram", fake, fast(rate)).run(stop))
    try:
        async def some_sent() -> bool:
            return len(fake.sent) >= 100
        await _until(some_sent)
        async with store.session() as db:
            await campaigns.pause(db, "c1", utcnow())
        at_pause = len(fake.sent)
        await asyncio.sleep(0.4)
        after = len(fake.sent)
        # At most the group checked just before the pause still went out.
        assert after - at_pause <= fast(rate).group
        print(f"{after - at_pause} sent after the pause (bound {fast(rate).group})")
        await asyncio.sleep(0.3)
        assert len(fake.sent) == after < 300
        assert "sending" not in await delivery_statuses(store, campaign_id)

        async with store.session() as db:
            assert (await campaigns.resume(db, "c1")).status == "sending"

        async def finished() -> bool:
            return await settled(store, campaign_id)
        await _until(finished)
    finally:
        stop.set()
        await task
    assert sorted(Counter(fake.addresses).values()) == [1] * 300


def _closed_window_now() -> str:
    local = datetime.now(ZoneInfo("Africa/Cairo"))
    start = (local + timedelta(hours=2)).strftime("%H:00")
    end = (local + timedelta(hours=3)).strftime("%H:00")
    return f"{start}-{end}"


async def test_scheduled_sends_wait_for_the_window_but_an_operator_send_does_not(
        sqlite_store: Store) -> None:
    await add_users(sqlite_store, 20)
    closed = _closed_window_now()
    scheduled = await new_campaign(sqlite_store, "later", at=utcnow() - timedelta(minutes=1),
                                   window=closed)
    fake = FakeDeliverer()
    scheduler = CampaignScheduler(sqlite_store, {"telegram": fake}, rates={"telegram": 200.0},
                                  interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        await asyncio.sleep(1.0)
        async with sqlite_store.session() as db:
            campaign = await db.get(Campaign, scheduled)
            assert campaign is not None and campaign.status == "sending"
        assert fake.sent == []  # outside its window: queued, not sent

        operator = await new_campaign(sqlite_store, "now", window=closed)
        await start(sqlite_store, "now")  # `campaign send`: ignores the window

        async def operator_done() -> bool:
            async with sqlite_store.session() as db:
                found = await db.get(Campaign, operator)
                return found is not None and found.status == "done"
        await _until(operator_done)
        assert len(fake.sent) == 20

        async with sqlite_store.session() as db:  # the window opens
            await db.execute(update(Campaign).where(Campaign.id == scheduled)
                             .values(window="00:00-24:00"))

        async def scheduled_done() -> bool:
            async with sqlite_store.session() as db:
                found = await db.get(Campaign, scheduled)
                return found is not None and found.status == "done"
        await _until(scheduled_done)
    finally:
        stop.set()
        await task
    assert sorted(Counter(fake.addresses).values()) == [2] * 20  # one per campaign


async def test_too_many_handoffs_pause_the_campaign(sqlite_store: Store) -> None:
    await add_users(sqlite_store, 60)
    campaign_id = await new_campaign(sqlite_store, max_handoffs_per_hour=3)
    await start(sqlite_store)
    await target_all(sqlite_store, campaign_id)
    fake = FakeDeliverer()
    sender = CampaignSender(sqlite_store, "telegram", fake,
                            SenderOptions(rate=60, horizon=0.1, idle=0.05, handoff_check=0))
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        async def some_sent() -> bool:
            async with sqlite_store.session() as db:
                sent = list(await db.execute(
                    select(CampaignDelivery.user_id, CampaignDelivery.sent_at)
                    .where(CampaignDelivery.status == "sent").limit(3)))
                if len(sent) < 3:
                    return False
                db.add_all(EventRecord(user_id=user_id, name="HandoffRequested",
                                       channel="telegram", data={}, created_at=utcnow())
                           for user_id, _ in sent)
                return True
        await _until(some_sent)

        async def paused() -> bool:
            async with sqlite_store.session() as db:
                found = await db.get(Campaign, campaign_id)
                return found is not None and found.status == "paused"
        await _until(paused)
    finally:
        stop.set()
        await task
    async with sqlite_store.session() as db:
        campaign = await db.get(Campaign, campaign_id)
        assert campaign is not None and campaign.pause_reason is not None
        assert "3 handoffs in the last hour (cap 3)" in campaign.pause_reason
    assert 3 <= len(fake.sent) < 60


async def test_the_worker_starts_targets_sends_and_finishes(store: Store) -> None:
    await add_users(store, 50, channel="telegram", prefix="t")
    await add_users(store, 30, channel="whatsapp", prefix="w")
    campaign_id = await new_campaign(store, at=datetime.now(UTC) - timedelta(seconds=1),
                                     window="00:00-24:00")
    telegram, whatsapp = FakeDeliverer(), FakeDeliverer()
    scheduler = CampaignScheduler(store, {"telegram": telegram, "whatsapp": whatsapp},
                                  rates={"telegram": 300.0, "whatsapp": 300.0}, interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        async def done() -> bool:
            async with store.session() as db:
                found = await db.get(Campaign, campaign_id)
                return found is not None and found.status == "done"
        await _until(done, timeout=20)
    finally:
        stop.set()
        await task
    assert sorted(telegram.addresses) == sorted(f"t{n}" for n in range(50))
    assert sorted(whatsapp.addresses) == sorted(f"w{n}" for n in range(30))


async def test_operator_errors(sqlite_store: Store) -> None:
    await new_campaign(sqlite_store)
    async with sqlite_store.session() as db:
        with pytest.raises(campaigns.CampaignError, match="only a scheduled or sending"):
            await campaigns.pause(db, "c1", utcnow())
        with pytest.raises(campaigns.CampaignError, match="is draft, not paused"):
            await campaigns.resume(db, "c1")
        with pytest.raises(campaigns.CampaignError, match="no campaign named 'c2'"):
            await campaigns.get(db, "c2")
    with pytest.raises(campaigns.CampaignError, match="exists already"):
        await new_campaign(sqlite_store)
    with pytest.raises(campaigns.CampaignError, match="invalid campaign name"):
        await new_campaign(sqlite_store, "no spaces")
    assert await target_all(sqlite_store, 1) == 0  # a draft is not targeted
    await start(sqlite_store)
    async with sqlite_store.session() as db:
        await campaigns.pause(db, "c1", utcnow())
        with pytest.raises(campaigns.CampaignError, match="is paused"):
            await campaigns.start_now(db, "c1", utcnow())
    await run_senders(sqlite_store, await new_campaign(sqlite_store, "empty"))
