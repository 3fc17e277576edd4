from __future__ import annotations

import pytest
from sqlalchemy import inspect

from bot.store.db import DatabaseUnavailable, create_engine, script_heads, upgrade
from bot.store.migrations import HEAD
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
