"""What each side sees of a referral.

* The partner: the referral, its service, urgency, status and timeline (actions and times, not
  who in the back office acted), and the shared fields only while consent holds. Never the
  case, its alias, its thread, or anything of another organisation.
* The caseworker: everything about the referral, including the steps' actors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.crypto import FieldCipher
from bot.store.repository import as_utc
from handoff.referrals import states
from handoff.referrals.models import Referral, ReferralStep
from handoff.referrals.sealed import shared_fields

PARTNER_DETAILS = ("decline", "complete")
"""Steps whose code the partner sees (its own reason or outcome); never why consent ended."""


def _at(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


async def steps_of(db: AsyncSession, referral_ids: list[int]) -> dict[int, list[ReferralStep]]:
    found: dict[int, list[ReferralStep]] = {i: [] for i in referral_ids}
    if referral_ids:
        rows = await db.scalars(select(ReferralStep).where(
            ReferralStep.referral_id.in_(referral_ids)).order_by(ReferralStep.at,
                                                                 ReferralStep.id))
        for step in rows:
            found[step.referral_id].append(step)
    return found


def _common(referral: Referral) -> dict[str, Any]:
    return {
        "id": referral.id, "partner_id": referral.partner_id,
        "service_id": referral.service_id, "urgency": referral.urgency,
        "status": referral.status, "task_status": states.BSER[referral.status],
        "minor": referral.minor, "fields": list(referral.fields or []),
        "decline_reason": referral.decline_reason, "outcome": referral.outcome,
        "sent_at": _at(referral.sent_at), "updated_at": _at(referral.updated_at),
        "closed_at": _at(referral.closed_at),
    }


def for_partner(cipher: FieldCipher, referral: Referral,
                steps: list[ReferralStep] | None = None) -> dict[str, Any]:
    """The partner's view; ``shared`` is null unless consent holds."""
    shown = _common(referral)
    shown["shared"] = (shared_fields(cipher, referral)
                       if referral.status in states.SHARED_WITH_PARTNER else None)
    shown["instruction"] = ("stop" if referral.status in (states.WITHDRAWN,
                                                          states.CONSENT_WITHDRAWN) else None)
    if steps is not None:
        shown["steps"] = [{"status": s.to_status, "action": s.action,
                           "detail": s.detail if s.action in PARTNER_DETAILS else None,
                           "at": _at(s.at)} for s in steps
                          if s.to_status in states.PARTNER_VISIBLE]
    return shown


def for_caseworker(cipher: FieldCipher, referral: Referral,
                   steps: list[ReferralStep]) -> dict[str, Any]:
    shown = _common(referral)
    shown.update({
        "case_id": referral.case_id, "created_by": referral.created_by,
        "created_at": _at(referral.created_at), "consent_answer": referral.consent_answer,
        "consent_asked_at": _at(referral.consent_asked_at),
        "consented_at": _at(referral.consented_at),
        "shared": shared_fields(cipher, referral),
        "steps": [{"from": s.from_status, "status": s.to_status, "action": s.action,
                   "actor": s.actor, "detail": s.detail, "at": _at(s.at)} for s in steps],
    })
    return shown


async def list_for_case(db: AsyncSession, cipher: FieldCipher, case_id: int
                        ) -> list[dict[str, Any]]:
    referrals = list(await db.scalars(select(Referral).where(Referral.case_id == case_id)
                                      .order_by(Referral.created_at, Referral.id)))
    steps = await steps_of(db, [r.id for r in referrals])
    return [for_caseworker(cipher, r, steps[r.id]) for r in referrals]


async def list_for_partner(db: AsyncSession, cipher: FieldCipher, partner_id: str, *,
                           status: str | None = None) -> list[dict[str, Any]]:
    query = select(Referral).where(Referral.partner_id == partner_id,
                                   Referral.status.in_(states.PARTNER_VISIBLE))
    if status is not None:
        query = query.where(Referral.status == status)
    referrals = list(await db.scalars(query.order_by(Referral.sent_at.desc(),
                                                     Referral.id.desc())))
    steps = await steps_of(db, [r.id for r in referrals])
    return [for_partner(cipher, r, steps[r.id]) for r in referrals]
