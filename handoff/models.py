"""Tables owned by the handoff back office (caseworker accounts, notes, audit).

They share ``bot.store.models.Base`` so one Alembic history covers the whole schema. Secrets are
never stored as given: passwords as argon2id hashes, session ids and API tokens as SHA-256
digests, note text sealed with the field cipher.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base, BigId

ROLES = ("caseworker", "supervisor", "outreach", "admin", "reviewer", "partner")


class Caseworker(Base):
    """A console account. ``name`` is what threads, notes and the audit log show."""

    __tablename__ = "caseworkers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    """Who (a supervisor, never the creator) let a case-role account see cases; None: pending."""
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Sealed with the field cipher (context ``caseworkers.totp_secret``)."""
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """None while the secret is offered but not yet confirmed with a first code."""
    totp_last_step: Mapped[int | None] = mapped_column(BigId)
    """The last 30-second step whose code was accepted: a code works once."""


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is kept, so a dump reveals none."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    caseworker_id: Mapped[int] = mapped_column(
        ForeignKey("caseworkers.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scopes: Mapped[str] = mapped_column(String(64), default="cases:read cases:write")
    """Space-separated: ``cases:read`` (GET) and/or ``cases:write`` (POST)."""


class ConsoleSession(Base):
    """A logged-in browser. Keyed by the SHA-256 of the cookie value, never the value itself."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    caseworker_id: Mapped[int] = mapped_column(
        ForeignKey("caseworkers.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    lang: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    second_factor_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When this session passed TOTP; a session without it only reaches the TOTP pages."""


class RecoveryCode(Base):
    """A one-time code that stands in for TOTP (a lost phone); only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    caseworker_id: Mapped[int] = mapped_column(
        ForeignKey("caseworkers.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Invitation(Base):
    """A one-time link with which a new member of staff sets their own password."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    caseworker_id: Mapped[int] = mapped_column(
        ForeignKey("caseworkers.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginThrottle(Base):
    """Failed logins per account name and per client address (both hashed), for lockout.

    Keyed by name even when no such account exists, so lockout does not reveal which names do.
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CaseNote(Base):
    """What happened on a case besides messages: notes, referrals, transfers, closing.

    ``text_enc`` is sealed (context ``case_notes.text``); ``kind`` and ``service_id`` are plain
    so reports can count referrals without opening any text.
    """

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # note | referral | transfer | close
    service_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(64))
    """A fixed code (outcome, transfer target), never free text."""
    text_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CannedReplyText(Base):
    """One canned reply in one reply language (ar, en, fr), managed by supervisors in the
    console (:mod:`handoff.canned`), first seeded from ``handoff/canned_replies.yml``.

    Not user data: the wording a caseworker may pick and edit before sending. A retired text
    stays (``retired_at``) so the audit trail's ``key/lang`` still names something.
    """

    __tablename__ = "canned_replies"
    __table_args__ = (UniqueConstraint("key", "language", name="uq_canned_replies_key_language"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(48))
    """A short id (``safe_now``) shared by the reply's languages."""
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Who did or read what, when: every case read and every account action. Never text.

    No foreign keys: the trail must outlive the accounts and cases it mentions.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_case_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int | None] = mapped_column(BigId)
    detail: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    client: Mapped[str | None] = mapped_column(String(64))
    """The client address of the request (``handoff.clients``), None outside a request."""
    reason: Mapped[str | None] = mapped_column(String(32))
    """Why a case was opened: one of ``handoff.audit.REASONS``, never free text."""
    seq: Mapped[int | None] = mapped_column(BigId, unique=True)
    """Position in the hash chain, given at commit under the chain head's lock."""
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditHead(Base):
    """The one row holding the chain's end: its lock serialises chaining, and a deleted last
    audit row no longer matches it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigId)
    hash: Mapped[str] = mapped_column(String(64))
