from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import func, inspect, make_url, select

from bot.app import Sanad
from bot.store.db import DatabaseUnavailable, create_engine, script_heads, upgrade
from bot.store.migrations import HEAD
from bot.store.models import Case
from bot.store.schema import metadata


def test_head_constant_matches_alembic() -> None:
    assert script_heads() == {HEAD}


async def test_migrations_create_exactly_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # idempotent, and fast once at head
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert tables - {"alembic_version"} == set(metadata().tables)


async def test_an_unreachable_database_is_a_clear_error() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    with pytest.raises(DatabaseUnavailable):
        await upgrade(engine)
    await engine.dispose()


def _can_take_the_write_lock(path: str) -> bool:
    """What another writer (a turn) finds: the write lock free, or held (no waiting)."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def test_a_reading_transaction_never_holds_sqlites_write_lock(
    sanad_sqlite: Sanad, sqlite_url: str,
) -> None:
    """The console's watcher polls while turns write: its reads must not queue them."""
    path = make_url(sqlite_url).database
    assert path
    store = sanad_sqlite.store
    async with store.reading() as db:
        assert await db.scalar(select(func.count()).select_from(Case)) == 0
        assert _can_take_the_write_lock(path), "a reader blocked a writer"
    async with store.session() as db:
        await db.scalar(select(func.count()).select_from(Case))
        assert not _can_take_the_write_lock(path), "back-office work still writes safely"
