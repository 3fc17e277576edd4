"""The case queue: cases are opened from ``HandoffRequested`` and ordered by priority, then age.

A user with an open case joins it instead of opening another; a more urgent request raises the
open case's priority. Nothing here stores a platform id: cases point at the pseudonymous user.

A case's indicators (the person's yes-answers and the safety layer's coercion indicators) are
sealed under the person's data key (``cases.indicators_enc``, ``bot.store.user_keys``): they
are opened only by the reads below, which ``handoff.reads`` role-checks and audits, and they
become unreadable in every copy of the database once the person erases their data.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

from bot.messages import HandoffRequested
from bot.store import user_keys
from bot.store.crypto import DecryptionError, FieldCipher
from bot.store.models import Case, CaseMessage, User, UserKey
from bot.store.repository import TurnTransaction, as_utc, utcnow
from handoff.models import CaseNote
from handoff.policy import UNCLAIMED

log = logging.getLogger(__name__)
INDICATORS_CONTEXT = b"cases.indicators"

PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2}
OPEN_STATUSES = ("waiting", "claimed", "transferred")

TRIGGERS = {
    "emergency": "emergency",
    "self_harm": "emergency",
    "screening": "screening",
    "user_request": "request",
    "safety": "request",
    "minor": "minor",
    "child_at_risk": "child_at_risk",
}
"""The case's ``reason`` (what ``HandoffRequested`` said when the case was opened) -> the
``trigger`` integrators see. ``self_harm`` is a crisis answered at urgent priority, so it shows
as an emergency; ``safety`` is the person taking up the safety layer's offer of a person after
coercion or imminent travel, i.e. their own request. Unknown reasons show as ``request``."""
DEFAULT_TRIGGER = "request"

REPLY_WINDOWS = {"whatsapp": timedelta(hours=24)}
"""Channels that only allow free-form replies for a while after the user's last message
(WhatsApp's customer-service window). Other channels have no window (``window`` is null)."""


def trigger_of(reason: str | None) -> str:
    return TRIGGERS.get(reason or "", DEFAULT_TRIGGER)


@dataclass(frozen=True)
class ReplyWindow:
    """Whether a caseworker's reply can go out as it is now, or will be held (WhatsApp)."""

    open: bool
    open_until: datetime | None
    """When the window closes (None: the user never wrote on this channel, or was erased)."""

    def to_dict(self) -> dict[str, Any]:
        return {"open": self.open,
                "open_until": self.open_until.isoformat() if self.open_until else None}


def reply_window(channel: str, last_inbound_at: datetime | None,
                 now: datetime) -> ReplyWindow | None:
    """The channel's reply window counted from the user's last inbound message, or None."""
    length = REPLY_WINDOWS.get(channel)
    if length is None:
        return None
    if last_inbound_at is None:
        return ReplyWindow(open=False, open_until=None)
    until = as_utc(last_inbound_at) + length
    return ReplyWindow(open=now < until, open_until=until)


@dataclass(frozen=True)
class ThreadTimes:
    """When the person last wrote and since when they wait for a person's answer."""

    last_user_message_at: datetime | None = None
    waiting_since: datetime | None = None
    """The oldest user message with no caseworker message after it."""
    unanswered: bool = False
    """The last message of the thread is the user's."""


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
    trigger: str = DEFAULT_TRIGGER
    labels: tuple[str, ...] = ()
    times: ThreadTimes = ThreadTimes()
    window: ReplyWindow | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "alias": self.alias,
            "status": "waiting" if self.status == "transferred" else self.status,
            "priority": self.priority, "risk_level": self.risk_level,
            "indicators": list(self.indicators), "language": self.language,
            "channel": self.channel, "created_at": self.created_at.isoformat(),
            "claimed_at": _iso(self.claimed_at), "assignee": self.assignee,
            "contact_paused": self.contact_paused, "trigger": self.trigger,
            "labels": list(self.labels),
            "waiting_since": _iso(self.times.waiting_since),
            "last_user_message_at": _iso(self.times.last_user_message_at),
            "unanswered": self.times.unanswered,
            "window": self.window.to_dict() if self.window else None,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def seal_indicators(cipher: FieldCipher, indicators: list[str]) -> bytes | None:
    """The indicator ids sealed (None when there are none: nothing to hide, nothing stored)."""
    if not indicators:
        return None
    return cipher.encrypt(json.dumps(indicators).encode(), context=INDICATORS_CONTEXT)


def open_indicators(cipher: FieldCipher, case: Case) -> tuple[str, ...]:
    """The case's indicator ids; () when it has none or its person's key is gone (erased:
    the rows are unreadable by design, nothing else can be shown)."""
    if case.indicators_enc is None:
        return ()
    try:
        return tuple(json.loads(cipher.decrypt(case.indicators_enc,
                                               context=INDICATORS_CONTEXT)))
    except DecryptionError:
        log.warning("queue: indicators of case %s cannot be opened", case.id)
        return ()


async def indicators_of(db: AsyncSession, case: Case,
                        cipher: FieldCipher | None = None) -> tuple[str, ...]:
    """Open one case's indicators with its person's data key (for an audited read)."""
    master = cipher or user_keys.master_of(db)
    return open_indicators(await user_keys.cipher_for_user(db, master, case.user_id), case)


def summarize(case: Case, *, contact_paused: bool = False, times: ThreadTimes = ThreadTimes(),
              window: ReplyWindow | None = None,
              indicators: tuple[str, ...] = ()) -> CaseSummary:
    """A case as lists show it; ``indicators`` are the opened ones (``indicators_of``)."""
    return CaseSummary(
        id=case.id, alias=case.alias, status=case.status, priority=case.priority,
        risk_level=case.risk_level, indicators=indicators,
        language=case.language, channel=case.channel, created_at=as_utc(case.created_at),
        claimed_at=as_utc(case.claimed_at) if case.claimed_at else None, assignee=case.assignee,
        contact_paused=contact_paused, trigger=trigger_of(case.reason),
        labels=tuple(case.labels or ()), times=times, window=window,
    )


async def contact_paused(db: AsyncSession, case: Case) -> bool:
    """Whether the case's person paused contact (quick exit) and has not come back yet."""
    if case.user_id is None:
        return False
    paused = await db.scalar(select(User.contact_paused_at).where(User.id == case.user_id))
    return paused is not None


ALIAS_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
"""Crockford-like: no 0/O, 1/I/L to misread when a caseworker reads an alias aloud."""
ALIAS_LENGTH = 6


def new_alias() -> str:
    """A random alias per case (``S-7KQ2MX``, 31^6 ≈ 887 million): nothing derived from the
    person, so an erased person's next case cannot be linked to the erased one by its alias."""
    return "S-" + "".join(secrets.choice(ALIAS_ALPHABET) for _ in range(ALIAS_LENGTH))


async def open_or_join(tx: TurnTransaction, request: HandoffRequested) -> Case:
    """Open a case for the turn's user, or join (and if needed escalate) their open one."""
    user = tx.user
    return await _open_or_join(tx.db, user.id, user.language, user.channel, request,
                               tx.user_cipher)


async def raise_to_urgent(db: AsyncSession, *, user_id: int,
                          reason: str = "emergency") -> Case | None:
    """Outside a turn (a platform reported that the emergency numbers never arrived): raise
    the person's open case to urgent, or open an urgent one, so a human follows up."""
    user = await db.get(User, user_id)
    if user is None:
        return None
    cipher = await user_keys.cipher_for_user(db, user_keys.master_of(db), user_id)
    return await _open_or_join(db, user_id, user.language, user.channel,
                               HandoffRequested(priority="urgent", reason=reason), cipher)


async def _open_or_join(db: AsyncSession, user_id: int, language: str | None, channel: str,
                        request: HandoffRequested, cipher: FieldCipher) -> Case:
    case = await db.scalar(
        select(Case).where(Case.user_id == user_id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id.desc()).limit(1)
    )
    rank = PRIORITY_RANK.get(request.priority, PRIORITY_RANK["normal"])
    if case is None:
        case = Case(
            user_id=user_id, alias=new_alias(), status="waiting",
            priority=request.priority, priority_rank=rank, reason=request.reason,
            risk_level=request.risk_level,
            indicators_enc=seal_indicators(cipher, list(request.indicators)),
            language=language or "ar", channel=channel, created_at=utcnow(),
        )
        db.add(case)
        await db.flush()
        return case
    if rank < case.priority_rank:
        case.priority, case.priority_rank = request.priority, rank
    if request.risk_level and not case.risk_level:
        case.risk_level = request.risk_level
    if request.indicators:
        known = open_indicators(cipher, case)
        merged = list(dict.fromkeys([*known, *request.indicators]))
        if merged != list(known):
            case.indicators_enc = seal_indicators(cipher, merged)
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
        text_enc=tx.user_cipher.encrypt_text(text, context=b"case_messages.text"),
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
    user_id = tx.user.id
    case_ids = select(Case.id).where(Case.user_id == user_id)
    await tx.db.execute(delete(CaseMessage).where(CaseMessage.case_id.in_(case_ids)))
    await tx.db.execute(delete(CaseNote).where(CaseNote.case_id.in_(case_ids)))
    await tx.db.execute(
        update(Case).where(Case.user_id == user_id, Case.status.in_(OPEN_STATUSES))
        .values(status="closed", outcome="erased_by_user", closed_at=utcnow())
    )
    await tx.db.execute(
        update(Case).where(Case.user_id == user_id)
        .values(user_id=None, indicators_enc=None, labels=[])
    )


@dataclass(frozen=True)
class Selection:
    """Which cases a list shows; every field narrows it (the defaults: every open case)."""

    statuses: tuple[str, ...] | None = OPEN_STATUSES
    """None: any status."""
    assignee: str | None = None
    priority: str | None = None
    alias_contains: str | None = None
    """Case-insensitive substring of the alias (``S-7KQ2MX``)."""
    visible_to: str | None = None
    """A caseworker's name: only the unclaimed cases and their own (``policy.can_see``)."""
    case_id: int | None = None
    recently_closed_first: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.statuses is not None:
            found.append(Case.status.in_(self.statuses))
        if self.assignee is not None:
            found.append(Case.assignee == self.assignee)
        if self.priority is not None:
            found.append(Case.priority == self.priority)
        if self.alias_contains:
            found.append(func.lower(Case.alias).contains(self.alias_contains.lower(),
                                                         autoescape=True))
        if self.visible_to is not None:
            found.append(or_(Case.status.in_(UNCLAIMED), Case.assignee == self.visible_to))
        if self.case_id is not None:
            found.append(Case.id == self.case_id)
        return found

    def ordering(self) -> tuple[Any, ...]:
        if self.recently_closed_first:
            return (Case.closed_at.desc(), Case.id.desc())
        return (Case.priority_rank, Case.created_at, Case.id)


def thread_times(case_ids: Select[Any]) -> Subquery:
    """Per case of ``case_ids``: the user's last message, the oldest user message after the
    last caseworker message, and the thread's last message; one grouped pass over those
    cases' messages (the ``case_id`` index), no text read."""
    answered = (select(CaseMessage.case_id.label("case_id"),
                       func.max(CaseMessage.created_at).label("at"))
                .where(CaseMessage.sender == "caseworker", CaseMessage.case_id.in_(case_ids))
                .group_by(CaseMessage.case_id).subquery("answered"))
    from_user = CaseMessage.sender == "user"
    pending = and_(from_user, or_(answered.c.at.is_(None), CaseMessage.created_at > answered.c.at))
    return (select(CaseMessage.case_id.label("case_id"),
                   func.max(case((from_user, CaseMessage.created_at))).label("last_user"),
                   func.min(case((pending, CaseMessage.created_at))).label("waiting_since"),
                   func.max(CaseMessage.created_at).label("last_at"))
            .outerjoin(answered, answered.c.case_id == CaseMessage.case_id)
            .where(CaseMessage.case_id.in_(case_ids))
            .group_by(CaseMessage.case_id).subquery("thread"))


def _times(last_user: datetime | None, waiting_since: datetime | None,
           last_at: datetime | None) -> ThreadTimes:
    return ThreadTimes(
        last_user_message_at=as_utc(last_user) if last_user else None,
        waiting_since=as_utc(waiting_since) if waiting_since else None,
        unanswered=last_user is not None and last_user == last_at,
    )


async def list_cases(db: AsyncSession, selection: Selection = Selection(), *,
                     include_closed: bool = False, now: datetime | None = None,
                     cipher: FieldCipher | None = None) -> list[CaseSummary]:
    """The selected cases (by default the open queue), highest priority first, then oldest
    first, each with its thread times, reply window and opened indicators (each person's
    data key unwrapped once for the list): one statement, whatever the count.

    ``include_closed`` (kept for older callers) drops the status filter; ``cipher`` is the
    master cipher (default: the one of the ``Store`` session ``db``)."""
    if include_closed:
        selection = replace(selection, statuses=None)
    conditions = selection.conditions()
    times = thread_times(select(Case.id).where(*conditions))
    query = (select(Case, User.contact_paused_at, User.last_inbound_at, times.c.last_user,
                    times.c.waiting_since, times.c.last_at, UserKey.key_enc)
             .outerjoin(User, User.id == Case.user_id)
             .outerjoin(UserKey, UserKey.user_id == Case.user_id)
             .outerjoin(times, times.c.case_id == Case.id)
             .where(*conditions).order_by(*selection.ordering()))
    moment = now or utcnow()
    ring = user_keys.KeyRing(cipher or user_keys.master_of(db))
    return [summarize(row.Case, contact_paused=row.contact_paused_at is not None,
                      times=_times(row.last_user, row.waiting_since, row.last_at),
                      window=reply_window(row.Case.channel, row.last_inbound_at, moment),
                      indicators=open_indicators(
                          ring.cipher(row.key_enc) if row.Case.indicators_enc else ring.master,
                          row.Case))
            for row in await db.execute(query)]


async def case_summary(db: AsyncSession, case_id: int, *,
                       now: datetime | None = None) -> CaseSummary | None:
    """One case as the list shows it (any status), or None."""
    found = await list_cases(db, Selection(statuses=None, case_id=case_id), now=now)
    return found[0] if found else None
