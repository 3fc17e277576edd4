"""Reading cases on someone's behalf: the role filter and the audit row, always together.

Every function that hands case data to a person goes through here, so no page or API route can
show a case without checking the caller's role and leaving an audit row in the same
transaction.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.crypto import FieldCipher
from bot.store.models import Case, CaseMessage
from handoff import audit, previews, relay
from handoff.actions import CaseNotFound, get_case, takes_cases
from handoff.models import Caseworker
from handoff.policy import UNCLAIMED, Principal, can_see
from handoff.queue import OPEN_STATUSES, CaseSummary, Selection, case_summary, list_cases

VIEWS = ("mine", "unassigned", "urgent", "closed")
"""``GET /api/cases?view=``: claimed by the caller; waiting for anyone; urgent and open;
closed (most recently closed first)."""


class Forbidden(Exception):
    """The caller's role may not see this case."""

    def __init__(self, case_id: int | None = None) -> None:
        super().__init__(case_id)
        self.case_id = case_id


def selection_for(principal: Principal, view: str | None = None,
                  alias: str | None = None) -> Selection:
    """The cases of a view, narrowed in SQL to what the caller's role may see (``can_see``
    still has the last word)."""
    base = Selection(visible_to=None if principal.supervises else principal.name,
                     alias_contains=alias or None)
    if view is None:
        return base
    views = {
        "mine": replace(base, statuses=("claimed",), assignee=principal.name),
        "unassigned": replace(base, statuses=UNCLAIMED),
        "urgent": replace(base, priority="urgent"),
        "closed": replace(base, statuses=("closed",), recently_closed_first=True),
    }
    return views[view]


async def queue_for(db: AsyncSession, principal: Principal, *, action: str | None,
                    view: str | None = None, alias: str | None = None) -> list[CaseSummary]:
    """The cases of ``view`` (default: every open case) the caller may see, highest priority
    first; audited as one list read, the view as its detail (``action=None`` for a refresh
    that the caller already saw)."""
    if not principal.handles_cases:
        raise Forbidden()
    selection = selection_for(principal, view, alias)
    cases = [c for c in await list_cases(db, selection) if can_see(principal, c)]
    if action:
        audit.record(db, principal.name, action, detail=view)
    return cases


async def previews_for(db: AsyncSession, cipher: FieldCipher, principal: Principal,
                       cases: list[CaseSummary], *,
                       action: str | None = "case.preview") -> dict[int, previews.Preview]:
    """The last-message line and unread count of each listed case the caller may open (none
    for the others), each preview audited as a read of that case (``action=None`` when the
    caller audits at the moment the rows are actually sent, see :func:`audit_previews`)."""
    if not principal.handles_cases:
        raise Forbidden()
    ids = [c.id for c in cases if can_see(principal, c)]
    found = await previews.previews(db, cipher, ids)
    if action:
        audit_previews(db, principal, found, action)
    return found


def audit_previews(db: AsyncSession, principal: Principal, shown: dict[int, previews.Preview],
                   action: str = "case.preview") -> None:
    """One audit row per case whose last message the caller was shown."""
    for case_id in sorted(shown):
        audit.record(db, principal.name, action, case_id)


async def summary_for(db: AsyncSession, principal: Principal, case_id: int,
                      action: str) -> tuple[Case, CaseSummary]:
    """A case and its list item (thread times, window, labels), role-checked and audited."""
    case = await case_for(db, principal, case_id, action)
    summary = await case_summary(db, case_id)
    if summary is None:  # erased between the two reads: nothing to show
        raise CaseNotFound(case_id)
    return case, summary


async def case_for(db: AsyncSession, principal: Principal, case_id: int, action: str) -> Case:
    """The case if the caller may see it (``CaseNotFound`` / ``Forbidden`` otherwise)."""
    case = await get_case(db, case_id)
    if not can_see(principal, case):
        raise Forbidden(case_id)
    audit.record(db, principal.name, action, case_id)
    return case


async def thread_for(db: AsyncSession, cipher: FieldCipher, principal: Principal, case_id: int,
                     action: str) -> tuple[Case, list[relay.ThreadMessage]]:
    case = await case_for(db, principal, case_id, action)
    return case, await relay.thread(db, cipher=cipher, case_id=case_id)


async def new_messages(db: AsyncSession, cipher: FieldCipher, principal: Principal,
                       case_id: int, seen: int) -> tuple[Case, int, list[relay.ThreadMessage]]:
    """For live updates: the case, its message count, and the messages after the first
    ``seen`` (the whole thread if it shrank). When nothing is new, nothing is decrypted and
    nothing is audited: the caller learns no text it had not seen."""
    case = await get_case(db, case_id)
    if not can_see(principal, case):
        raise Forbidden(case_id)
    count = int(await db.scalar(select(func.count()).select_from(CaseMessage)
                                .where(CaseMessage.case_id == case_id)) or 0)
    if count == seen:
        return case, count, []
    audit.record(db, principal.name, "case.thread", case_id)
    thread = await relay.thread(db, cipher=cipher, case_id=case_id)
    return case, count, thread[seen:] if len(thread) >= seen else thread


async def escalated_ids(db: AsyncSession) -> set[int]:
    return {int(i) for i in await db.scalars(select(Case.id).where(
        Case.escalated_at.is_not(None), Case.status.in_(OPEN_STATUSES)))}


async def case_handlers(db: AsyncSession) -> list[str]:
    """Names a supervisor can assign a case to (``actions.takes_cases``: never an account
    waiting for approval or deactivated)."""
    return list(await db.scalars(select(Caseworker.name).where(takes_cases())
                                 .order_by(Caseworker.name)))
