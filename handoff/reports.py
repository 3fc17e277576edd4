"""Aggregate figures for supervisors: counts only, no text and no aliases."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import Case
from handoff.models import CaseNote
from handoff.queue import OPEN_STATUSES, PRIORITY_RANK


@dataclass(frozen=True)
class Report:
    open_by_priority: list[tuple[str, int]]
    closed_by_outcome: list[tuple[str, int]]
    referrals_by_service: list[tuple[str, int]]
    escalated_open: int


async def build_report(db: AsyncSession) -> Report:
    async def grouped(column: object, *where: object) -> list[tuple[str, int]]:
        rows = await db.execute(select(column, func.count()).where(*where)  # type: ignore[call-overload]
                                .group_by(column).order_by(func.count().desc()))
        return [(str(code), int(count)) for code, count in rows]

    by_priority = dict(await grouped(Case.priority, Case.status.in_(OPEN_STATUSES)))
    return Report(
        open_by_priority=[(p, by_priority.get(p, 0)) for p in PRIORITY_RANK],
        closed_by_outcome=await grouped(Case.outcome, Case.status == "closed"),
        referrals_by_service=await grouped(CaseNote.service_id, CaseNote.kind == "referral"),
        escalated_open=int(await db.scalar(select(func.count()).select_from(Case).where(
            Case.status.in_(OPEN_STATUSES), Case.escalated_at.is_not(None))) or 0),
    )
