"""Back-office jobs for ``sanad worker``: SLA escalation and clean-up of expired logins.

Each opens its own short transaction, so the worker can call them on any schedule.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from bot.config import Settings
from bot.store.repository import Store, utcnow
from handoff.actions import escalate_overdue
from handoff.auth import AuthPolicy
from handoff.models import ConsoleSession, LoginThrottle


async def escalate(store: Store, settings: Settings, now: datetime | None = None) -> list[int]:
    """Flag unclaimed urgent/high cases past ``SANAD_SLA_URGENT_MIN``/``SANAD_SLA_HIGH_MIN``."""
    async with store.session() as db:
        return await escalate_overdue(db, now or utcnow(), settings.sla_urgent_minutes,
                                      settings.sla_high_minutes)


async def purge_logins(store: Store, policy: AuthPolicy | None = None,
                       now: datetime | None = None) -> int:
    """Delete idle or too-old console sessions and finished lockouts; returns rows removed."""
    policy, now = policy or AuthPolicy(), now or utcnow()
    async with store.session() as db:
        sessions = await db.execute(delete(ConsoleSession).where(
            (ConsoleSession.last_seen_at < now - policy.idle)
            | (ConsoleSession.created_at < now - policy.lifetime)))
        throttles = await db.execute(delete(LoginThrottle).where(
            LoginThrottle.window_start < now - policy.lockout,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now)))
    return int(sessions.rowcount or 0) + int(throttles.rowcount or 0)  # type: ignore[attr-defined]
