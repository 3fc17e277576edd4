"""Shared fixtures: a real engine on SQLite and, when reachable, on the local PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import Sanad, build
from bot.config import Settings
from nlu import EmbeddedNLU
from nlu.safeguard import EmbeddedSafety

PG_URL = os.environ.get("SANAD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SECRET = b"test-secret-key-that-is-long-enough"


def postgres_reachable() -> bool:
    host_port = PG_URL.split("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 5432)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def nlu_cache(models_dir: Path) -> Path:
    """The session's model folder with both models trained in it, for subprocesses given it
    as SANAD_CACHE_DIR (sanad chat, serve, worker): none of them trains again."""
    EmbeddedNLU.load(cache_dir=models_dir)
    EmbeddedSafety.load(models_dir)
    return models_dir


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder, or ``SANAD_CACHE_DIR`` when set (local runs: the models are cached by
    a hash of their training data, so a changed data set still trains anew)."""
    shared = os.environ.get("SANAD_CACHE_DIR")
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    return tmp_path_factory.mktemp("nlu-cache")


@pytest.fixture(scope="session")
def embedded_nlu(nlu_cache: Path) -> EmbeddedNLU:
    """Trained once per test session (the classifier caches on disk by data hash)."""
    return EmbeddedNLU.load(cache_dir=nlu_cache)


@pytest.fixture(scope="session")
def safety_detector(nlu_cache: Path) -> EmbeddedSafety:
    """The safety layer's detector, trained once per test session next to the NLU model."""
    return EmbeddedSafety.load(nlu_cache)


async def reset_postgres(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def _admin(statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own, so concurrent runs on one server never collide;
    falls back to the configured database when the role may not create databases."""
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL.split('@')[-1]}")
    name = f"sanad_test_{os.getpid()}"
    try:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception:
        yield PG_URL
        return
    yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that takes this runs on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'sanad.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    asyncio.run(reset_postgres(url))
    yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'sanad.db'}"


def make_settings(database_url: str, **overrides: object) -> Settings:
    # Tests drive one user through dozens of turns in a second: flood control is relaxed here
    # and tested with the real defaults in tests/test_flood.py.
    base = Settings(database_url=database_url, secret_key=SECRET, environment="development",
                    show_drafts=True, flood_rate=10_000.0, flood_burst=10_000)
    return replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def sanad(database_url: str, embedded_nlu: EmbeddedNLU,
                safety_detector: EmbeddedSafety) -> AsyncIterator[Sanad]:
    app = await build(make_settings(database_url), nlu=embedded_nlu, safety=safety_detector)
    yield app
    await app.store.engine.dispose()


@pytest.fixture
async def sanad_sqlite(sqlite_url: str, embedded_nlu: EmbeddedNLU,
                       safety_detector: EmbeddedSafety) -> AsyncIterator[Sanad]:
    app = await build(make_settings(sqlite_url), nlu=embedded_nlu, safety=safety_detector)
    yield app
    await app.store.engine.dispose()


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Tests that call ``bot.cli.main`` in-process let it configure logging (it replaces the
    root handlers with one on the stderr of the moment, which pytest closes after the test, and
    sets the levels of some loggers): put every logger back as it was, so no later test logs
    into a closed stream or loses the records it asserts on."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))
