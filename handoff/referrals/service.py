"""The referral lifecycle: propose, the person's consent, the partner's steps, withdrawal.

Every step is one conditional ``UPDATE ... WHERE id = ? AND version = ?`` (so two people
acting at once cannot both win), a timeline row, an audit row and a domain event, in the
caller's transaction. Transitions come from ``states.TRANSITIONS`` only. Shared fields are
sealed at rest and wiped as soon as consent ends (declined, withdrawn, revoked, erased).
Callers check roles; this module checks states, ownership and consent.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content import ContentLibrary
from bot.i18n import UiCatalog
from bot.store.crypto import FieldCipher
from bot.store.models import Case, EventRecord, User
from bot.store.repository import utcnow
from handoff import audit
from handoff.queue import indicators_of
from handoff.referrals import notify, states, webhooks
from handoff.referrals.directory import PartnerDirectory
from handoff.referrals.models import Referral, ReferralStep
from handoff.referrals.sealed import TOKEN_CONTEXT, seal_shared
from handoff.referrals.states import InvalidTransition, Transition

MINOR_REASONS = ("minor", "child_at_risk")
CLOSED_CASE = "closed"


class ReferralError(Exception):
    """A referral action that cannot happen; subclasses say why."""


class ReferralNotFound(ReferralError):
    """No such referral, or not one the caller may know of (never says which)."""


class ReferralConflict(ReferralError):
    """The referral's state does not allow this (or it changed meanwhile)."""


class ReferralInputError(ReferralError):
    pass


@dataclass(frozen=True)
class Deps:
    """What the lifecycle needs besides a transaction (from the back office's context)."""

    cipher: FieldCipher
    ui: UiCatalog
    content: ContentLibrary
    directory: PartnerDirectory


def is_minor(case: Case, user: User | None) -> bool:
    """A child's case: opened for a minor or a child at risk, or the person said under 18."""
    return case.reason in MINOR_REASONS or (user is not None and user.age_band == "under_18")


def _shared_values(case: Case, user: User, fields: Sequence[str],
                   typed: dict[str, str], indicators: Sequence[str] = ()) -> dict[str, Any]:
    from_case: dict[str, Any] = {
        "language": user.language or case.language, "age_band": user.age_band,
        "governorate": user.governorate, "risk_level": case.risk_level,
        "indicators": list(indicators), "channel": case.channel,
    }
    return {name: typed[name] if name in states.TYPED_FIELDS else from_case[name]
            for name in fields}


def clean_fields(fields: Any, typed: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The requested field names (known, at least one) and the typed values they need."""
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise ReferralInputError("fields must be a non-empty list of field names")
    unknown = [f for f in fields if f not in states.SHAREABLE]
    if unknown:
        raise ReferralInputError(f"unknown fields {unknown}; allowed: {list(states.SHAREABLE)}")
    names = list(dict.fromkeys(fields))
    values: dict[str, str] = {}
    for name in states.TYPED_FIELDS:
        if name not in names:
            continue
        value = typed.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ReferralInputError(f"{name} is listed in fields but empty")
        if len(value) > states.MAX_TYPED_CHARS:
            raise ReferralInputError(f"{name} is longer than {states.MAX_TYPED_CHARS} characters")
        values[name] = value.strip()
    return names, values


async def _case_and_user(db: AsyncSession, case_id: int) -> tuple[Case, User | None]:
    case = await db.scalar(select(Case).where(Case.id == case_id)
                           .execution_options(populate_existing=True))
    if case is None:
        raise ReferralNotFound(f"case {case_id}")
    user = await db.get(User, case.user_id) if case.user_id is not None else None
    return case, user


async def propose(db: AsyncSession, deps: Deps, *, case_id: int, by: str, partner_id: str,
                  service_id: str, urgency: str, fields: Any,
                  typed: dict[str, Any] | None = None) -> Referral:
    """A caseworker proposes a referral; the person is asked in the chat at once."""
    partner = deps.directory.get(partner_id)
    if partner is None:
        raise ReferralInputError(f"unknown partner {partner_id!r}")
    if service_id not in partner.services or deps.content.service(service_id) is None:
        raise ReferralInputError(f"{partner_id} does not offer the service {service_id!r}")
    if urgency not in states.URGENCIES:
        raise ReferralInputError(f"urgency must be one of {', '.join(states.URGENCIES)}")
    names, values = clean_fields(fields, typed or {})
    case, user = await _case_and_user(db, case_id)
    if user is None:
        raise ReferralConflict("the person erased their data: nothing can be shared")
    if case.status == CLOSED_CASE:
        raise ReferralConflict("the case is closed")
    minor = is_minor(case, user)
    if minor and not partner.child_protection:
        raise ReferralConflict("a child's case can only be referred to a child-protection "
                               "organisation (README: Referrals and partners)")
    now = utcnow()
    referral = Referral(
        case_id=case.id, partner_id=partner.id, service_id=service_id, urgency=urgency,
        status=states.PROPOSED, fields=names, minor=minor, created_by=by,
        shared_enc=seal_shared(deps.cipher, _shared_values(
            case, user, names, values,
            await indicators_of(db, case, deps.cipher))),  # sealed under the person's key
        created_at=now, updated_at=now, version=0,
    )
    db.add(referral)
    await db.flush()
    db.add(ReferralStep(referral_id=referral.id, from_status=None, to_status=states.PROPOSED,
                        action="propose", actor=by, at=now))
    audit.record(db, by, "referral.propose", case.id, detail=f"referral:{referral.id}")
    _event(db, "ReferralProposed", referral, user)
    await _ask(db, deps, referral, case, user)
    return referral


async def ask_again(db: AsyncSession, deps: Deps, referral_id: int, by: str) -> None:
    """Ask the consent question again (after "ask me later"); a fresh token, so the buttons
    of the earlier question stop counting."""
    referral = await get(db, referral_id)
    if referral.status != states.PROPOSED:
        raise ReferralConflict(f"the referral is {referral.status}, not waiting for consent")
    case, user = await _case_and_user(db, referral.case_id)
    if user is None:
        raise ReferralConflict("the person erased their data")
    await _bump(db, referral, "ask", by, states.PROPOSED)
    audit.record(db, by, "referral.ask", case.id, detail=f"referral:{referral.id}")
    await _ask(db, deps, referral, case, user)


async def _ask(db: AsyncSession, deps: Deps, referral: Referral, case: Case, user: User) -> None:
    partner = deps.directory.get(referral.partner_id)
    assert partner is not None
    token = secrets.token_hex(4)
    referral.consent_token_enc = deps.cipher.encrypt_text(token, context=TOKEN_CONTEXT)
    referral.consent_asked_at = utcnow()
    lang = user.language or case.language
    message = notify.consent_question(deps.ui, deps.content, lang, referral, partner, token)
    await notify.send(db, deps.cipher, user_id=user.id, channel=user.channel,
                      referral=referral, what="ask", message=message)


async def get(db: AsyncSession, referral_id: int) -> Referral:
    referral = await db.scalar(select(Referral).where(Referral.id == referral_id)
                               .execution_options(populate_existing=True))
    if referral is None:
        raise ReferralNotFound(str(referral_id))
    return referral


async def _bump(db: AsyncSession, referral: Referral, action: str, actor: str, target: str,
                *, source: str | None = None, detail: str | None = None,
                values: dict[str, Any] | None = None) -> None:
    """Move (or only touch) the referral if nobody changed it since it was read."""
    now = utcnow()
    changes = {"status": target, "updated_at": now, "version": referral.version + 1,
               **(values or {})}
    result = cast(CursorResult[Any], await db.execute(
        update(Referral).where(Referral.id == referral.id, Referral.version == referral.version)
        .values(**changes).execution_options(synchronize_session=False)))
    if result.rowcount != 1:
        raise ReferralConflict("the referral changed meanwhile: reload and try again")
    db.add(ReferralStep(referral_id=referral.id, from_status=source or referral.status,
                        to_status=target, action=action, actor=actor, detail=detail, at=now))
    await db.refresh(referral)


async def _move(db: AsyncSession, referral: Referral, action: str, actor_kind: str,
                actor: str, *, detail: str | None = None,
                values: dict[str, Any] | None = None) -> Transition:
    try:
        transition = states.next_state(referral.status, action, actor_kind)
    except InvalidTransition as exc:
        raise ReferralConflict(str(exc)) from None
    await _bump(db, referral, action, actor, transition.target, detail=detail, values=values)
    return transition


def _event(db: AsyncSession, name: str, referral: Referral, user: User | None,
           **extra: str) -> None:
    """A domain event with ids and codes only (``docs/referrals.md``)."""
    data: dict[str, Any] = {"referral_id": referral.id, "service_id": referral.service_id,
                            "partner_id": referral.partner_id, "urgency": referral.urgency,
                            **extra}
    db.add(EventRecord(user_id=user.id if user else None, name=name,
                       channel=user.channel if user else None,
                       language=user.language if user else None, data=data,
                       created_at=utcnow()))


_ENDS_CONSENT = {"shared_enc": None, "consent_token_enc": None}


def _token_matches(cipher: FieldCipher, referral: Referral, token: str) -> bool:
    if referral.consent_token_enc is None or not token:
        return False
    expected = cipher.decrypt_text(referral.consent_token_enc, context=TOKEN_CONTEXT)
    return hmac.compare_digest(expected.encode(), token.encode())


async def answer_in_chat(db: AsyncSession, cipher: FieldCipher, *, user_id: int,
                         referral_id: int, token: str, answer: str) -> str:
    """The person tapped yes / no / later / stop on one of this referral's chat messages.

    Runs in the turn's transaction. Returns what happened: ``sent``, ``declined``, ``later``,
    ``revoked`` or ``stale`` (another person's referral, an old question's button, or a
    referral that moved on: nothing changes, and an audit row says so).
    """
    referral = await db.scalar(select(Referral).join(Case, Case.id == Referral.case_id).where(
        Referral.id == referral_id, Case.user_id == user_id)
        .execution_options(populate_existing=True))
    if referral is None or not _token_matches(cipher, referral, token):
        audit.record(db, "user", "referral.stale_answer", None, detail=f"referral:{referral_id}")
        return "stale"
    user = await db.get(User, user_id)
    action = {"yes": "consent", "no": "refuse", "stop": "revoke"}.get(answer)
    if answer == "later" and referral.status == states.PROPOSED:
        await _bump(db, referral, "later", "user", states.PROPOSED,
                    values={"consent_answer": "later"})
        audit.record(db, "user", "referral.later", referral.case_id, f"referral:{referral.id}")
        return "later"
    if action is None or (referral.status, action) not in {
            (t.source, t.action) for t in states.TRANSITIONS}:
        audit.record(db, "user", "referral.stale_answer", referral.case_id,
                     detail=f"referral:{referral.id}")
        return "stale"
    now = utcnow()
    if action == "consent":
        await _move(db, referral, "consent", states.USER, "user",
                    values={"consent_answer": "yes", "consented_at": now, "sent_at": now})
        audit.record(db, "user", "referral.consent", referral.case_id, f"referral:{referral.id}")
        _event(db, "ReferralConsented", referral, user)
        _event(db, "ReferralSent", referral, user)
        await webhooks.enqueue(db, cipher, referral, "referral.sent")
        return "sent"
    if action == "refuse":
        await _move(db, referral, "refuse", states.USER, "user",
                    values={"consent_answer": "no", "closed_at": now, **_ENDS_CONSENT})
        audit.record(db, "user", "referral.refuse", referral.case_id, f"referral:{referral.id}")
        _event(db, "ReferralConsentDeclined", referral, user)
        return "declined"
    await revoke(db, cipher, referral, actor="user", detail="in_chat", user=user)
    return "revoked"


async def revoke(db: AsyncSession, cipher: FieldCipher, referral: Referral, *, actor: str,
                 detail: str, user: User | None) -> None:
    """Consent ends: the partner is told to stop and can no longer read the shared fields."""
    was_known = referral.status in states.PARTNER_VISIBLE
    await _move(db, referral, "revoke", states.SYSTEM if actor != "user" else states.USER,
                actor, detail=detail, values={"closed_at": utcnow(), **_ENDS_CONSENT})
    audit.record(db, actor, "referral.revoke", referral.case_id, f"referral:{referral.id}")
    _event(db, "ReferralWithdrawn", referral, user)
    if was_known:
        await webhooks.enqueue(db, cipher, referral, "referral.consent_withdrawn")


async def revoke_for_person(db: AsyncSession, cipher: FieldCipher, referral_id: int,
                            by: str) -> Referral:
    """The caseworker records that the person withdrew their consent (told on the phone, in
    the thread...)."""
    referral = await get(db, referral_id)
    _, user = await _case_and_user(db, referral.case_id)
    await revoke(db, cipher, referral, actor=by, detail="told_caseworker", user=user)
    return referral


async def withdraw(db: AsyncSession, cipher: FieldCipher, referral_id: int, by: str) -> Referral:
    """The caseworker calls the referral off; a partner that knew of it is told to stop."""
    referral = await get(db, referral_id)
    was_known = referral.status in states.PARTNER_VISIBLE
    await _move(db, referral, "withdraw", states.CASEWORKER, by,
                values={"closed_at": utcnow(), **_ENDS_CONSENT})
    _, user = await _case_and_user(db, referral.case_id)
    audit.record(db, by, "referral.withdraw", referral.case_id, f"referral:{referral.id}")
    _event(db, "ReferralWithdrawn", referral, user)
    if was_known:
        await webhooks.enqueue(db, cipher, referral, "referral.withdrawn")
    return referral


PARTNER_EVENTS = {"accept": ("ReferralAccepted", "accepted"),
                  "decline": ("ReferralDeclined", None),
                  "start": ("ReferralInProgress", None),
                  "complete": ("ReferralCompleted", "completed")}
"""The event of each partner action, and the neutral update the person gets (if any)."""


async def partner_act(db: AsyncSession, deps: Deps, *, referral_id: int, partner_id: str,
                      actor: str, action: str, code: str | None = None) -> Referral:
    """A partner accepts, declines (with a reason code), starts or completes (with an
    outcome code) a referral sent to its own organisation; any other referral is "not
    found", so a partner cannot even learn that it exists."""
    referral = await db.scalar(select(Referral).where(
        Referral.id == referral_id, Referral.partner_id == partner_id,
        Referral.status.in_(states.PARTNER_VISIBLE)).execution_options(populate_existing=True))
    if referral is None:
        raise ReferralNotFound(str(referral_id))
    if action not in PARTNER_EVENTS:
        raise ReferralInputError(f"unknown action {action!r}")
    values: dict[str, Any] = {}
    if action == "decline":
        if code not in states.DECLINE_REASONS:
            raise ReferralInputError(
                f"reason must be one of {', '.join(states.DECLINE_REASONS)}")
        values = {"decline_reason": code, "closed_at": utcnow(), **_ENDS_CONSENT}
    elif action == "complete":
        if code not in states.OUTCOMES:
            raise ReferralInputError(f"outcome must be one of {', '.join(states.OUTCOMES)}")
        values = {"outcome": code, "closed_at": utcnow()}
    await _move(db, referral, action, states.PARTNER, actor, detail=code, values=values)
    case, user = await _case_and_user(db, referral.case_id)
    audit.record(db, actor, f"referral.{action}", referral.case_id, f"referral:{referral.id}")
    event, update_key = PARTNER_EVENTS[action]
    extra = {"outcome": code} if action == "complete" and code else {}
    _event(db, event, referral, user, **extra)
    if update_key is not None and user is not None:
        await _tell_person(db, deps, referral, case, user, update_key)
    return referral


async def _tell_person(db: AsyncSession, deps: Deps, referral: Referral, case: Case,
                       user: User, key: str) -> None:
    token = None
    if referral.status in states.OPEN and referral.consent_token_enc is not None:
        token = deps.cipher.decrypt_text(referral.consent_token_enc, context=TOKEN_CONTEXT)
    message = notify.update_message(deps.ui, user.language or case.language, referral,
                                    f"update_{key}", token)
    await notify.send(db, deps.cipher, user_id=user.id, channel=user.channel,
                      referral=referral, what=key, message=message)


async def forget_user(db: AsyncSession, cipher: FieldCipher, user_id: int) -> None:
    """"Delete my data": every open referral of the person ends as consent withdrawn (the
    partner is told to stop), and no referral keeps any shared field."""
    rows = await db.scalars(select(Referral).join(Case, Case.id == Referral.case_id).where(
        Case.user_id == user_id).execution_options(populate_existing=True))
    for referral in list(rows):
        if referral.status in states.OPEN:
            await revoke(db, cipher, referral, actor="user", detail="erased", user=None)
        elif referral.shared_enc is not None or referral.consent_token_enc is not None:
            await db.execute(update(Referral).where(Referral.id == referral.id)
                             .values(**_ENDS_CONSENT)
                             .execution_options(synchronize_session=False))

