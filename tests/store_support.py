"""Helpers shared by the tests of the store's transactions: a user row written on the cursor,
and a log of the engine's commits and rollbacks."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import direct
from bot.store.models import User
from bot.store.repository import table_of

USERS = table_of(User)
MOMENT = datetime(2026, 11, 23, 23, 40, tzinfo=UTC)
INSERT_USER = direct.Statement("test-insert-user", lambda d: insert(USERS).values(
    {c: bindparam(c) for c in ("key", "channel", "language_locked", "unreachable",
                               "created_at", "last_active_at")}))


def user_row(key: str) -> dict[str, object]:
    """The values of :data:`INSERT_USER` for a user ``key``."""
    return {"key": key, "channel": "telegram", "language_locked": False, "unreachable": False,
            "created_at": MOMENT, "last_active_at": MOMENT}


def transaction_log(engine: AsyncEngine) -> list[str]:
    """Every COMMIT and ROLLBACK of a transaction on ``engine`` from now on, in order."""
    seen: list[str] = []
    event.listen(engine.sync_engine, "commit", lambda conn: seen.append("commit"))
    event.listen(engine.sync_engine, "rollback", lambda conn: seen.append("rollback"))
    return seen
