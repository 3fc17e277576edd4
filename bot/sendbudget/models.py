"""The shared send budgets, one row per bot (``telegram:<bot id>``, ``whatsapp:<phone id>``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base


class SendBudgetRow(Base):
    """The state of one budget (:class:`bot.sendbudget.gcra.State`), changed under the row lock.

    ``tat`` and ``paused_until`` are epoch seconds by the database's clock on PostgreSQL (every
    machine agrees on it) and by the local clock on SQLite (one machine anyway). ``demand`` is
    JSON: ``{caller id: [priority, epoch seconds]}``, a few entries (one per process).
    """

    __tablename__ = "send_budgets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tat: Mapped[float] = mapped_column(Float, default=0.0)
    paused_until: Mapped[float] = mapped_column(Float, default=0.0)
    demand: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
