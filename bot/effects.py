"""What events mean for storage, applied inside the turn's transaction.

Flows only announce what happened; this module makes it durable (progress, screening results,
cases, erasure) so that an event and its effect commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic

from bot.core.ports import CaseQueue, Referrals, Tx
from bot.messages import (
    Attributed,
    ContactResumed,
    DataErased,
    Event,
    HandoffEnded,
    HandoffRequested,
    ModuleCompleted,
    ModuleOpened,
    ModuleProgressed,
    ModuleRated,
    QuickExit,
    ReferralConsentAnswered,
    RelayedToCase,
    ScreeningCompleted,
    Subscribed,
    Unsubscribed,
)

# Fields that never go into the analytics events table: free text, screening answers, and
# what would profile a person (the indicators they said yes to, their age band, where they
# live). The user's own rows keep what the service needs (sealed screening results, cases).
_PRIVATE_FIELDS = {"answers", "text", "indicators", "age_band", "governorate", "token"}


def _public_data(event: Event) -> dict[str, Any]:
    return {k: v for k, v in asdict(event).items() if k not in _PRIVATE_FIELDS}


@dataclass(frozen=True)
class Effects:
    erased: bool = False
    erased_message_ids: tuple[str, ...] = ()
    """Platform ids of the chat's messages, when the user was erased: the channel deletes them."""


@dataclass(frozen=True)
class BackOffice(Generic[Tx]):
    """The back office's ports (implemented in ``handoff.turn_ports``)."""

    cases: CaseQueue[Tx]
    referrals: Referrals[Tx]


async def apply_effects(tx: Tx, events: Sequence[Event], office: BackOffice[Tx]) -> Effects:
    """Persist ``events`` and their effects."""
    queue, referrals = office.cases, office.referrals
    tx.record_events((event.name, _public_data(event)) for event in events)
    effects = Effects()
    for event in events:
        match event:
            case ModuleOpened(module_id=module_id):
                await tx.set_progress(module_id, position=0)
            case ModuleProgressed(module_id=module_id, position=position):
                await tx.set_progress(module_id, position=position)
            case ModuleCompleted(module_id=module_id):
                await tx.set_progress(module_id, completed=True)
            case ModuleRated(module_id=module_id, useful=useful):
                await tx.set_progress(module_id, useful=useful)
            case ScreeningCompleted():
                tx.add_screening_result(event.risk_level, event.score, {
                    "answers": dict(event.answers), "indicators": list(event.indicators),
                    "age_band": event.age_band,
                })
                if event.age_band:
                    tx.set_age_band(event.age_band)
            case HandoffRequested():
                await queue.open_or_join(tx, event)
                await tx.resume_contact()  # asking for a person here is consent to be written to
            case RelayedToCase(text=text):
                await queue.add_user_message(tx, text)
            case Subscribed(topics=topics, governorate=governorate, age_band=age_band):
                await tx.subscribe(topics)
                if governorate:
                    tx.set_governorate(governorate)
                if age_band:
                    tx.set_age_band(age_band)
            case Attributed(joined_via=code):
                tx.set_joined_via(code)
            case Unsubscribed():
                await tx.unsubscribe()
            case HandoffEnded():
                await queue.end_by_user(tx)
            case ReferralConsentAnswered(referral_id=referral_id, answer=answer, token=token):
                await referrals.answer_in_chat(tx, referral_id=referral_id, token=token,
                                               answer=answer)
            case QuickExit():
                tx.pause_contact()
            case ContactResumed():
                await tx.resume_contact()
            case DataErased():
                await referrals.forget_user(tx)
                await queue.forget_user(tx)
                effects = Effects(erased=True, erased_message_ids=await tx.erase_user())
    return effects
