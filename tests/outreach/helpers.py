"""Running senders in tests: until a campaign has nothing left to dispatch, with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from bot.outreach import campaigns
from bot.outreach.models import CampaignDelivery
from bot.outreach.sender import CampaignSender, SenderOptions
from bot.outreach.targeting import target_all
from bot.store.repository import Store


def fast(rate: float, **overrides: Any) -> SenderOptions:
    """Sender options for tests: short idle polls and reservations."""
    return replace(SenderOptions(rate=rate, idle=0.05, horizon=0.25), **overrides)


async def settled(store: Store, campaign_id: int) -> bool:
    async with store.session() as db:
        return await campaigns.waiting(db, campaign_id) == 0


async def run_senders(store: Store, campaign_id: int, *senders: CampaignSender,
                      timeout: float = 20.0) -> float:
    """Target everything, run the senders until nothing waits; returns the seconds taken."""
    await target_all(store, campaign_id)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in senders]
    started = time.monotonic()
    try:
        while not await settled(store, campaign_id):
            if time.monotonic() - started > timeout:
                raise AssertionError("campaign did not settle in time")
            if any(t.done() for t in tasks):
                for t in tasks:
                    if t.done():
                        t.result()
            await asyncio.sleep(0.2)  # each poll takes SQLite's write lock: not too often
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return time.monotonic() - started


async def delivery_statuses(store: Store, campaign_id: int) -> Counter[str]:
    async with store.session() as db:
        return Counter(await db.scalars(select(CampaignDelivery.status).where(
            CampaignDelivery.campaign_id == campaign_id)))
