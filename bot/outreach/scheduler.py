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
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from bot.outreach import campaigns
from bot.outreach.delivery import Deliverer, OnSent
from bot.outreach.models import Campaign
from bot.outreach.ratelimit import default_rate
from bot.outreach.sender import CampaignSender, SenderOptions
from bot.outreach.targeting import KIND, target_batch
from bot.sendbudget import SendBudget
from bot.store.models import OutboxMessage
from bot.store.repository import Store, utcnow

log = logging.getLogger(__name__)


class CampaignScheduler:
    def __init__(self, store: Store, deliverers: Mapping[str, Deliverer], *,
                 rates: Mapping[str, float] | None = None,
                 on_sent: Mapping[str, OnSent] | None = None, default_language: str = "ar",
                 interval: float = 5.0, batches_per_tick: int = 25,
                 options: Mapping[str, Any] | None = None,
                 budgets: Mapping[str, SendBudget] | None = None) -> None:
        self.store = store
        self.deliverers = dict(deliverers)
        self.rates = dict(rates or {})
        self.on_sent = dict(on_sent or {})
        self.default_language = default_language
        self.interval = interval
        self.batches_per_tick = batches_per_tick
        self.options = dict(options or {})
        """Further ``SenderOptions`` (e.g. ``lease``) for every channel's sender."""
        self.budgets = dict(budgets or {})
        """Each channel's shared send budget (bot.sendbudget); campaigns take what is left."""

    def senders(self) -> list[CampaignSender]:
        return [CampaignSender(self.store, channel, deliverer,
                               SenderOptions(rate=self.rates.get(channel, default_rate(channel)),
                                             **self.options),
                               on_sent=self.on_sent.get(channel),
                               budget=self.budgets.get(channel))
                for channel, deliverer in self.deliverers.items()]

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``interval`` and send on every channel until ``stop`` is set."""
        await self.send(stop, tick_every=self.interval)

    async def run_once(self, *, budget: float, poll: float = 0.25) -> None:
        """One tick, then send until nothing is due on our channels (or ``budget`` seconds
        have passed): ``sanad worker --once``."""
        await self.tick()
        stop = asyncio.Event()
        senders = asyncio.create_task(self.send(stop, tick_every=None))
        deadline = time.monotonic() + budget
        try:
            while time.monotonic() < deadline and not senders.done():
                await asyncio.sleep(poll)
                if not await due(self.store, self.deliverers):
                    break
        finally:
            stop.set()
            await senders
        await self.tick()  # marks the campaigns that finished ``done``

    async def send(self, stop: asyncio.Event, *, tick_every: float | None) -> None:
        tasks = [asyncio.create_task(sender.run(stop)) for sender in self.senders()]
        if tick_every is None:
            try:
                await stop.wait()
            finally:
                await asyncio.gather(*tasks, return_exceptions=True)
            return
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception as exc:  # the worker survives a database outage
                    log.warning("outreach: tick failed (%s); retrying", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=tick_every)
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


async def due(store: Store, channels: Iterable[str]) -> int:
    """Campaign messages of these channels that a sender could take now (or holds)."""
    now = utcnow()
    async with store.session() as db:
        return int(await db.scalar(
            select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.kind == KIND, OutboxMessage.channel.in_(list(channels)),
                or_(OutboxMessage.status == "sending",
                    and_(OutboxMessage.status == "pending",
                         OutboxMessage.next_attempt_at <= now)))) or 0)
