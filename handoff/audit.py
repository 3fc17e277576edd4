"""The audit trail: one row per case read or back-office action, written in the same
transaction as the read or action it records, so neither can happen without the other."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.repository import utcnow
from handoff.models import AuditEntry


def record(
    db: AsyncSession, actor: str, action: str, case_id: int | None = None,
    detail: str | None = None,
) -> None:
    """Add an audit row (actor, action, case, time, an optional fixed code; never text)."""
    db.add(AuditEntry(actor=actor, action=action, case_id=case_id, detail=detail, at=utcnow()))
