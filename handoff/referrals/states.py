"""The referral lifecycle in one table: every allowed (state, action) -> next state, and who
may take the action. Anything not in the table is refused (``InvalidTransition``).

Aligned with the closed-loop referral Task states of HL7 BSeR/SDOH (requested, accepted,
rejected, in-progress, completed, cancelled); ``docs/referrals.md`` shows the same table.
"""

from __future__ import annotations

from dataclasses import dataclass

PROPOSED = "proposed"
"""Waiting for the person's consent in the chat (an answer "ask me later" leaves it here)."""
CONSENT_DECLINED = "consent_declined"
SENT = "sent"
ACCEPTED = "accepted"
DECLINED = "declined"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
WITHDRAWN = "withdrawn"
CONSENT_WITHDRAWN = "consent_withdrawn"

STATES = (PROPOSED, CONSENT_DECLINED, SENT, ACCEPTED, DECLINED, IN_PROGRESS, COMPLETED,
          WITHDRAWN, CONSENT_WITHDRAWN)
OPEN = (PROPOSED, SENT, ACCEPTED, IN_PROGRESS)
"""States in which something may still happen."""
PARTNER_VISIBLE = (SENT, ACCEPTED, DECLINED, IN_PROGRESS, COMPLETED, WITHDRAWN,
                   CONSENT_WITHDRAWN)
"""States in which the receiving organisation knows of the referral at all."""
SHARED_WITH_PARTNER = (SENT, ACCEPTED, IN_PROGRESS, COMPLETED)
"""States in which the partner may read the shared fields (consent holds)."""

BSER = {PROPOSED: "draft", CONSENT_DECLINED: "cancelled", SENT: "requested",
        ACCEPTED: "accepted", DECLINED: "rejected", IN_PROGRESS: "in-progress",
        COMPLETED: "completed", WITHDRAWN: "cancelled", CONSENT_WITHDRAWN: "cancelled"}
"""The HL7 FHIR Task status each state corresponds to (for integrators)."""

USER, CASEWORKER, PARTNER, SYSTEM = "user", "caseworker", "partner", "system"


@dataclass(frozen=True)
class Transition:
    source: str
    action: str
    target: str
    actor: str
    event: str
    """The domain event recorded when this transition happens."""


TRANSITIONS: tuple[Transition, ...] = (
    Transition(PROPOSED, "consent", SENT, USER, "ReferralConsented"),
    Transition(PROPOSED, "refuse", CONSENT_DECLINED, USER, "ReferralConsentDeclined"),
    Transition(PROPOSED, "withdraw", WITHDRAWN, CASEWORKER, "ReferralWithdrawn"),
    Transition(SENT, "accept", ACCEPTED, PARTNER, "ReferralAccepted"),
    Transition(SENT, "decline", DECLINED, PARTNER, "ReferralDeclined"),
    Transition(ACCEPTED, "start", IN_PROGRESS, PARTNER, "ReferralInProgress"),
    Transition(ACCEPTED, "complete", COMPLETED, PARTNER, "ReferralCompleted"),
    Transition(IN_PROGRESS, "complete", COMPLETED, PARTNER, "ReferralCompleted"),
    Transition(SENT, "withdraw", WITHDRAWN, CASEWORKER, "ReferralWithdrawn"),
    Transition(ACCEPTED, "withdraw", WITHDRAWN, CASEWORKER, "ReferralWithdrawn"),
    Transition(IN_PROGRESS, "withdraw", WITHDRAWN, CASEWORKER, "ReferralWithdrawn"),
    Transition(PROPOSED, "revoke", CONSENT_WITHDRAWN, USER, "ReferralWithdrawn"),
    Transition(SENT, "revoke", CONSENT_WITHDRAWN, USER, "ReferralWithdrawn"),
    Transition(ACCEPTED, "revoke", CONSENT_WITHDRAWN, USER, "ReferralWithdrawn"),
    Transition(IN_PROGRESS, "revoke", CONSENT_WITHDRAWN, USER, "ReferralWithdrawn"),
)
"""``revoke`` is the person ending their consent (in the chat, through their caseworker, or by
erasing their data): the partner is told to stop and loses the shared fields."""

_TABLE = {(t.source, t.action): t for t in TRANSITIONS}
ACTIONS = tuple(dict.fromkeys(t.action for t in TRANSITIONS))

URGENCIES = ("normal", "high", "urgent")
DECLINE_REASONS = ("no_capacity", "not_eligible", "outside_area", "service_unavailable",
                   "duplicate", "other")
OUTCOMES = ("service_delivered", "partially_delivered", "not_reachable",
            "declined_by_person", "referred_onwards", "other")
SHAREABLE = ("language", "age_band", "governorate", "risk_level", "indicators", "channel",
             "summary", "contact")
"""What a referral may ask to share. The first six come from the case as it is; ``summary``
(the caseworker's few lines on the need) and ``contact`` (how the person agreed to be
reached) are typed by the caseworker, sealed, and shown to the person before they agree."""
TYPED_FIELDS = ("summary", "contact")
MAX_TYPED_CHARS = 500


class InvalidTransition(Exception):
    """The referral is not in a state where this action is allowed, or not by this actor."""


def next_state(status: str, action: str, actor: str) -> Transition:
    """The transition for ``action`` from ``status`` by ``actor``; refused otherwise."""
    found = _TABLE.get((status, action))
    if found is None:
        raise InvalidTransition(f"cannot {action} a referral that is {status}")
    if found.actor != actor and actor != SYSTEM:
        raise InvalidTransition(f"only the {found.actor} may {action} a referral")
    return found
