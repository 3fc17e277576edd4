"""A turn's hot statements run on the connection's DBAPI cursor, below SQLAlchemy's execution.

Profiles of the Telegram pipeline put half of the bot's CPU in SQLAlchemy's statement
execution (execution contexts, result objects, ORM loading) while SQLite itself spent a tenth
of that. The statements of a turn stay SQLAlchemy constructs, compiled once per dialect, with
the bind and result processors of their column types, so the SQL and the stored formats are
SQLAlchemy's own; only running them skips the machinery. They run on the same pooled
connection and in the same transaction as the turn's ORM work (``run_sync`` hands us the
DBAPI connection SQLAlchemy uses, whose driver adapter starts PostgreSQL's transaction and
keeps asyncpg's prepared statements), so a turn still commits or rolls back as one.

Errors surface as SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError` (without the statement's
parameters), and a lost connection is invalidated in the pool, as SQLAlchemy would do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from bot.store.sqlite_inline import InlineConnection

T = TypeVar("T")
Processor = Callable[[Any], Any]
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Compiled:
    """One statement for one dialect: SQL text, parameter order and value conversions."""

    sql: str
    binds: tuple[tuple[str, Processor | None], ...]
    """Positional parameters: the name in the caller's values, and the type's conversion."""
    constants: Mapping[str, Any]
    """Values written into the statement (``status="sent"``), bound like the others."""
    columns: tuple[Processor | None, ...]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        # list comprehensions, not generators: half the cost on Python 3.11
        if self.constants:
            values = {**self.constants, **values}
        return tuple([values[name] if process is None else process(values[name])
                      for name, process in self.binds])

    def row(self, raw: Sequence[Any]) -> Row:
        return tuple([value if process is None or value is None else process(value)
                      for value, process in zip(raw, self.columns, strict=True)])


def compile_statement(statement: ClauseElement, dialect: Dialect) -> Compiled:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    names = compiled.positiontup or ()
    binds = tuple(
        (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in names
    )
    constants = {name: compiled.binds[name].effective_value for name in names
                 if not compiled.binds[name].required}
    selected: Iterable[Any] = (getattr(statement, "selected_columns", None)  # SELECT
                               or getattr(statement, "exported_columns", None)  # RETURNING
                               or ())
    columns = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                    for c in selected)
    return Compiled(compiled.string, binds, constants, columns)


@dataclass(eq=False)
class Statement:
    """A hot statement: built by ``build(dialect_name)`` and compiled once per dialect."""

    name: str
    build: Callable[[str], ClauseElement]
    _compiled: dict[str, Compiled] = field(default_factory=dict, repr=False)

    def for_dialect(self, dialect: Dialect) -> Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = compile_statement(
                self.build(dialect.name), dialect)
        return compiled


@dataclass(eq=False)
class Statements:
    """A family of hot statements told apart by a key (e.g. the columns an UPDATE sets)."""

    factory: Callable[[tuple[str, ...]], Callable[[str], ClauseElement]]
    _members: dict[tuple[str, ...], Statement] = field(default_factory=dict, repr=False)

    def get(self, key: tuple[str, ...]) -> Statement:
        statement = self._members.get(key)
        if statement is None:
            statement = self._members[key] = Statement(",".join(key), self.factory(key))
        return statement


class Cursor:
    """The DBAPI cursor of the turn's connection, speaking in :class:`Statement` s."""

    __slots__ = ("_cursor", "_dialect")

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def raw(self, sql: str) -> None:
        self._cursor.execute(sql)

    def execute(self, statement: Statement, values: Mapping[str, Any]) -> int:
        """Run a statement without rows; its row count."""
        compiled = statement.for_dialect(self._dialect)
        self._cursor.execute(compiled.sql, compiled.parameters(values))
        return int(self._cursor.rowcount)

    def executemany(self, statement: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
        compiled = statement.for_dialect(self._dialect)
        self._cursor.executemany(compiled.sql, [compiled.parameters(v) for v in rows])

    def one(self, statement: Statement, values: Mapping[str, Any]) -> Row | None:
        """The first row (converted), or ``None``."""
        compiled = statement.for_dialect(self._dialect)
        self._cursor.execute(compiled.sql, compiled.parameters(values))
        raw = self._cursor.fetchone()
        return None if raw is None else compiled.row(raw)

    def all(self, statement: Statement, values: Mapping[str, Any]) -> list[Row]:
        compiled = statement.for_dialect(self._dialect)
        self._cursor.execute(compiled.sql, compiled.parameters(values))
        return [compiled.row(raw) for raw in self._cursor.fetchall()]


async def run(connection: AsyncConnection, work: Callable[[Cursor], T]) -> T:
    """Run ``work`` with a cursor on ``connection``, inside its current transaction.

    On the inline SQLite driver the work runs right here: its statements never wait, so the
    trip through SQLAlchemy's greenlet bridge (``run_sync``) would cost more than they do.
    """
    sync = connection.sync_connection
    if sync is not None and not sync.invalidated and _inline(sync.connection) is not None:
        try:
            return _run(sync, work, invalidate=False)
        except DBAPIError as exc:
            if exc.connection_invalidated:  # the pool closes it: that may wait
                await connection.invalidate(exc.orig)
            raise
    return await connection.run_sync(_run, work)


async def run_in_transaction(connection: AsyncConnection, work: Callable[[Cursor], T]) -> T:
    """``work`` in a transaction of its own on ``connection``: begin, statements and commit
    in one pass through SQLAlchemy's greenlet bridge instead of three."""
    return await connection.run_sync(_in_transaction, work)


def _in_transaction(connection: Connection, work: Callable[[Cursor], T]) -> T:
    with connection.begin():
        return _run(connection, work)


def execute_driver_sql(connection: Connection, sql: str) -> None:
    """One parameterless statement on the cursor (a sync ``Connection``, e.g. in an event)."""
    _run(connection, lambda cursor: cursor.raw(sql))


def _run(connection: Connection, work: Callable[[Cursor], T], *, invalidate: bool = True) -> T:
    """``work`` on a cursor; in SQLAlchemy's greenlet unless the driver is inline (then
    ``invalidate`` is False: the caller invalidates a lost connection, which may wait)."""
    dialect = connection.dialect
    proxied = connection.connection
    inline = _inline(proxied)
    cursor: Any = None
    try:
        cursor = proxied.cursor() if inline is None else inline.cursor()
        return work(Cursor(cursor, dialect))
    except dialect.loaded_dbapi.Error as exc:
        disconnected = dialect.is_disconnect(exc, proxied, None if inline else cursor)
        if disconnected and invalidate:
            _invalidate_pool(connection, exc)
            connection.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error,
                                  hide_parameters=True, dialect=dialect,
                                  connection_invalidated=disconnected) from exc
    finally:
        if cursor is not None:
            with suppress(dialect.loaded_dbapi.Error):  # its connection may be gone
                cursor.close()


def _invalidate_pool(connection: Connection, exc: BaseException) -> None:
    """On a disconnect, every pooled connection made before now is replaced at its next checkout,
    not only this one: a restarted or failed-over server dropped them all. SQLAlchemy's own
    error handling does exactly this (``invalidate_pool_on_disconnect``, through the pool's
    ``_invalidate``); without it each dropped connection would fail one more turn, or the
    channel's fallback after a failed write."""
    connection.engine.pool._invalidate(connection.connection, exc)


def _inline(proxied: Any) -> sqlite3.Connection | None:
    """The sqlite3 connection behind the inline driver (:mod:`bot.store.sqlite_inline`)."""
    driver = getattr(proxied, "driver_connection", None)
    return driver.sqlite if isinstance(driver, InlineConnection) else None
