"""SQLite for the async engine without a thread hop per call.

aiosqlite runs each connection in a thread of its own and hands every call to it through a
queue, then wakes the event loop with ``call_soon_threadsafe``. SQLAlchemy makes three or four
such calls per statement (cursor, execute, fetch, close): on a small shared VM a hop costs
0.1–0.2 ms of CPU, so a turn's ~15 statements cost more in hops than in SQL.

In WAL mode with ``synchronous=NORMAL`` a statement takes microseconds and a commit does not
fsync, so this module runs the sqlite3 calls directly on the event loop instead, behind the
same awaitable interface aiosqlite offers (SQLAlchemy's ``sqlite+aiosqlite`` dialect is used
unchanged, through ``async_creator``). The engine gets one connection (a pool of one): every
transaction starts with ``BEGIN IMMEDIATE`` anyway (one writer at a time), so in-process
transactions queue on the pool (an asyncio wait) rather than in SQLite's busy handler, which
would block the loop. Only another process holding the write lock (``sanad worker``) can make
a statement wait in the busy handler, for as long as that process's transaction lasts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import Any

from sqlalchemy.engine import make_url


class _Immediate:
    """Stands in for aiosqlite's request queue: SQLAlchemy's ``isolation_level`` setter puts
    ``(future, function)`` on it and waits for the future."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineCursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The part of ``aiosqlite.Connection`` that SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # aiosqlite's "still open" marker
        self._tx = _Immediate()

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for callers that skip the awaitable interface
        (:mod:`bot.store.direct`: nothing here ever waits, so awaiting is pure overhead)."""
        return self._conn

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._self().__await__()

    async def _self(self) -> InlineConnection:
        return self

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_creator(url: str, *, timeout: float) -> Callable[[], Awaitable[InlineConnection]] | None:
    """An ``async_creator`` for a file database URL; ``None`` for anything else (in-memory
    databases and URLs with options keep aiosqlite)."""
    parsed = make_url(url)
    path = parsed.database
    if not path or path == ":memory:" or path.startswith("file:") or parsed.query:
        return None

    async def connect() -> InlineConnection:
        return InlineConnection(sqlite3.connect(path, timeout=timeout, check_same_thread=False,
                                                isolation_level=None))

    return connect
