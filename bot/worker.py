"""``sanad worker``: background jobs that must run even when nobody writes to the bot.

Each periodic job runs on its own interval; a database outage is logged and retried on the next
round, never fatal. Next to them runs the outreach scheduler: it starts scheduled campaigns,
targets them and sends them on every configured channel at the channel's shared rate
(``SANAD_TELEGRAM_RATE``, ``SANAD_WHATSAPP_RATE``). Several workers may run at once: every job
is safe to repeat, and campaign rows are leased, so nobody gets a message twice. SIGTERM stops
the senders cleanly (calls in flight are recorded, the rest is given back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.channels.campaigns import campaign_channels
from bot.config import Settings
from bot.logs import request_scope
from bot.outreach.scheduler import CampaignScheduler
from bot.sendbudget.config import channel_budgets
from bot.store.db import DatabaseUnavailable, open_database
from bot.store.repository import Store
from handoff import jobs as handoff_jobs
from handoff.referrals import webhooks as referral_webhooks

log = logging.getLogger(__name__)

TICK_S = 5.0
ONCE_SEND_S = 300.0
"""``--once``: the longest a send round may take before the worker exits anyway."""


@dataclass
class Job:
    name: str
    every_s: float
    run: Callable[[], Awaitable[object]]
    due_at: float = 0.0


class Worker:
    def __init__(self, settings: Settings, *, once_send_s: float = ONCE_SEND_S,
                 campaign_interval: float = TICK_S) -> None:
        self.settings = settings
        self.once_send_s = once_send_s
        self.campaign_interval = campaign_interval

    def jobs(self, store: Store) -> list[Job]:
        settings = self.settings
        return [
            Job("retention", 3600, lambda: store.purge_expired(settings.retention_days)),
            Job("sla-escalation", 60, lambda: handoff_jobs.escalate(store, settings)),
            Job("console-sessions", 600, lambda: handoff_jobs.purge_logins(store)),
            Job("referral-webhooks", 15, lambda: referral_webhooks.run_job(store)),
        ]

    async def run(self, *, once: bool = False) -> int:
        settings = self.settings
        async with open_database(settings.database_url) as engine:
            store = Store.from_settings(settings, engine)
            jobs = self.jobs(store)
            async with campaign_channels(settings, store) as channels:
                # Campaigns take what conversations leave of each bot's shared send budget.
                budgets = channel_budgets(settings, store, channels.deliverers)
                scheduler = CampaignScheduler(
                    store, channels.deliverers, rates=channels.rates, on_sent=channels.on_sent,
                    default_language=settings.default_language,
                    interval=self.campaign_interval,
                    options={"lease": timedelta(seconds=settings.outbox_lease_seconds)},
                    budgets=budgets)
                try:
                    await self._serve(jobs, scheduler, once=once)
                finally:
                    for budget in budgets.values():
                        await budget.aclose()
        return 0

    async def _serve(self, jobs: list[Job], scheduler: CampaignScheduler, *,
                     once: bool) -> None:
        if once:
            for job in jobs:
                await self._run_job(job)
            await scheduler.run_once(budget=self.once_send_s)
            return
        stop = asyncio.Event()
        _stop_on_sigterm(stop)
        outreach = asyncio.create_task(scheduler.run(stop), name="outreach")
        try:
            while not stop.is_set():
                for job in jobs:
                    if time.monotonic() >= job.due_at:
                        await self._run_job(job)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=TICK_S)
        finally:
            stop.set()  # not cancel(): the senders record what is in flight
            await outreach

    @staticmethod
    async def _run_job(job: Job) -> None:
        try:
            with request_scope():  # one id for the round's log lines (bot.logs)
                result = await job.run()
                log.info("worker: %s done (%s)", job.name, result)
            job.due_at = time.monotonic() + job.every_s
        except DatabaseUnavailable:
            log.warning("worker: %s skipped, database unavailable; retrying soon", job.name)
            job.due_at = time.monotonic() + TICK_S


def _stop_on_sigterm(stop: asyncio.Event) -> None:
    """A supervisor's SIGTERM ends the worker cleanly (only possible in the main thread)."""
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
