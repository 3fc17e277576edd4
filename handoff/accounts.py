"""The account lifecycle: invitation, approval, password change, deactivation.

* Nobody chooses another person's password: an admin invites (name and role); the invitee
  opens a one-time link (72 hours; only its SHA-256 is stored) and sets their own password.
* Nobody grants case access alone: an invited account of a case role (``APPROVAL_ROLES``)
  stays unusable until a supervisor, not its creator, approves it. Reactivating such an
  account asks for a supervisor's approval again.
* Deactivating ends every session and revokes every token at once.

Every function here takes the actor's name so the console and the CLI record the same audit
rows (:mod:`handoff.audit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.repository import as_utc, utcnow
from handoff import audit, totp
from handoff.auth import (
    APPROVAL_ROLES,
    AccountError,
    AuthPolicy,
    Passwords,
    PasswordsBusy,
    Sessions,
    check_new_account,
    check_new_password,
    digest,
    new_secret,
    revoke_all,
)
from handoff.models import Caseworker, Invitation

INVITE_PATH = "/console/invite/"


@dataclass(frozen=True)
class Invited:
    account_id: int
    token: str
    """Shown once to whoever invites (the link is ``INVITE_PATH + token``); only its digest
    is kept."""
    expires_at: datetime

    @property
    def path(self) -> str:
        return INVITE_PATH + self.token


async def invite(db: AsyncSession, policy: AuthPolicy, *, name: str, role: str, by: str,
                 now: datetime | None = None) -> Invited:
    """A new account without a password, and its one-time link."""
    await check_new_account(db, name, role)
    now = now or utcnow()
    account = Caseworker(name=name, role=role, password_hash=None, active=True,
                         created_at=now, created_by=by)
    db.add(account)
    await db.flush()
    audit.record(db, by, "account.invite", detail=name)
    return await _new_invitation(db, policy, account, by, now)


async def reinvite(db: AsyncSession, policy: AuthPolicy, account: Caseworker, *, by: str,
                   now: datetime | None = None) -> Invited:
    """A new link for someone who never used theirs (earlier links stop working)."""
    if account.password_hash is not None:
        raise AccountError(f"{account.name!r} has set a password already")
    await db.execute(update(Invitation).where(Invitation.caseworker_id == account.id,
                                              Invitation.used_at.is_(None))
                     .values(used_at=now or utcnow()))
    audit.record(db, by, "account.reinvite", detail=account.name)
    return await _new_invitation(db, policy, account, by, now or utcnow())


async def reset_password(db: AsyncSession, policy: AuthPolicy, account: Caseworker, *,
                         by: str, now: datetime | None = None) -> Invited:
    """A forgotten password: the old one stops working, every session and token ends, and the
    owner sets a new one through a fresh link. Whoever resets could open that link themselves,
    so a case-role account then waits for a supervisor's approval again (and its second factor
    still stands)."""
    if account.name == by:
        raise AccountError("change your own password on your account page")
    now = now or utcnow()
    account.password_hash = None
    account.password_changed_at = now
    if account.role in APPROVAL_ROLES:
        account.approved_by = account.approved_at = None
    await revoke_all(db, account.id, now=now)
    await db.execute(update(Invitation).where(Invitation.caseworker_id == account.id,
                                              Invitation.used_at.is_(None)).values(used_at=now))
    audit.record(db, by, "account.password_reset", detail=account.name)
    return await _new_invitation(db, policy, account, by, now)


async def _new_invitation(db: AsyncSession, policy: AuthPolicy, account: Caseworker, by: str,
                          now: datetime) -> Invited:
    token = new_secret()
    expires = now + policy.invitation_lifetime
    db.add(Invitation(caseworker_id=account.id, token_hash=digest(token), created_by=by,
                      created_at=now, expires_at=expires))
    return Invited(account.id, token, expires)


async def open_invitation(db: AsyncSession, token: str,
                          now: datetime | None = None) -> Caseworker | None:
    """The account a link is for, if the link is unused and not expired."""
    now = now or utcnow()
    found = (await db.execute(
        select(Invitation, Caseworker).join(Caseworker, Caseworker.id == Invitation.caseworker_id)
        .where(Invitation.token_hash == digest(token), Invitation.used_at.is_(None))
    )).first()
    if found is None or as_utc(found[0].expires_at) <= now or not found[1].active:
        return None
    return found[1]


async def accept_invitation(sessions: Sessions, passwords: Passwords, *, token: str,
                            password: str, now: datetime | None = None) -> Caseworker:
    """Set the invitee's own password and use the link up (one conditional UPDATE: two tabs
    submitting at once cannot both succeed). The password is hashed between transactions."""
    now = now or utcnow()
    async with sessions() as db:
        account = await open_invitation(db, token, now)
        if account is None:
            raise AccountError("this link is unknown, used or expired")
        name = account.name
    check_new_password(password, name=name)
    try:
        hashed = await passwords.hash(password)
    except PasswordsBusy:
        raise AccountError("busy: try again in a moment") from None
    async with sessions() as db:
        used = await db.execute(
            update(Invitation).where(Invitation.token_hash == digest(token),
                                     Invitation.used_at.is_(None), Invitation.expires_at > now)
            .values(used_at=now))
        account = await db.scalar(select(Caseworker).where(Caseworker.name == name))
        if used.rowcount != 1 or account is None:  # type: ignore[attr-defined]
            raise AccountError("this link is unknown, used or expired")
        account.password_hash = hashed
        account.password_changed_at = now
        audit.record(db, name, "account.password_set")
    return account


async def change_password(sessions: Sessions, passwords: Passwords, *, account_id: int,
                          current: str, new: str, keep_session: str | None) -> None:
    """Self-service: the current password first; every other session and every token ends."""
    async with sessions() as db:
        account = await db.get(Caseworker, account_id)
        if account is None:
            raise AccountError("no such account")
        name, hashed = account.name, account.password_hash
    try:
        if not await passwords.verify(hashed, current):
            raise AccountError("the current password is not right")
        check_new_password(new, name=name)
        if new == current:
            raise AccountError("the new password is the old one")
        new_hash = await passwords.hash(new)
    except PasswordsBusy:
        raise AccountError("busy: try again in a moment") from None
    async with sessions() as db:
        account = await db.get(Caseworker, account_id)
        if account is None or account.password_hash != hashed:
            raise AccountError("the password changed meanwhile")
        account.password_hash = new_hash
        account.password_changed_at = utcnow()
        await revoke_all(db, account_id, keep_session=keep_session)
        audit.record(db, name, "account.password_change")


def pending_approval(account: Caseworker) -> bool:
    return account.role in APPROVAL_ROLES and account.approved_at is None


async def approve(db: AsyncSession, account: Caseworker, *, by: str, by_role: str) -> None:
    """A supervisor (never the account's creator, never the account itself) lets a case-role
    account see cases."""
    if by_role != "supervisor":
        raise AccountError("only a supervisor approves case access")
    if not pending_approval(account):
        raise AccountError(f"{account.name!r} is not waiting for approval")
    if by in (account.created_by, account.name):
        raise AccountError("a second person must approve: not whoever created the account")
    account.approved_by, account.approved_at = by, utcnow()
    audit.record(db, by, "account.approve", detail=account.name)


async def set_active(db: AsyncSession, account: Caseworker, active: bool, *, by: str) -> None:
    """Deactivate (every session ends, every token is revoked) or reactivate; a reactivated
    case-role account waits for a supervisor again, so an admin alone never restores case
    access."""
    if account.name == by:
        raise AccountError("nobody deactivates or reactivates their own account")
    if active == account.active:
        return
    account.active = active
    if active:
        if account.role in APPROVAL_ROLES:
            account.approved_by = account.approved_at = None
    else:
        await revoke_all(db, account.id)
    audit.record(db, by, "account.reactivate" if active else "account.deactivate",
                 detail=account.name)


async def revoke(db: AsyncSession, account: Caseworker, *, by: str) -> tuple[int, int]:
    ended = await revoke_all(db, account.id)
    audit.record(db, by, "account.revoke", detail=account.name)
    return ended


async def reset_second_factor(db: AsyncSession, account: Caseworker, *, by: str) -> None:
    """A lost phone: forget the TOTP secret and recovery codes and end every session; the
    password still has to be right, and the next login enrols a new phone."""
    await totp.remove(db, account)
    await revoke_all(db, account.id)
    audit.record(db, by, "account.totp_reset", detail=account.name)
