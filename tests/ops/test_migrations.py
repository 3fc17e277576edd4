"""``sanad db upgrade`` and every process's start-up migrate at once: the lock makes the first
one migrate and the others wait, on SQLite (a file lock) and PostgreSQL (an advisory lock)."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from sqlalchemy import text

from bot.store.db import create_engine, upgrade
from bot.store.migrations import HEAD


async def test_concurrent_upgrades_of_a_fresh_database_all_succeed(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
        async with engines[0].connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert [row[0] for row in versions] == [HEAD]  # one row: nobody migrated twice
        await upgrade(engines[1])  # and again: nothing to do
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_sqlite_upgrade_waits_for_the_process_holding_the_lock(tmp_path: Path) -> None:
    database = tmp_path / "sanad.db"
    lock = os.open(tmp_path / "sanad.db.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # another process is migrating
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        waiting = asyncio.create_task(upgrade(engine))
        await asyncio.sleep(0.5)
        assert not waiting.done(), "the upgrade must wait for the lock"
        os.close(lock)  # the other process finished
        await asyncio.wait_for(waiting, 60)
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT version_num FROM alembic_version")) == HEAD
    finally:
        await engine.dispose()
