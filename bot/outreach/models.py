"""Tables of the outreach back office, on the shared ``Base`` so one Alembic history covers them.

A ``CampaignDelivery`` row exists once per campaign and recipient (unique constraint): it is the
campaign's memory of who was targeted and what became of their message. It is deleted with the
user ("delete my data"), so reports count only people still known.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base, BigId

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "paused", "done")
DELIVERY_STATUSES = ("targeted", "sending", "sent", "delivered", "read", "failed", "blocked",
                     "skipped", "held", "in_doubt")


class Campaign(Base):
    """An awareness push: per-language messages, a segment, a schedule and a status."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(12), index=True)
    messages: Mapped[list[Any]] = mapped_column()
    """``[{"lang", "text", "buttons": [[id, title], ...]}, ...]``; the first is the fallback."""
    segment: Mapped[str] = mapped_column(String(1000), default="")
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    window: Mapped[str | None] = mapped_column(String(11))
    """Quiet-hours window ``HH:MM-HH:MM`` for scheduled sends, in ``timezone``."""
    timezone: Mapped[str] = mapped_column(String(64), default="Africa/Cairo")
    ignore_window: Mapped[bool] = mapped_column(Boolean, default=False)
    """Set by ``campaign send``: an explicit operator action sends at any hour."""
    max_handoffs_per_hour: Mapped[int | None] = mapped_column(Integer)
    attribution_hours: Mapped[int] = mapped_column(Integer, default=24)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    """Highest user id targeted so far (keyset pagination survives restarts)."""
    targeting_done: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_reason: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CampaignDelivery(Base):
    """One recipient of one campaign, and the fate of their message."""

    __tablename__ = "campaign_deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id"),
        Index("ix_campaign_deliveries_status", "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12))
    last_error: Mapped[str | None] = mapped_column(String(64))
    targeted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SendRate(Base):
    """The global send schedule of one channel, shared by every process through the database.

    ``next_slot`` is the first free send time (epoch seconds); a sender reserves ``n`` slots by
    moving it ``n / rate`` seconds on, under the row lock. ``paused_until`` is the platform's
    last "retry after": nobody sends on this channel before it.
    """

    __tablename__ = "outreach_send_rates"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    next_slot: Mapped[float] = mapped_column(Float, default=0.0)
    paused_until: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
