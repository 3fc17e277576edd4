"""``sanad worker``: background jobs that must run even when nobody writes to the bot.

Each job runs on its own interval; a database outage is logged and retried on the next round,
never fatal. Several workers may run at once: every job is safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.config import Settings
from bot.store.db import DatabaseUnavailable, open_database
from bot.store.repository import Store

log = logging.getLogger(__name__)

TICK_S = 5.0


@dataclass
class Job:
    name: str
    every_s: float
    run: Callable[[], Awaitable[object]]
    due_at: float = 0.0


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def jobs(self, store: Store) -> list[Job]:
        from handoff import jobs as handoff_jobs

        settings = self.settings
        return [
            Job("retention", 3600, lambda: store.purge_expired(settings.retention_days)),
            Job("sla-escalation", 60, lambda: handoff_jobs.escalate(store, settings)),
            Job("console-sessions", 600, lambda: handoff_jobs.purge_logins(store)),
        ]

    async def run(self, *, once: bool = False) -> int:
        async with open_database(self.settings.database_url) as engine:
            jobs = self.jobs(Store.from_settings(self.settings, engine))
            while True:
                for job in jobs:
                    if time.monotonic() >= job.due_at:
                        await self._run_job(job)
                if once:
                    return 0
                await asyncio.sleep(TICK_S)

    @staticmethod
    async def _run_job(job: Job) -> None:
        try:
            result = await job.run()
            log.info("worker: %s done (%s)", job.name, result)
            job.due_at = time.monotonic() + job.every_s
        except DatabaseUnavailable:
            log.warning("worker: %s skipped, database unavailable; retrying soon", job.name)
            job.due_at = time.monotonic() + TICK_S
