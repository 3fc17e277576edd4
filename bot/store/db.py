"""Database engine creation and schema migrations (Alembic), for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.store import direct
from bot.store.migrations import HEAD
from bot.store.sqlite_inline import inline_creator

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or written: callers answer 503 / 'try again later'."""

    @property
    def reason(self) -> str:
        """``disk full``, ``read-only``, ``locked``, ``unreachable`` or the error class: safe
        to log (never the statement or its parameters, which SQLAlchemy puts in messages)."""
        cause = self.__cause__
        return describe_error(cause) if cause is not None else str(self)


def describe_error(exc: BaseException) -> str:
    """A fixed label for a database error, from the driver's message or SQLSTATE."""
    orig = getattr(exc, "orig", None) or exc
    message = str(getattr(orig, "args", [""])[0] if getattr(orig, "args", None) else "").lower()
    state = str(getattr(orig, "sqlstate", "") or getattr(orig, "pgcode", "") or "")
    if "disk is full" in message or "disk full" in message or state == "53100":
        return "disk full"
    if "readonly" in message or "read-only" in message or state == "25006":
        return "read-only"
    if "database is locked" in message:
        return "locked"
    if isinstance(orig, (ConnectionError, OSError)) or "connect" in message:
        return "unreachable"
    return type(orig).__name__


def json_dumps(value: Any) -> str:
    """JSON columns through orjson (the stdlib encoder was ~2% of a turn's CPU); keys that
    are not strings become strings, as with ``json.dumps``."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


POOL_SIZE = 10
POOL_OVERFLOW = 20
"""PostgreSQL connections kept, and opened beyond them under load: at most 30 per process."""


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine with the settings each backend needs to behave under load."""
    common: dict[str, Any] = {"echo": echo, "json_serializer": json_dumps,
                              "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        _make_private(url)

        creator = inline_creator(url, timeout=30)
        if creator is None:
            engine = create_async_engine(url, connect_args={"timeout": 30}, **common)
        else:  # see sqlite_inline: no thread hop per call, in-process writers queue on the pool
            engine = create_async_engine(url, async_creator=creator, pool_size=1,
                                         max_overflow=0, pool_timeout=60, **common)
        _configure_sqlite(engine)
        return engine
    # No pool_pre_ping: it costs a round trip per transaction (two or three per turn). After a
    # server restart the first statement on a stale connection fails instead: that request
    # gets DatabaseUnavailable (Telegram: 503, delivered again) and the pool is invalidated.
    return create_async_engine(
        url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_pre_ping=False,
        pool_recycle=1800, **common,
    )


def _make_private(url: str) -> None:
    """The database file is readable by its owner only (0600), created so before SQLite opens
    it; SQLite gives its -wal and -shm files the same permissions."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


async def checkpoint(engine: AsyncEngine) -> None:
    """After an erasure on SQLite: copy the WAL into the database (whose freed pages
    ``secure_delete`` zeroes) and truncate it, so the erased rows' old pages do not linger in
    the -wal file. Best effort: a busy checkpoint is retried by the next erasure."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:  # no BEGIN: a checkpoint cannot run in a transaction
        await conn.run_sync(direct.execute_driver_sql, "PRAGMA wal_checkpoint(TRUNCATE)")


READ_ONLY = "sanad_read_only"
"""Execution option of a transaction that only reads (:meth:`Store.reading`)."""


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL for concurrent readers, and BEGIN IMMEDIATE so a turn's read-then-write never hits
    SQLITE_BUSY_SNAPSHOT: writers queue on the busy timeout instead of failing."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA secure_delete=ON")  # erased data is overwritten, not just unlinked
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On the DBAPI cursor: SQLAlchemy's statement execution would cost more than the
        # BEGIN itself, once per transaction (bot.store.direct). A reading transaction
        # (READ_ONLY) takes no write lock, so a console's polling never queues a turn.
        reading = conn.get_execution_options().get(READ_ONLY, False)
        direct.execute_driver_sql(conn, "BEGIN" if reading else "BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def script_heads() -> set[str]:
    """Alembic's own idea of the newest revisions (for the test that guards ``HEAD``)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(cfg).get_heads())


async def _at_head(engine: AsyncEngine) -> bool:
    """One cheap query: is the schema already at the newest revision?"""
    try:
        async with engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    except (OperationalError, DBAPIError, OSError):  # no version table yet, or no database
        return False
    return [row[0] for row in current] == [HEAD]


MIGRATION_LOCK_ID = 0x53616E6164  # "Sanad": the PostgreSQL advisory lock key of migrations
MIGRATION_LOCK_POLL_S = 0.1


async def upgrade(engine: AsyncEngine) -> None:
    """Apply all migrations (``sanad db upgrade``; also run by ``serve``, ``worker`` and
    ``chat`` at start). Idempotent and safe when several processes start at once: the first
    takes a lock (PostgreSQL: an advisory lock held for the migration's transaction; SQLite: an
    exclusive lock on ``<database>.migrate.lock``), the others wait for it, then find the
    schema at head and do nothing."""
    if await _at_head(engine):
        return
    try:
        async with _sqlite_migration_lock(engine), engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": MIGRATION_LOCK_ID})
            await conn.run_sync(_upgrade)  # Alembic reads the version under the lock
    except (OperationalError, DBAPIError, OSError) as exc:
        raise DatabaseUnavailable(f"cannot migrate the database: {describe_error(exc)}") from exc
    log.info("database schema migrated")


@asynccontextmanager
async def _sqlite_migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """An exclusive ``flock`` next to a SQLite file database for the migration (WAL set-up and
    DDL of two first starts would otherwise race); a no-op for other databases and memory."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    import fcntl

    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".migrate.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:  # non-blocking tries: never block the event loop on the lock
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(MIGRATION_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated schema, disposed afterwards: for one-shot commands and jobs."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def transaction(url: str) -> AsyncIterator[AsyncSession]:
    """One transaction on a migrated schema (CLI commands that read or write a few rows).

    A database that cannot be written (full disk, read-only) or reached is a
    :class:`DatabaseUnavailable`, not a traceback quoting the statement and its parameters."""
    try:
        async with open_database(url) as engine, \
                async_sessionmaker(engine, expire_on_commit=False)() as db, db.begin():
            yield db
    except (OperationalError, OSError) as exc:
        raise DatabaseUnavailable(describe_error(exc)) from exc
    except DBAPIError as exc:  # constraint violations stay what they are
        if describe_error(exc) not in ("disk full", "read-only", "unreachable"):
            raise
        raise DatabaseUnavailable(describe_error(exc)) from exc
