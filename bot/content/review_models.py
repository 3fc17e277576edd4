"""The review workflow's table: every decision a reviewer took on a content item version.

An approval keeps a snapshot of the whole file as approved (JSON), so production can keep
serving it after the YAML changes (``bot.content.gate``). Shares ``bot.store.models.Base``
so the one migration history covers it. Content is public material, not personal data;
the comment is a reviewer's note about the text, never about a user.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base, BigId


class ContentReview(Base):
    """One approval or request for changes of one item (kind, id, language) at one hash."""

    __tablename__ = "content_reviews"
    __table_args__ = (Index("ix_content_reviews_item", "kind", "item_id", "lang"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # module | screening | services
    item_id: Mapped[str] = mapped_column(String(64))
    lang: Mapped[str] = mapped_column(String(8))
    digest: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(24))  # approved | changes_requested
    reviewer: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
    snapshot: Mapped[str | None] = mapped_column(Text)
    """Canonical JSON of the whole file as approved; None for requests for changes."""
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ContentReviewer(Base):
    """The review capability granted to a console account that has another role (a
    supervisor who is also the content reviewer). Accounts with the ``reviewer`` role need
    no row here."""

    __tablename__ = "content_reviewers"

    caseworker_id: Mapped[int] = mapped_column(
        ForeignKey("caseworkers.id", ondelete="CASCADE"), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
