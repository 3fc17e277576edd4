"""Is anyone there? Staff on duty and the queue length, for honest handoff messages.

Asked on every turn, so the answer is cached for a few seconds: one small query per interval,
whatever the traffic.
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select

from bot.core.state import Staffing
from bot.store.models import Case
from bot.store.repository import Store, utcnow
from handoff.models import Caseworker, ConsoleSession
from handoff.queue import OPEN_STATUSES

ANSWERING_ROLES = ("caseworker", "supervisor")


class AvailabilityProbe:
    def __init__(self, store: Store, *, active_within: timedelta = timedelta(minutes=30),
                 ttl_s: float = 20.0) -> None:
        self.store = store
        self.active_within = active_within
        self.ttl_s = ttl_s
        self._cached: tuple[float, Staffing] | None = None

    async def __call__(self) -> Staffing:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.ttl_s:
            return self._cached[1]
        value = await self._query()
        self._cached = (now, value)
        return value

    async def _query(self) -> Staffing:
        since = utcnow() - self.active_within
        async with self.store.session() as db:
            on_duty = await db.scalar(
                select(func.count(func.distinct(ConsoleSession.caseworker_id)))
                .join(Caseworker, Caseworker.id == ConsoleSession.caseworker_id)
                .where(ConsoleSession.last_seen_at >= since, Caseworker.active,
                       Caseworker.role.in_(ANSWERING_ROLES)))
            waiting = await db.scalar(
                select(func.count()).select_from(Case)
                .where(Case.status.in_([s for s in OPEN_STATUSES if s != "claimed"])))
        return Staffing(on_duty=int(on_duty or 0), waiting=int(waiting or 0))
