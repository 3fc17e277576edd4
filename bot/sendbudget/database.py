"""The budget in a database row: shared by every process on the same database, no extra service.

Each ask is one short transaction: lock the row (``SELECT … FOR UPDATE`` on PostgreSQL, the
write lock of SQLite's ``BEGIN IMMEDIATE``), run :func:`bot.sendbudget.gcra.take` on it, write
it back. Asks are batched by :class:`~bot.sendbudget.budget.PrioritisedBudget` (one
transaction grants every waiter of the top priority it can), so a saturated budget costs about
``rate`` plus one poll per waiting process per send interval: ~100 short transactions a second
for Telegram's 30/s with three processes (figures in ``bench/README.md``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import orjson
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.outreach.ratelimit import database_now
from bot.sendbudget import gcra
from bot.sendbudget.models import SendBudgetRow
from bot.store.db import DatabaseUnavailable, create_engine
from bot.store.repository import Store, dialect_insert, utcnow

DB_ERRORS = (OperationalError, DBAPIError, OSError)


class DatabaseBackend:
    """One budget (``key``) in the ``send_budgets`` table of ``store``'s database.

    With ``own_connection`` the asks use a connection of their own (an engine on the same URL)
    instead of the store's pool: under a rush, hundreds of turns queue for the store's
    connections (SQLite has one), and a send that waited there would wait for all of them.
    """

    def __init__(self, store: Store, key: str, limits: gcra.Limits, *,
                 clock: Callable[[], float] | None = None,
                 own_connection: bool = False) -> None:
        self.store = store
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        if own_connection:
            self._engine = create_engine(store.engine.url.render_as_string(hide_password=False))
            self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        self.key = key
        self.limits = limits
        self._clock = clock
        """Tests: a fixed clock instead of the database's (returns epoch seconds)."""

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        if self._sessions is None:
            async with self.store.session() as db:
                yield db
            return
        try:
            async with self._sessions() as db, db.begin():
                yield db
        except DB_ERRORS as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc

    async def take(self, owner: str, priority: int, want: int,
                   next_priority: int | None) -> gcra.Grant:
        async with self._session() as db:
            row, state, now = await self._locked(db)
            evaluated = time.monotonic()
            grant = gcra.take(state, self.limits, now, owner=owner, priority=priority,
                              want=want, next_priority=next_priority)
            self._store(row, state)
        # Slots count from the moment of the decision, not from the commit (which may have
        # waited for a lock): the caller adds them to its clock on return.
        if self._clock is not None:  # tests: the clock is theirs, time stands still
            return grant
        return replace(grant, start=grant.start - (time.monotonic() - evaluated))

    async def pause(self, seconds: float) -> float:
        async with self._session() as db:
            row, state, now = await self._locked(db)
            until = gcra.pause(state, self.limits, now, seconds)
            self._store(row, state)
        return until - now

    async def _now(self, db: AsyncSession) -> float:
        if self._clock is not None:
            return self._clock()
        if db.get_bind().dialect.name == "postgresql":
            return await database_now(db)
        return time.time()

    async def _locked(self, db: AsyncSession) -> tuple[SendBudgetRow, gcra.State, float]:
        query = select(SendBudgetRow).where(SendBudgetRow.key == self.key)
        dialect = db.get_bind().dialect.name
        if dialect == "postgresql":
            query = query.with_for_update()
        row = await db.scalar(query)
        if row is None:
            await db.execute(dialect_insert(dialect, SendBudgetRow).values(
                key=self.key, tat=0.0, paused_until=0.0, demand="{}", updated_at=utcnow(),
            ).on_conflict_do_nothing(index_elements=["key"]))
            row = await db.scalar(query)
            if row is None:  # pragma: no cover - the row was just inserted
                raise RuntimeError(f"no send budget row for {self.key}")
        demand = {owner: (int(p), float(seen))
                  for owner, (p, seen) in orjson.loads(row.demand or "{}").items()}
        return row, gcra.State(row.tat, row.paused_until, demand), await self._now(db)

    @staticmethod
    def _store(row: SendBudgetRow, state: gcra.State) -> None:
        row.tat, row.paused_until = state.tat, state.paused_until
        row.demand = orjson.dumps(state.demand).decode()
        row.updated_at = utcnow()
