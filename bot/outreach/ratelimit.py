"""One global send rate per channel, shared by every process through a database row.

Senders reserve *time slots* rather than take tokens: under the row lock (``SELECT … FOR UPDATE``
on PostgreSQL, the write lock that every SQLite transaction takes with ``BEGIN IMMEDIATE``) a
sender moves the channel's ``next_slot`` on by ``count / rate`` seconds and gets the ``count``
evenly spaced send times in between. Whatever the number of workers, the slots never overlap,
so the channel's total never exceeds the rate; one short transaction per batch keeps the lock
cheap. Slots are not banked: a channel idle for more than ``GRACE`` starts again from "now"; a
busy one continues its schedule, so a sender that leased a little late catches up with a burst
of at most ``rate * GRACE`` messages (a token bucket of that size, in effect).

A platform's "retry after" pauses the whole channel: ``paused_until`` moves forward and the
schedule restarts there (``next_slot``); every sender checks it before each group of sends and
gives back the slots it held.

Times in the row are epoch seconds from the database's clock on PostgreSQL (workers on several
machines agree on it) and from the local clock on SQLite (one machine anyway); callers get them
back on their own monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.outreach.models import SendRate
from bot.store.repository import Store, utcnow

DEFAULT_RATES = {"telegram": 25.0, "whatsapp": 60.0}
"""Messages per second. Telegram allows ~30/s overall; WhatsApp Cloud API ~80/s by default."""
FALLBACK_RATE = 25.0
GRACE = 0.1
"""Seconds of slots a busy channel may catch up (a burst of at most ``rate * GRACE``)."""


def default_rate(channel: str) -> float:
    return DEFAULT_RATES.get(channel, FALLBACK_RATE)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Send times on the caller's monotonic clock, or how long the channel is paused."""

    slots: tuple[float, ...]
    paused_until: float | None = None
    start: float | None = None
    """The first slot on the database's clock (epoch seconds): comparable across workers."""


def clock_column(db: AsyncSession) -> ColumnElement[Any]:
    """Epoch seconds by the database's clock (PostgreSQL) or ours (SQLite: same machine), as
    a column, so that it can ride along in another query."""
    if db.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", func.clock_timestamp())
    return literal(time.time(), Float)


def paused_until_column(channel: str) -> ColumnElement[Any]:
    return func.coalesce(select(SendRate.paused_until).where(SendRate.channel == channel)
                         .scalar_subquery(), 0.0)


async def database_now(db: AsyncSession) -> float:
    if db.get_bind().dialect.name == "postgresql":
        return float(await db.scalar(select(clock_column(db))) or 0.0)
    return time.time()


class RateLimiter:
    """Reserves send slots of a channel in the shared ``outreach_send_rates`` row."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock

    async def reserve(self, channel: str, count: int, rate: float) -> Reservation:
        """``count`` evenly spaced send times at ``rate``/s, after every earlier reservation."""
        if count < 1 or rate <= 0:
            raise ValueError("count and rate must be positive")
        async with self.store.session() as db:
            row = await self._locked(db, channel)
            now = await database_now(db)
            offset = self.clock() - now
            if row.paused_until > now:
                return Reservation((), row.paused_until + offset)
            # Continue the schedule if it ended at most GRACE ago (a busy sender that leased a
            # little late catches up), else start now: an idle channel banks nothing.
            start = row.next_slot if row.next_slot >= now - GRACE else now
            interval = 1.0 / rate
            row.next_slot = start + count * interval
            row.updated_at = utcnow()
        return Reservation(tuple(start + i * interval + offset for i in range(count)),
                           start=start)

    async def back_off(self, channel: str, seconds: float) -> float:
        """The platform said "retry after": pause the channel for everybody; returns the end
        of the pause on the caller's monotonic clock."""
        async with self.store.session() as db:
            row = await self._locked(db, channel)
            now = await database_now(db)
            offset = self.clock() - now
            until = now + max(0.0, seconds)
            row.paused_until = max(row.paused_until, until)
            # Every sender gives back the slots it holds when it sees the pause (at its next
            # check, long before the pause ends), so the schedule restarts at the pause's end.
            row.next_slot = row.paused_until
            row.updated_at = utcnow()
            return row.paused_until + offset

    async def paused_for(self, db: AsyncSession, channel: str) -> float:
        """Seconds the channel stays paused (0 when it is not), inside the caller's transaction."""
        row = (await db.execute(select(paused_until_column(channel), clock_column(db)))).one()
        return max(0.0, float(row[0]) - float(row[1]))

    @staticmethod
    async def _locked(db: AsyncSession, channel: str) -> SendRate:
        query = select(SendRate).where(SendRate.channel == channel)
        postgres = db.get_bind().dialect.name == "postgresql"
        if postgres:
            query = query.with_for_update()
        row = await db.scalar(query)
        if row is not None:
            return row
        insert = pg_insert if postgres else sqlite_insert
        await db.execute(insert(SendRate).values(
            channel=channel, next_slot=0.0, paused_until=0.0, updated_at=utcnow(),
        ).on_conflict_do_nothing(index_elements=["channel"]))
        row = await db.scalar(query)
        if row is None:  # pragma: no cover - the row was just inserted
            raise RuntimeError(f"no send-rate row for {channel}")
        return row
