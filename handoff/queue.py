"""The case queue: cases are opened from ``HandoffRequested`` and ordered by priority, then age.

A user with an open case joins it instead of opening another; a more urgent request raises the
open case's priority. Nothing here stores a platform id: cases point at the pseudonymous user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import HandoffRequested
from bot.store.models import Case, CaseMessage, User
from bot.store.repository import TurnTransaction, as_utc, utcnow

PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2}
OPEN_STATUSES = ("waiting", "claimed", "transferred")


@dataclass(frozen=True)
class CaseSummary:
    """A case as operators and integrators see it: no text, no phone number, no platform id."""

    id: int
    alias: str
    status: str
    priority: str
    risk_level: str | None
    indicators: tuple[str, ...]
    language: str
    channel: str
    created_at: datetime
    claimed_at: datetime | None
    assignee: str | None
    contact_paused: bool = False
    """The person hid the chat (quick exit): replies are held until they come back."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "alias": self.alias,
            "status": "waiting" if self.status == "transferred" else self.status,
            "priority": self.priority, "risk_level": self.risk_level,
            "indicators": list(self.indicators), "language": self.language,
            "channel": self.channel, "created_at": self.created_at.isoformat(),
            "claimed_at": self.claimed_at.isoformat() if self.claimed_at else None,
            "assignee": self.assignee, "contact_paused": self.contact_paused,
        }


def summarize(case: Case, *, contact_paused: bool = False) -> CaseSummary:
    return CaseSummary(
        id=case.id, alias=case.alias, status=case.status, priority=case.priority,
        risk_level=case.risk_level, indicators=tuple(case.indicators or ()),
        language=case.language, channel=case.channel, created_at=as_utc(case.created_at),
        claimed_at=as_utc(case.claimed_at) if case.claimed_at else None, assignee=case.assignee,
        contact_paused=contact_paused,
    )


async def contact_paused(db: AsyncSession, case: Case) -> bool:
    """Whether the case's person paused contact (quick exit) and has not come back yet."""
    if case.user_id is None:
        return False
    paused = await db.scalar(select(User.contact_paused_at).where(User.id == case.user_id))
    return paused is not None


async def open_or_join(tx: TurnTransaction, request: HandoffRequested) -> Case:
    """Open a case for the turn's user, or join (and if needed escalate) their open one."""
    user = tx.user
    case = await tx.db.scalar(
        select(Case).where(Case.user_id == user.id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id.desc()).limit(1)
    )
    rank = PRIORITY_RANK.get(request.priority, PRIORITY_RANK["normal"])
    if case is None:
        case = Case(
            user_id=user.id, alias=tx.pseudonyms.alias(user.key), status="waiting",
            priority=request.priority, priority_rank=rank, reason=request.reason,
            risk_level=request.risk_level, indicators=list(request.indicators),
            language=user.language or "ar", channel=user.channel, created_at=utcnow(),
        )
        tx.db.add(case)
        await tx.db.flush()
        return case
    if rank < case.priority_rank:
        case.priority, case.priority_rank = request.priority, rank
    if request.risk_level and not case.risk_level:
        case.risk_level = request.risk_level
    merged = list(dict.fromkeys([*(case.indicators or []), *request.indicators]))
    case.indicators = merged
    return case


async def add_user_message(tx: TurnTransaction, text: str) -> None:
    case = await tx.db.scalar(
        select(Case).where(Case.user_id == tx.user.id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id.desc()).limit(1)
    )
    if case is None:
        return
    tx.db.add(CaseMessage(
        case_id=case.id, sender="user",
        text_enc=tx.cipher.encrypt_text(text, context=b"case_messages.text"),
        created_at=utcnow(),
    ))


async def end_by_user(tx: TurnTransaction) -> None:
    """The user stopped talking to a person: close their open case, saying so in the thread."""
    case = await tx.db.scalar(
        select(Case).where(Case.user_id == tx.user.id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id.desc()).limit(1)
    )
    if case is None:
        return
    case.status, case.outcome, case.closed_at = "closed", "ended_by_user", utcnow()


async def forget_user(tx: TurnTransaction) -> None:
    """'Delete my data' for the back office: threads and notes go, open cases close, and the
    cases keep only their outcome and priority for statistics, unlinked from the user."""
    from handoff.models import CaseNote

    user_id = tx.user.id
    case_ids = select(Case.id).where(Case.user_id == user_id)
    await tx.db.execute(delete(CaseMessage).where(CaseMessage.case_id.in_(case_ids)))
    await tx.db.execute(delete(CaseNote).where(CaseNote.case_id.in_(case_ids)))
    await tx.db.execute(
        update(Case).where(Case.user_id == user_id, Case.status.in_(OPEN_STATUSES))
        .values(status="closed", outcome="erased_by_user", closed_at=utcnow())
    )
    await tx.db.execute(
        update(Case).where(Case.user_id == user_id).values(user_id=None, indicators=[])
    )


async def list_cases(db: AsyncSession, *, include_closed: bool = False) -> list[CaseSummary]:
    """The queue, highest priority first, then oldest first."""
    query = (select(Case, User.contact_paused_at).outerjoin(User, User.id == Case.user_id)
             .order_by(Case.priority_rank, Case.created_at, Case.id))
    if not include_closed:
        query = query.where(Case.status.in_(OPEN_STATUSES))
    return [summarize(case, contact_paused=paused is not None)
            for case, paused in await db.execute(query)]
