"""Where the hot paths' write transactions come from: one per caller, or (SQLite) shared.

SQLite has one writer. In this process its write transactions queue for the pool's one
connection (:mod:`bot.store.sqlite_inline`), and each pays for a connection checkout,
``BEGIN IMMEDIATE``, a ``COMMIT`` that writes the pages it changed to the WAL, and the return:
with the inline driver, most of a turn's database CPU. :class:`SharedCommit` lets the
transactions of one pass of the event loop share a transaction (group commit): each caller's
work runs in turn as a savepoint of it, and it commits once the loop has run the other ready
work (or after ``max_members``). Every caller returns only after that commit, so nothing is
sent or acknowledged before it is durable, exactly as with a transaction of its own; a caller
whose work fails rolls back its own savepoint only; a failed commit fails every member, each
as if its own commit had failed (Telegram gets 503 and delivers again).

PostgreSQL keeps :class:`OwnTransactions`: it has many connections and row locks, and a shared
transaction would make one user's turn wait for another user's locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store import direct
from bot.store.db import DatabaseUnavailable

T = TypeVar("T")

MAX_MEMBERS = 64
"""Callers per shared transaction at most: bounds how long the first waits for the commit."""

_SAVEPOINT = "SAVEPOINT member"
_RELEASE = "RELEASE SAVEPOINT member"
_UNDO = "ROLLBACK TO SAVEPOINT member"


class Transactions(Protocol):
    """A source of write transactions for the store's hot paths."""

    join_mode: str
    """How an ORM session joins a transaction from :meth:`open` (SQLAlchemy's
    ``join_transaction_mode``); the session is committed, never the transaction itself."""

    def open(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in a transaction, committed after a clean exit."""
        ...

    async def run(self, work: Callable[[direct.Cursor], T]) -> T:
        """``work`` on the cursor in a transaction, committed before this returns."""
        ...


class OwnTransactions:
    """One transaction per caller, on a connection of the pool."""

    join_mode = "rollback_only"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def open(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn, conn.begin():
            yield conn

    async def run(self, work: Callable[[direct.Cursor], T]) -> T:
        async with self._engine.connect() as conn:
            return await direct.run_in_transaction(conn, work)


@dataclass(eq=False)
class _Group:
    """One shared transaction: its connection, its members and the outcome of its commit."""

    conn: AsyncConnection
    committed: asyncio.Future[None]
    members: int = 0
    """Savepoints released into the transaction."""
    discard: BaseException | None = None
    """Why the transaction is rolled back whole: its first member failed (it has no savepoint
    of its own), or a savepoint could be neither released nor undone."""
    ender: asyncio.Task[None] | None = field(default=None, repr=False)
    """Ends the group once the loop has run the work that was ready when it opened."""
    ending: asyncio.Task[None] | None = field(default=None, repr=False)


class SharedCommit:
    """SQLite: the write transactions of one pass of the event loop share one commit."""

    join_mode = "create_savepoint"  # an ORM session's failure undoes its own savepoint only

    def __init__(self, engine: AsyncEngine, *, max_members: int = MAX_MEMBERS) -> None:
        self._engine = engine
        self._max_members = max_members
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer = asyncio.Lock()  # one member at a time: the savepoints never nest
        self._group: _Group | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[AsyncConnection]:
        async with self._member() as group:
            savepoint = await direct.run(group.conn, lambda cursor: _enter(cursor, group))
            try:
                yield group.conn
            except BaseException as exc:
                await direct.run(group.conn, partial(_undo, group=group, savepoint=savepoint,
                                                     error=exc))
                raise
            await direct.run(group.conn, lambda cursor: _release(cursor, group, savepoint))

    async def run(self, work: Callable[[direct.Cursor], T]) -> T:
        async with self._member() as group:
            return await direct.run(group.conn, lambda cursor: _in_savepoint(cursor, group, work))

    # --- membership ------------------------------------------------------------------------
    @asynccontextmanager
    async def _member(self) -> AsyncIterator[_Group]:
        """The writer's turn in the open group (opening one if none), then, after a clean
        exit, the group's commit."""
        async with self._lock():
            group = self._group or await self._start()
            try:
                yield group
            finally:
                if group.discard is not None or group.members >= self._max_members:
                    await self._end(group)
        await asyncio.shield(group.committed)

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a store used from a new event loop (tests, CLI runs)
            self._loop, self._writer, self._group = loop, asyncio.Lock(), None
        return self._writer

    async def _start(self) -> _Group:
        conn = await self._engine.connect()
        try:
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        committed.add_done_callback(_retrieve)  # members that failed never await it
        group = self._group = _Group(conn, committed)
        # Runs after the work already ready in this pass of the loop: those turns join.
        group.ender = asyncio.create_task(self._end_later(group))
        return group

    async def _end_later(self, group: _Group) -> None:
        async with self._writer:
            if self._group is group:
                self._group = None
                await _finish(group)  # only a shutdown cancels this task: _finish copes

    async def _end(self, group: _Group) -> None:
        """Commit (roll back when discarded) and give the connection back; in a task of its own,
        so a cancelled member cannot leave the transaction half-ended. Holds the writer."""
        self._group = None
        if group.ending is None:
            group.ending = asyncio.create_task(_finish(group))
        await asyncio.shield(group.ending)


def _enter(cursor: direct.Cursor, group: _Group) -> bool:
    """Open the member's savepoint; whether it has one. The first member needs none: nothing
    else is in the transaction yet, so its failure discards the whole."""
    if group.members == 0:
        return False
    try:
        cursor.raw(_SAVEPOINT)
    except BaseException as exc:
        group.discard = exc
        raise
    return True


def _release(cursor: direct.Cursor, group: _Group, savepoint: bool) -> None:
    if savepoint:
        try:
            cursor.raw(_RELEASE)
        except BaseException as exc:
            group.discard = exc
            raise
    group.members += 1


def _undo(cursor: direct.Cursor, group: _Group, savepoint: bool, error: BaseException) -> None:
    """Roll back what the failed member did; the caller re-raises the member's own error."""
    if not savepoint:
        group.discard = error  # the first member: nothing else to keep
        return
    try:
        cursor.raw(_UNDO)
        cursor.raw(_RELEASE)
    except BaseException as exc:
        group.discard = exc


def _in_savepoint(cursor: direct.Cursor, group: _Group, work: Callable[[direct.Cursor], T]) -> T:
    """``work`` in the member's savepoint, undone alone when it fails: one trip."""
    savepoint = _enter(cursor, group)
    try:
        result = work(cursor)
    except BaseException as exc:
        _undo(cursor, group, savepoint, exc)
        raise
    _release(cursor, group, savepoint)
    return result


async def _finish(group: _Group) -> None:
    """End the transaction, give the connection back, then tell the members."""
    failure: BaseException | None = None
    interrupted: BaseException | None = None
    try:
        if group.discard is not None or group.members == 0:
            await group.conn.rollback()
        else:
            await group.conn.commit()
    except Exception as exc:
        failure = exc
    except BaseException as exc:  # cancelled at shutdown: the members must not wait forever
        interrupted = exc
    finally:
        if failure is not None or interrupted is not None:
            with suppress(Exception):  # a failed COMMIT leaves SQLite's transaction open
                await group.conn.rollback()
        with suppress(Exception):  # the pool replaces a connection it cannot reset
            await group.conn.close()
    cause = group.discard or interrupted
    if failure is None and cause is not None:
        failure = DatabaseUnavailable("the shared transaction was rolled back")
        failure.__cause__ = cause
    if failure is None:
        group.committed.set_result(None)
    else:
        group.committed.set_exception(failure)
    if interrupted is not None:
        raise interrupted


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def transactions_for(engine: AsyncEngine) -> Transactions:
    """Shared commits on SQLite (one writer), a transaction per caller elsewhere."""
    if engine.dialect.name == "sqlite":
        return SharedCommit(engine)
    return OwnTransactions(engine)
