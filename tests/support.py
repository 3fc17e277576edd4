"""Helpers shared by the channel tests: a bot core on a test database, and a database outage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot.app import Sanad, build
from bot.config import Settings
from nlu import EmbeddedNLU


@asynccontextmanager
async def bot_core(settings: Settings, nlu: EmbeddedNLU) -> AsyncIterator[Sanad]:
    sanad = await build(settings, nlu=nlu)
    try:
        yield sanad
    finally:
        await sanad.store.engine.dispose()  # not aclose(): the NLU is shared by the session


@contextmanager
def database_down(sanad: Sanad) -> Iterator[None]:
    """Every statement fails as if the server were gone, until the block ends."""
    engine = sanad.store.engine.sync_engine

    def refuse(*args: Any) -> None:
        raise OperationalError("(outage)", {}, ConnectionRefusedError("database is down"))

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", refuse)
