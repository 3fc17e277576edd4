"""The worker's outreach job: start scheduled campaigns, target them, send, finish them.

One :class:`CampaignSender` per channel runs for every campaign at once (all share the
channel's rate); every ``interval`` seconds a tick starts due campaigns, targets a few batches
of each sending campaign (so a huge audience is queued progressively while sending has begun)
and marks finished ones ``done``. Several workers may run this at once: every step is safe to
repeat (row locks, leases, idempotency keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select

from bot.outreach import campaigns
from bot.outreach.delivery import Deliverer, OnSent
from bot.outreach.models import Campaign
from bot.outreach.ratelimit import default_rate
from bot.outreach.sender import CampaignSender, SenderOptions
from bot.outreach.targeting import target_batch
from bot.store.repository import Store, utcnow

log = logging.getLogger(__name__)


class CampaignScheduler:
    def __init__(self, store: Store, deliverers: Mapping[str, Deliverer], *,
                 rates: Mapping[str, float] | None = None,
                 on_sent: Mapping[str, OnSent] | None = None, default_language: str = "ar",
                 interval: float = 5.0, batches_per_tick: int = 25) -> None:
        self.store = store
        self.deliverers = dict(deliverers)
        self.rates = dict(rates or {})
        self.on_sent = dict(on_sent or {})
        self.default_language = default_language
        self.interval = interval
        self.batches_per_tick = batches_per_tick

    def senders(self) -> list[CampaignSender]:
        return [CampaignSender(self.store, channel, deliverer,
                               SenderOptions(rate=self.rates.get(channel, default_rate(channel))),
                               on_sent=self.on_sent.get(channel))
                for channel, deliverer in self.deliverers.items()]

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(sender.run(stop)) for sender in self.senders()]
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception as exc:  # the worker survives a database outage
                    log.warning("outreach: tick failed (%s); retrying", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def tick(self, now: datetime | None = None) -> None:
        now = now or utcnow()
        async with self.store.session() as db:
            for name in await campaigns.start_due(db, now):
                log.info("outreach: campaign %s started", name)
            sending = list(await db.scalars(select(Campaign.id).where(
                Campaign.status == "sending")))
        for campaign_id in sending:
            for _ in range(self.batches_per_tick):
                if not await target_batch(self.store, campaign_id,
                                          default_language=self.default_language, now=now):
                    break
            async with self.store.session() as db:
                if await campaigns.finish_if_complete(db, campaign_id, utcnow()):
                    log.info("outreach: campaign %s done", campaign_id)
