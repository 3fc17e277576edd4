"""Who may act for a partner organisation: console accounts with the ``partner`` role tied to
one organisation, and scoped bearer tokens for the organisation's own system.

Kept apart from ``handoff.auth`` (caseworker tokens): a partner token names an organisation,
not a person, and carries scopes (``referrals:read``, ``referrals:write``). Only SHA-256 digests
of tokens are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.repository import utcnow
from handoff.auth import digest, new_secret
from handoff.models import Caseworker
from handoff.referrals.directory import PartnerDirectory
from handoff.referrals.models import PartnerMember, PartnerToken

READ, WRITE = "referrals:read", "referrals:write"
SCOPES = (READ, WRITE)
TOKEN_PREFIX = "sanadp_"
PARTNER_ROLE = "partner"


class PartnerAccountError(ValueError):
    pass


@dataclass(frozen=True)
class PartnerCaller:
    """An authenticated partner: its organisation, who acts (for the audit), and scopes."""

    partner_id: str
    actor: str
    scopes: frozenset[str]
    via: str  # "token" | "session"
    csrf_token: str | None = None

    def may(self, scope: str) -> bool:
        return scope in self.scopes


async def add_member(db: AsyncSession, directory: PartnerDirectory, *, name: str,
                     partner_id: str) -> None:
    """Tie an existing ``partner`` account to its organisation (one organisation each)."""
    if directory.get(partner_id) is None:
        raise PartnerAccountError(f"unknown partner {partner_id!r} (content/partners.yml)")
    account = await db.scalar(select(Caseworker).where(Caseworker.name == name))
    if account is None or account.role != PARTNER_ROLE:
        raise PartnerAccountError(f"no account {name!r} with the role {PARTNER_ROLE!r}")
    member = await db.get(PartnerMember, account.id)
    if member is None:
        db.add(PartnerMember(caseworker_id=account.id, partner_id=partner_id,
                             created_at=utcnow()))
    else:
        member.partner_id = partner_id


async def partner_of(db: AsyncSession, caseworker_id: int) -> str | None:
    member = await db.get(PartnerMember, caseworker_id)
    return member.partner_id if member is not None else None


async def issue_token(db: AsyncSession, directory: PartnerDirectory, partner_id: str,
                      scopes: tuple[str, ...] = SCOPES) -> str:
    """A new token for an organisation's system; shown once, only its digest is kept."""
    if directory.get(partner_id) is None:
        raise PartnerAccountError(f"unknown partner {partner_id!r}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise PartnerAccountError(f"scopes must be among {', '.join(SCOPES)}")
    token = TOKEN_PREFIX + new_secret()
    db.add(PartnerToken(partner_id=partner_id, token_hash=digest(token),
                        scopes=list(dict.fromkeys(scopes)), created_at=utcnow()))
    return token


async def revoke_tokens(db: AsyncSession, partner_id: str) -> int:
    result = await db.execute(update(PartnerToken).where(
        PartnerToken.partner_id == partner_id, PartnerToken.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def caller_for_token(db: AsyncSession, token: str) -> PartnerCaller | None:
    row = await db.scalar(select(PartnerToken).where(
        PartnerToken.token_hash == digest(token), PartnerToken.revoked_at.is_(None)))
    if row is None:
        return None
    row.last_used_at = utcnow()
    return PartnerCaller(partner_id=row.partner_id, actor=f"token:{row.partner_id}:{row.id}",
                         scopes=frozenset(row.scopes or ()), via="token")
