"""What caseworkers do to a case: claim, close, reopen, transfer, notes, referrals, labels; and
SLA escalation.

Every state change is a single conditional ``UPDATE ... WHERE status IN (...)`` whose row count
says whether it happened, so two people acting at once can never both win (on SQLite, where
transactions start with ``BEGIN IMMEDIATE``, and on PostgreSQL, where the second ``UPDATE``
re-checks its condition after the first commits). Callers check roles (``handoff.policy``);
this module checks the case's state.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, case, exists, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.content import ContentLibrary
from bot.store import user_keys
from bot.store.crypto import FieldCipher
from bot.store.models import Case
from bot.store.repository import as_utc, utcnow
from handoff.auth import APPROVAL_ROLES
from handoff.models import CaseNote, Caseworker
from handoff.policy import CASE_ROLES, UNCLAIMED

OUTCOMES = ("referred", "advice_given", "no_contact", "not_at_risk", "duplicate", "other")
NOTES_CONTEXT = b"case_notes.text"
MAX_NOTE_CHARS = 4000
LABEL_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_LABEL_DIGITS = 4
"""A label is a code, never a note: too few digits to hold a phone number or an id."""
MAX_LABELS = 10


class CaseError(Exception):
    """A case action that cannot happen; subclasses say why."""


class CaseNotFound(CaseError):
    pass


class CaseConflict(CaseError):
    """The case is closed, or held by someone else."""


class InvalidInput(CaseError):
    pass


@dataclass(frozen=True)
class NoteView:
    kind: str
    author: str
    text: str | None
    service_id: str | None
    detail: str | None
    at: datetime


async def get_case(db: AsyncSession, case_id: int) -> Case:
    """The case, freshly read (not a stale copy from this session's identity map)."""
    case = await db.scalar(
        select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    )
    if case is None:
        raise CaseNotFound(case_id)
    return case


async def _changed(db: AsyncSession, statement: Any) -> bool:
    result = cast(CursorResult[Any], await db.execute(
        statement.execution_options(synchronize_session=False)))
    return result.rowcount == 1


async def claim(db: AsyncSession, case_id: int, caseworker: str,
                *, now: datetime | None = None) -> bool:
    """Take an unclaimed case. True when ``caseworker`` holds it afterwards (also if they
    already did); False when someone else holds it or it is closed."""
    won = await _changed(db, update(Case).where(
        Case.id == case_id, Case.status.in_(UNCLAIMED)
    ).values(status="claimed", assignee=caseworker, claimed_at=now or utcnow()))
    if won:
        return True
    case = await get_case(db, case_id)
    return case.status == "claimed" and case.assignee == caseworker


async def claim_next(db: AsyncSession, caseworker: str) -> int | None:
    """Claim the most urgent, oldest unclaimed case; None when the queue is empty.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets many caseworkers take the next case at once
    without queueing behind each other's row lock.
    """
    for _ in range(5):
        query = (select(Case.id).where(Case.status.in_(UNCLAIMED))
                 .order_by(Case.priority_rank, Case.created_at, Case.id).limit(1))
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        case_id = await db.scalar(query)
        if case_id is None:
            return None
        if await claim(db, case_id, caseworker):
            return int(case_id)
    return None


async def _explain_failure(db: AsyncSession, case_id: int) -> CaseError:
    case = await get_case(db, case_id)  # raises CaseNotFound
    return CaseConflict(f"case {case_id} is {case.status}")


async def close(db: AsyncSession, case_id: int, caseworker: str, outcome: str,
                *, any_holder: bool = False) -> None:
    """Close a case with one of ``OUTCOMES``. A caseworker closes the case they hold; with
    ``any_holder`` (supervisors) any open case."""
    if outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}")
    condition = (Case.status != "closed") if any_holder else and_(
        Case.status == "claimed", Case.assignee == caseworker)
    now = utcnow()
    if not await _changed(db, update(Case).where(Case.id == case_id, condition)
                          .values(status="closed", outcome=outcome, closed_at=now,
                                  closed_by=caseworker)):
        raise await _explain_failure(db, case_id)
    db.add(CaseNote(case_id=case_id, author=caseworker, kind="close", detail=outcome,
                    created_at=now))


async def reopen(db: AsyncSession, case_id: int, by: str, *, any_closer: bool = False) -> str:
    """Reopen a closed case; returns its new status. It goes back to whoever held it when it
    was closed (``claimed``), or to the queue (``waiting``) if nobody did. Only ``by`` who
    closed it may, unless ``any_closer`` (supervisors). Refused when the person erased their
    data (nobody to talk to) or has opened another case since (one open case per person)."""
    previous = (await get_case(db, case_id)).outcome
    other = aliased(Case)
    other_open = exists().where(other.user_id == Case.user_id, other.status != "closed")
    condition = and_(Case.id == case_id, Case.status == "closed", Case.user_id.is_not(None),
                     ~other_open)
    if not any_closer:
        condition = and_(condition, Case.closed_by == by)
    now = utcnow()
    held = Case.assignee.is_not(None)
    if not await _changed(db, update(Case).where(condition).values(
            status=case((held, "claimed"), else_="waiting"),
            claimed_at=case((held, now), else_=None),
            outcome=None, closed_at=None, closed_by=None)):
        raise await _explain_reopen(db, case_id, by, any_closer=any_closer)
    db.add(CaseNote(case_id=case_id, author=by, kind="reopen", detail=previous, created_at=now))
    return (await get_case(db, case_id)).status


async def _explain_reopen(db: AsyncSession, case_id: int, by: str,
                          *, any_closer: bool) -> CaseError:
    case_ = await get_case(db, case_id)  # raises CaseNotFound
    if case_.status != "closed":
        return CaseConflict(f"case {case_id} is not closed")
    if case_.user_id is None:
        return CaseConflict("the person erased their data")
    if not any_closer and case_.closed_by != by:
        return CaseConflict("only whoever closed the case, or a supervisor, may reopen it")
    return CaseConflict("the person has another open case")


def takes_cases() -> ColumnElement[bool]:
    """Accounts a case can be handed to now: a case role, active, with a password set and,
    for roles that need one, a supervisor's approval (``accounts.pending_approval``): an
    invited, unapproved or deactivated account would leave the person with nobody."""
    return and_(Caseworker.active, Caseworker.role.in_(CASE_ROLES),
                Caseworker.password_hash.is_not(None),
                or_(Caseworker.role.not_in(APPROVAL_ROLES), Caseworker.approved_at.is_not(None)))


async def transfer(db: AsyncSession, case_id: int, by: str, to: str | None = None,
                   *, any_holder: bool = False) -> None:
    """Hand a case on. ``to=None`` puts it back in the queue (status ``transferred``) for
    anyone to claim; ``to=name`` (supervisors) assigns it to that caseworker directly."""
    if to is not None:
        account = await db.scalar(select(Caseworker).where(Caseworker.name == to,
                                                           takes_cases()))
        if account is None:
            raise InvalidInput(f"no caseworker called {to!r} who can take cases now")
    condition = (Case.status != "closed") if any_holder else and_(
        Case.status == "claimed", Case.assignee == by)
    now = utcnow()
    values: dict[str, Any] = (
        {"status": "transferred", "assignee": None, "claimed_at": None} if to is None
        else {"status": "claimed", "assignee": to, "claimed_at": now}
    )
    if not await _changed(db, update(Case).where(Case.id == case_id, condition).values(**values)):
        raise await _explain_failure(db, case_id)
    db.add(CaseNote(case_id=case_id, author=by, kind="transfer", detail=to or "queue",
                    created_at=now))


def clean_labels(values: Any) -> list[str]:
    """Label ids from a request (``InvalidInput`` for anything else)."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidInput("labels must be a list of label ids")
    for value in values:
        if not LABEL_RE.fullmatch(value) or sum(c.isdigit() for c in value) > MAX_LABEL_DIGITS:
            raise InvalidInput(f"{value[:40]!r} is not a label id (a-z, 0-9, _ or -, "
                               f"at most 32 characters and {MAX_LABEL_DIGITS} digits)")
    return list(dict.fromkeys(values))


async def relabel(db: AsyncSession, case_id: int, add: Sequence[str],
                  remove: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Add and remove label ids on a case (open or closed); returns the labels afterwards and
    which were really added and removed. The row is locked (PostgreSQL; SQLite writes one
    transaction at a time), so two supervisors labelling at once both count."""
    found = await db.scalar(select(Case).where(Case.id == case_id)
                            .with_for_update().execution_options(populate_existing=True))
    if found is None:
        raise CaseNotFound(case_id)
    before = list(found.labels or [])
    after = [label for label in before if label not in remove]
    after += [label for label in add if label not in after and label not in remove]
    if len(after) > MAX_LABELS:
        raise InvalidInput(f"a case has at most {MAX_LABELS} labels")
    found.labels = after
    return (after, [label for label in after if label not in before],
            [label for label in before if label not in after])


def _clean_text(text: str, *, required: bool) -> str:
    cleaned = (text or "").strip()
    if required and not cleaned:
        raise InvalidInput("text is empty")
    if len(cleaned) > MAX_NOTE_CHARS:
        raise InvalidInput(f"text is longer than {MAX_NOTE_CHARS} characters")
    return cleaned


async def add_note(db: AsyncSession, cipher: FieldCipher, case_id: int, author: str,
                   text: str) -> None:
    """A private note for colleagues; sealed at rest, never sent to the user."""
    cleaned = _clean_text(text, required=True)
    case = await get_case(db, case_id)
    cipher = await user_keys.cipher_for_user(db, cipher, case.user_id)  # the person's data key
    db.add(CaseNote(case_id=case_id, author=author, kind="note",
                    text_enc=cipher.encrypt_text(cleaned, context=NOTES_CONTEXT),
                    created_at=utcnow()))


async def refer(db: AsyncSession, cipher: FieldCipher, content: ContentLibrary, case_id: int,
                author: str, service_id: str, text: str = "") -> None:
    """Record a referral to a verified service from ``content/services.yml``."""
    if content.service(service_id) is None:
        raise InvalidInput(f"unknown service {service_id!r}")
    cleaned = _clean_text(text, required=False)
    case = await get_case(db, case_id)
    cipher = await user_keys.cipher_for_user(db, cipher, case.user_id)  # the person's data key
    db.add(CaseNote(
        case_id=case_id, author=author, kind="referral", service_id=service_id,
        text_enc=cipher.encrypt_text(cleaned, context=NOTES_CONTEXT) if cleaned else None,
        created_at=utcnow(),
    ))


async def notes(db: AsyncSession, cipher: FieldCipher, case_id: int) -> list[NoteView]:
    cipher = await user_keys.cipher_for_case(db, cipher, case_id)  # the person's data key
    rows = await db.scalars(select(CaseNote).where(CaseNote.case_id == case_id)
                            .order_by(CaseNote.created_at, CaseNote.id))
    return [NoteView(
        kind=r.kind, author=r.author, service_id=r.service_id, detail=r.detail,
        text=cipher.decrypt_text(r.text_enc, context=NOTES_CONTEXT) if r.text_enc else None,
        at=as_utc(r.created_at),
    ) for r in rows]


async def escalate_overdue(db: AsyncSession, now: datetime, urgent_minutes: int,
                           high_minutes: int) -> list[int]:
    """Mark unclaimed urgent/high cases waiting past their SLA; returns the newly escalated.

    Run by the worker; the console highlights ``escalated_at`` cases.
    """
    overdue = and_(
        Case.escalated_at.is_(None), Case.status.in_(UNCLAIMED),
        or_(
            and_(Case.priority == "urgent",
                 Case.created_at < now - timedelta(minutes=urgent_minutes)),
            and_(Case.priority == "high",
                 Case.created_at < now - timedelta(minutes=high_minutes)),
        ),
    )
    ids = [int(i) for i in await db.scalars(select(Case.id).where(overdue))]
    if ids:
        await db.execute(update(Case).where(Case.id.in_(ids), Case.escalated_at.is_(None))
                         .values(escalated_at=now)
                         .execution_options(synchronize_session=False))
    return ids
