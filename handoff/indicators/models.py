"""The privacy-budget ledger of differentially private releases.

``dp_budgets`` holds what has been spent per day of data (one row per day, updated with a
conditional ``UPDATE`` so two releases at once cannot overspend); ``dp_releases`` records each
release: its ε, the noise scale and sensitivity, who released it and the noisy figures
themselves, so asking again returns the same numbers instead of spending more budget.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base, BigId


class DpBudget(Base):
    __tablename__ = "dp_budgets"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    spent: Mapped[float] = mapped_column(Float, default=0.0)


class DpRelease(Base):
    __tablename__ = "dp_releases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    epsilon: Mapped[float] = mapped_column(Float)
    scale: Mapped[float] = mapped_column(Float)
    sensitivity: Mapped[int] = mapped_column(Integer)
    mechanism: Mapped[str] = mapped_column(String(64))
    released_by: Mapped[str] = mapped_column(String(64))
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
