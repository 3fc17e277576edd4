"""Tables of the referral pathway: partner organisations' accounts and tokens, referrals,
their timeline, and webhook deliveries.

What an organisation *is* (name, services, governorates, sources) is data in
``content/partners.yml``; the database keeps only what changes at run time (which accounts and
tokens belong to it, its webhook). What is shared with a partner is sealed with the field
cipher (context ``referrals.shared``) and wiped when consent ends; the timeline keeps codes and
times only, never text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base, BigId


class PartnerMember(Base):
    """A console account with the ``partner`` role belongs to exactly one organisation."""

    __tablename__ = "partner_members"

    caseworker_id: Mapped[int] = mapped_column(
        ForeignKey("caseworkers.id", ondelete="CASCADE"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(48), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PartnerToken(Base):
    """A bearer token of one organisation's system, with scopes; only its SHA-256 is kept."""

    __tablename__ = "partner_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(String(48), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PartnerWebhook(Base):
    """Where an organisation's own case system receives referrals; the secret is sealed."""

    __tablename__ = "partner_webhooks"

    partner_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Referral(Base):
    """One proposed referral of a case to one organisation's service, and where it stands."""

    __tablename__ = "referrals"
    __table_args__ = (Index("ix_referrals_partner_status", "partner_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    partner_id: Mapped[str] = mapped_column(String(48))
    service_id: Mapped[str] = mapped_column(String(64))
    urgency: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20))
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Names of the fields the person is asked to share (``states.SHAREABLE``)."""
    shared_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Sealed JSON: the values of ``fields`` and the reason; None once consent ends."""
    minor: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Sealed: the token in this referral's chat buttons (consent, "stop sharing"), so a
    button of another referral, or of an earlier question, cannot answer this one."""
    consent_answer: Mapped[str | None] = mapped_column(String(8))  # yes | no | later
    decline_reason: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consent_asked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consented_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped by every transition: a change is ``UPDATE ... WHERE version = seen``."""


class ReferralStep(Base):
    """The timeline: one row per transition (and per consent answer), codes only."""

    __tablename__ = "referral_steps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """One signed POST owed to a partner's system; retried with backoff until it succeeds.

    ``delivery_id`` goes in the ``X-Sanad-Delivery`` header and the body, so the receiver can
    drop a repeat. No body is stored: it is built from the referral as it is at each attempt,
    so a delivery retried after consent ended carries no shared field.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)
    partner_id: Mapped[str] = mapped_column(String(48), index=True)
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referrals.id", ondelete="SET NULL"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    """pending | sent | failed | cancelled (a "sent" not yet delivered when consent ended)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
