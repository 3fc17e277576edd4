"""bot.store.direct: hot statements below SQLAlchemy's execution, same formats, same errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store import direct
from bot.store.db import open_database
from bot.store.models import EventRecord, User
from bot.store.repository import table_of
from bot.store.sqlite_inline import InlineConnection
from tests.conftest import reset_postgres

USERS, EVENTS = table_of(User), table_of(EventRecord)
MOMENT = datetime(2026, 11, 23, 21, 5, 7, 123456, tzinfo=UTC)

INSERT_USER = direct.Statement("t-insert-user", lambda d: insert(USERS).values(
    {c: bindparam(c) for c in ("key", "channel", "address_enc", "language_locked",
                               "unreachable", "created_at", "last_active_at")},
).returning(USERS.c.id))
READ_USER = direct.Statement("t-read-user", lambda d: select(
    USERS.c.address_enc, USERS.c.language_locked, USERS.c.created_at,
).where(USERS.c.key == bindparam("key")))
INSERT_EVENT = direct.Statement("t-insert-event", lambda d: insert(EVENTS).inline().values(
    {c: bindparam(c) for c in ("user_id", "name", "data", "created_at")}))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with open_database(database_url) as engine:
        yield engine


def _user(key: str) -> dict[str, object]:
    return {"key": key, "channel": "telegram", "address_enc": b"\x00sealed\xff",
            "language_locked": True, "unreachable": False, "created_at": MOMENT,
            "last_active_at": MOMENT}


async def test_direct_writes_read_back_through_sqlalchemy_and_the_other_way(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        row = await direct.run_in_transaction(conn, lambda c: c.one(INSERT_USER, _user("k1")))
        assert row is not None
        user_id = row[0]

        def add_events(cursor: direct.Cursor) -> None:
            cursor.executemany(INSERT_EVENT, [
                {"user_id": user_id, "name": "opened", "data": {"module": "m1", "n": 1},
                 "created_at": MOMENT},
                {"user_id": user_id, "name": "rated", "data": {"useful": True},
                 "created_at": MOMENT}])

        await direct.run_in_transaction(conn, add_events)
    async with engine.connect() as conn:  # SQLAlchemy's own execution reads what direct wrote
        user = (await conn.execute(select(USERS).where(USERS.c.id == user_id))).one()
        events = (await conn.execute(select(EVENTS.c.name, EVENTS.c.data, EVENTS.c.created_at)
                                     .where(EVENTS.c.user_id == user_id)
                                     .order_by(EVENTS.c.id))).all()
        await conn.execute(insert(USERS).values(_user("k2")))  # and direct reads SQLAlchemy's
        await conn.commit()
        theirs = await direct.run_in_transaction(conn, lambda c: c.one(READ_USER, {"key": "k2"}))
    assert user.address_enc == b"\x00sealed\xff" and user.language_locked is True
    assert user.created_at.replace(tzinfo=UTC) == MOMENT
    assert [(e.name, e.data) for e in events] == [("opened", {"module": "m1", "n": 1}),
                                                  ("rated", {"useful": True})]
    assert theirs is not None
    address, locked, created = theirs
    assert address == b"\x00sealed\xff" and locked is True
    assert created.replace(tzinfo=UTC) == MOMENT


async def test_a_failing_statement_is_sqlalchemys_error_without_parameters_and_rolls_back(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        await direct.run_in_transaction(conn, lambda c: c.one(INSERT_USER, _user("dup")))

    def insert_twice(cursor: direct.Cursor) -> None:
        cursor.one(INSERT_USER, _user("first-of-two"))
        cursor.one(INSERT_USER, _user("dup"))  # unique key

    async with engine.connect() as conn:
        with pytest.raises(IntegrityError) as raised:
            await direct.run_in_transaction(conn, insert_twice)
    assert isinstance(raised.value, DBAPIError)
    assert "sealed" not in str(raised.value) and "first-of-two" not in str(raised.value)
    async with engine.connect() as conn:
        found = await direct.run_in_transaction(
            conn, lambda c: c.one(READ_USER, {"key": "first-of-two"}))
    assert found is None  # the whole transaction rolled back


def test_constants_in_a_statement_are_bound_like_parameters() -> None:
    from sqlalchemy.dialects.sqlite import aiosqlite

    statement = select(USERS.c.id).where(USERS.c.channel == "telegram",
                                         USERS.c.key == bindparam("key"))
    compiled = direct.compile_statement(statement, aiosqlite.dialect())
    assert compiled.parameters({"key": "k"}) == ("telegram", "k")
    with pytest.raises(KeyError):
        compiled.parameters({})  # a missing value is an error, never a silent NULL


async def test_on_the_inline_sqlite_driver_statements_skip_the_greenlet_bridge(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with open_database(sqlite_url) as engine, engine.connect() as conn:
        await conn.begin()

        def no_bridge(*args: object, **kwargs: object) -> None:
            raise AssertionError("run_sync used")

        monkeypatch.setattr(AsyncConnection, "run_sync", no_bridge)
        await direct.run(conn, lambda c: c.one(INSERT_USER, _user("inline")))
        found = await direct.run(conn, lambda c: c.one(READ_USER, {"key": "inline"}))
        monkeypatch.undo()
        await conn.commit()
    assert found is not None and found[1] is True


async def test_a_lost_inline_connection_is_invalidated_and_replaced(sqlite_url: str) -> None:
    async with open_database(sqlite_url) as engine:
        async with engine.connect() as conn:
            await conn.begin()
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, InlineConnection)
            raw.driver_connection.sqlite.close()  # what a lost connection looks like
            with pytest.raises(DBAPIError) as raised:
                await direct.run(conn, lambda c: c.one(READ_USER, {"key": "any"}))
            assert raised.value.connection_invalidated
            assert conn.invalidated
        async with engine.connect() as conn:  # the pool made a new one
            await direct.run(conn, lambda c: c.one(READ_USER, {"key": "any"}))


async def test_a_dropped_postgresql_connection_renews_the_whole_pool(postgres_url: str) -> None:
    """A restarted or failed-over server has dropped every pooled connection: after the first
    failure the pool replaces them all (as SQLAlchemy does on a disconnect), so the next turn
    (or the channel's fallback "mark the outbox rows sent") does not fail on another one."""
    await reset_postgres(postgres_url)
    async with open_database(postgres_url) as engine:
        gate = asyncio.Barrier(3)

        async def pooled_backend() -> int:
            async with engine.connect() as conn:
                await gate.wait()  # three connections checked out at once: three in the pool
                return int((await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())

        pids = await asyncio.gather(*(pooled_backend() for _ in range(3)))
        admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid",
                                pids)
        finally:
            await admin.close()

        with pytest.raises(DBAPIError) as raised:
            async with engine.connect() as conn:
                await direct.run_in_transaction(conn, lambda c: c.one(READ_USER, {"key": "a"}))
        assert raised.value.connection_invalidated
        for _ in range(2):  # each time a new connection, never another dropped one
            async with engine.connect() as conn:
                await direct.run_in_transaction(conn, lambda c: c.one(READ_USER, {"key": "a"}))
