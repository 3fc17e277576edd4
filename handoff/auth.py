"""Accounts, passwords, login throttling, console sessions and API tokens.

Nothing secret is stored as given: passwords as argon2id hashes, session ids and tokens as
SHA-256 digests (a leaked database lets nobody log in). A failed login counts against both the
account name and the client address; either reaching its limit locks logins for a while, and
a locked login is refused before the password is even checked.

Case access needs two people: an account of a role that sees case data (``APPROVAL_ROLES``)
made by an admin stays unusable until a supervisor other than its creator approves it. The
second factor (TOTP, :mod:`handoff.totp`) and the account lifecycle (invitations, password
change, deactivation, revocation) live in :mod:`handoff.accounts`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from bot.store.repository import as_utc, dialect_insert, table_of, utcnow
from handoff.models import ROLES, ApiToken, Caseworker, ConsoleSession, LoginThrottle
from handoff.policy import CASE_SCOPES, Principal

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
MIN_PASSWORD_STRENGTH = 3
"""zxcvbn score (0-4): 3 is "safely unguessable" against an online attack, 10^8+ guesses."""
_RATED_CHARS = 100  # zxcvbn's cost grows with length; the first 100 characters decide
_SITE_WORDS = ("sanad", "سند", "console", "caseworker")
T = TypeVar("T")
TOTP_ROLES = ("caseworker", "supervisor", "partner", "reviewer")
"""Roles that must pass TOTP at every console login (all that see case or referral data)."""
APPROVAL_ROLES = ("caseworker", "supervisor", "partner")
"""Roles whose new accounts a supervisor must approve: no single person grants case access."""


class AccountError(ValueError):
    """An account cannot be created or found; the message says why (no secrets in it)."""


@dataclass(frozen=True)
class AuthPolicy:
    """Limits of login and sessions (tests shorten them)."""

    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)
    touch_every: timedelta = timedelta(seconds=30)
    max_name_failures: int = 5
    max_client_failures: int = 20
    lockout: timedelta = timedelta(minutes=15)
    """The longest lock; a name's lock starts at ``first_lock`` and doubles per failure."""
    first_lock: timedelta = timedelta(minutes=1)
    require_totp: bool | None = None
    """TOTP for ``TOTP_ROLES``: None follows ``SANAD_ENV`` (on in production, off in local
    development, like the other development conveniences); in production it is on whatever
    this says (:func:`enforced`)."""
    second_factor_within: timedelta = timedelta(minutes=5)
    """How long a session that passed the password may wait for its TOTP code."""
    token_lifetime: timedelta = timedelta(days=90)
    invitation_lifetime: timedelta = timedelta(hours=72)
    clock: Callable[[], datetime] = utcnow
    """The time TOTP codes are checked against (tests pass a fake clock)."""


def enforced(policy: AuthPolicy, environment: str) -> AuthPolicy:
    """The policy in force: production never runs without the second factor."""
    required = environment == "production" or bool(policy.require_totp)
    return policy if policy.require_totp is required else replace(policy, require_totp=required)


def needs_second_factor(account: Caseworker, policy: AuthPolicy) -> bool:
    """A case role (when TOTP is on) or anyone who enrolled must pass TOTP at login."""
    return (account.totp_enrolled_at is not None
            or (bool(policy.require_totp) and account.role in TOTP_ROLES))


def may_log_in(account: Caseworker) -> bool:
    """Active, with a password of their own, and (case roles) approved by a supervisor."""
    return (account.active and account.password_hash is not None
            and (account.role not in APPROVAL_ROLES or account.approved_at is not None))


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """256 bits from the OS CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


class PasswordsBusy(Exception):
    """Too many password checks are already waiting: the caller answers "try again soon"."""


class Passwords:
    """argon2id hashing (argon2-cffi defaults) on a small thread pool of its own.

    A hash costs tens of milliseconds of CPU by design; on the event loop, ten anonymous login
    attempts would stall every webhook (and so the emergency replies) for seconds. The pool is
    bounded and so is the queue in front of it: beyond ``max_waiting`` checks a login is refused
    at once (:class:`PasswordsBusy`) instead of piling up. Unknown names are checked against a
    dummy hash, so response time does not tell which account names exist. One worker by
    default: argon2-cffi already hashes on four lanes, and on a 2-core host two concurrent
    hashes left the event loop waiting for a core (bench/README.md, "Logins do not stall").
    """

    def __init__(self, hasher: PasswordHasher | None = None, *, workers: int = 1,
                 max_waiting: int = 16) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy = self._hasher.hash(new_secret())
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._max_waiting = max_waiting
        self._waiting = 0

    async def _off_loop(self, work: Callable[..., T], *args: Any) -> T:
        if self._waiting >= self._max_waiting:
            raise PasswordsBusy
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        finally:
            self._waiting -= 1

    async def hash(self, password: str) -> str:
        return await self._off_loop(self._hasher.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        return await self._off_loop(self._verify, hashed, password)

    def _verify(self, hashed: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(hashed or self._dummy, password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False

    @property
    def waiting(self) -> int:
        """Checks queued or running now."""
        return self._waiting

    def needs_rehash(self, hashed: str) -> bool:
        return self._hasher.check_needs_rehash(hashed)


# --- accounts ------------------------------------------------------------------------------
def check_new_password(password: str, *, name: str = "") -> None:
    """At least 12 characters *and* not guessable: zxcvbn's offline dictionaries (common and
    breached passwords, names, keyboard patterns, repeats, dates) must rate it 3 of 4 or more.
    "aaaaaaaaaaaa", "Password1234" and "qwertyuiop12" are refused."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError("the password is too long")
    rating = zxcvbn(password[:_RATED_CHARS], user_inputs=[name, *_SITE_WORDS])
    if rating["score"] < MIN_PASSWORD_STRENGTH:
        raise AccountError("the password is too easy to guess (a common password, a pattern, "
                           "or the account name): use a longer phrase of unrelated words")


async def check_new_account(db: AsyncSession, name: str, role: str) -> None:
    if not NAME_RE.match(name):
        raise AccountError("the name must be 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}")
    if await db.scalar(select(Caseworker.id).where(Caseworker.name == name)) is not None:
        raise AccountError(f"an account called {name!r} already exists")


async def create_account(db: AsyncSession, passwords: Passwords, *, name: str, role: str,
                         password: str, created_by: str = "cli") -> Caseworker:
    """An account with a password, usable at once: the command line's bootstrap (whoever runs
    it holds the server and its keys already). The console invites instead
    (:func:`handoff.accounts.invite`), and its case-role accounts wait for a supervisor."""
    await check_new_account(db, name, role)
    check_new_password(password, name=name)
    now = utcnow()
    account = Caseworker(name=name, role=role, password_hash=await passwords.hash(password),
                         active=True, created_at=now, created_by=created_by,
                         password_changed_at=now)
    if role in APPROVAL_ROLES:
        account.approved_by, account.approved_at = created_by, now
    db.add(account)
    await db.flush()
    return account


async def find_account(db: AsyncSession, name: str) -> Caseworker:
    account = await db.scalar(select(Caseworker).where(Caseworker.name == name))
    if account is None:
        raise AccountError(f"no account called {name!r}")
    return account


def _principal(account: Caseworker, via: str, row: ConsoleSession | None = None,
               scopes: frozenset[str] = frozenset(CASE_SCOPES)) -> Principal:
    return Principal(
        id=account.id, name=account.name, role=account.role, via=via,
        csrf_token=row.csrf_token if row else None, session_hash=row.id_hash if row else None,
        lang=row.lang if row else "ar", scopes=scopes,
    )


# --- API tokens ----------------------------------------------------------------------------
def parse_scopes(scopes: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Known scopes in a fixed order; an unknown or empty list is an error, not "everything"."""
    asked = scopes.replace(",", " ").split() if isinstance(scopes, str) else list(scopes)
    unknown = [s for s in asked if s not in CASE_SCOPES]
    if unknown or not asked:
        raise AccountError(f"scopes must be among {', '.join(CASE_SCOPES)}")
    return tuple(s for s in CASE_SCOPES if s in asked)


async def issue_token(db: AsyncSession, name: str, *,
                      scopes: str | tuple[str, ...] = CASE_SCOPES,
                      lifetime: timedelta = AuthPolicy.token_lifetime,
                      now: datetime | None = None) -> str:
    """A new bearer token for ``name`` that expires after ``lifetime`` and allows only
    ``scopes``; the caller shows it once, we keep its digest."""
    account = await find_account(db, name)
    if not may_log_in(account):
        raise AccountError(f"{name!r} is deactivated, awaiting approval or without a password")
    if lifetime <= timedelta(0):
        raise AccountError("the token's lifetime must be positive")
    now = now or utcnow()
    token = "sanad_" + new_secret()
    db.add(ApiToken(caseworker_id=account.id, token_hash=digest(token), created_at=now,
                    expires_at=now + lifetime, scopes=" ".join(parse_scopes(scopes))))
    return token


async def principal_for_token(db: AsyncSession, token: str, *,
                              now: datetime | None = None) -> Principal | None:
    """The token's account with the token's scopes; None if unknown, revoked, expired, or the
    account may no longer log in."""
    now = now or utcnow()
    row = await db.execute(
        select(ApiToken, Caseworker).join(Caseworker, Caseworker.id == ApiToken.caseworker_id)
        .where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None),
               Caseworker.active)
    )
    found = row.first()
    if found is None:
        return None
    api_token, account = found
    if (api_token.expires_at is None or as_utc(api_token.expires_at) <= now
            or not may_log_in(account)):
        return None
    api_token.last_used_at = now
    return _principal(account, "token", scopes=frozenset(api_token.scopes.split()))


# --- login throttling ----------------------------------------------------------------------
def _throttle_keys(name: str, client: str) -> tuple[str, str]:
    return digest("name:" + name.casefold()), digest("client:" + client)


async def _is_locked(db: AsyncSession, key: str, now: datetime) -> bool:
    row = await db.get(LoginThrottle, key)
    return bool(row and row.locked_until and as_utc(row.locked_until) > now)


async def _count_failure(db: AsyncSession, key: str, now: datetime, limit: int,
                         policy: AuthPolicy) -> None:
    """One atomic statement per failure (an upsert that returns the new count), so parallel
    failures can never be lost to a read-modify-write race; at ``limit`` the key locks, for
    longer with each further failure (one minute, doubling, up to ``policy.lockout``). The
    count starts again after ``policy.lockout`` without a failure (``window_start`` holds the
    time of the last one)."""
    table = table_of(LoginThrottle)
    fresh = table.c.window_start < now - policy.lockout
    statement = dialect_insert(db.get_bind().dialect.name, LoginThrottle).values(
        key=key, failures=1, window_start=now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={"failures": case((fresh, 1), else_=table.c.failures + 1),
              "window_start": now,
              "locked_until": case((fresh, None), else_=table.c.locked_until)},
    ).returning(table.c.failures)
    failures = int((await db.execute(statement)).scalar_one())
    if failures >= limit:
        delay = min(policy.lockout, policy.first_lock * 2 ** (failures - limit))
        await db.execute(update(table).where(table.c.key == key)
                         .values(locked_until=now + delay))


@dataclass(frozen=True)
class LoginResult:
    account: Caseworker | None
    locked: bool = False
    busy: bool = False
    """Too many password checks waiting: refused without counting a failure."""


Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Opens a transaction (``Store.session``)."""


async def login(sessions: Sessions, passwords: Passwords, policy: AuthPolicy, *, name: str,
                password: str, client: str, now: datetime | None = None) -> LoginResult:
    """Check a name and password, counting failures; a locked name or client always fails.

    The password is checked between two short transactions, never inside one: on SQLite the
    bot's turns share one connection, and a login must not hold it while argon2 works.
    """
    now = now or utcnow()
    name = name.strip()[:64]
    name_key, client_key = _throttle_keys(name, client)
    async with sessions() as db:
        if await _is_locked(db, name_key, now) or await _is_locked(db, client_key, now):
            return LoginResult(None, locked=True)
        found = (await db.execute(select(Caseworker.id, Caseworker.password_hash).where(
            Caseworker.name == name, Caseworker.active))).first()
    account_id, hashed = found if found is not None else (None, None)
    try:
        ok = await passwords.verify(hashed, password[:MAX_PASSWORD_CHARS])
        rehashed = (await passwords.hash(password)
                    if ok and hashed and passwords.needs_rehash(hashed) else None)
    except PasswordsBusy:
        return LoginResult(None, busy=True)
    async with sessions() as db:
        account = await db.get(Caseworker, account_id) if ok and account_id else None
        if account is None or not may_log_in(account) or account.password_hash != hashed:
            await _count_failure(db, name_key, now, policy.max_name_failures, policy)
            await _count_failure(db, client_key, now, policy.max_client_failures, policy)
            return LoginResult(None)
        if not needs_second_factor(account, policy):  # else only once the second factor passed
            await db.execute(delete(LoginThrottle).where(LoginThrottle.key == name_key))
        if rehashed:
            account.password_hash = rehashed
        account.last_login_at = now
    return LoginResult(account)


async def unlock(db: AsyncSession, name: str) -> None:
    """Lift a name's lockout (an admin action)."""
    await db.execute(delete(LoginThrottle).where(
        LoginThrottle.key == digest("name:" + name.casefold())))


async def is_name_locked(db: AsyncSession, name: str, now: datetime | None = None) -> bool:
    return await _is_locked(db, digest("name:" + name.casefold()), now or utcnow())


async def second_factor_failed(db: AsyncSession, name: str, policy: AuthPolicy,
                               now: datetime | None = None) -> bool:
    """A wrong TOTP code counts like a wrong password against the name (the password did not
    clear the count): five wrong codes lock it. Returns whether the name is now locked."""
    now = now or utcnow()
    key = digest("name:" + name.casefold())
    await _count_failure(db, key, now, policy.max_name_failures, policy)
    return await _is_locked(db, key, now)


# --- console sessions ----------------------------------------------------------------------
async def open_session(db: AsyncSession, account: Caseworker, *, lang: str,
                       replacing: str | None = None,
                       second_factor: bool = True) -> tuple[str, Principal]:
    """A fresh session (a new random id at every login: no fixation); ``replacing`` (a
    previous session cookie) is ended. Returns the cookie value and the principal.

    ``second_factor=False``: the password was right but TOTP is still to come; until
    :func:`pass_second_factor`, the session reaches only the TOTP pages."""
    if replacing:
        await end_session(db, replacing)
    raw = new_secret()
    now = utcnow()
    row = ConsoleSession(id_hash=digest(raw), caseworker_id=account.id, csrf_token=new_secret(),
                         lang=lang, created_at=now, last_seen_at=now,
                         second_factor_at=now if second_factor else None)
    db.add(row)
    return raw, _principal(account, "session", row)


async def principal_for_session(db: AsyncSession, raw: str, policy: AuthPolicy, *,
                                touch: bool = True, now: datetime | None = None,
                                pending: bool = False) -> Principal | None:
    """The session's caseworker, or None if unknown, idle too long, too old, or disabled.

    ``touch=False`` (background polling) does not count as activity, so an open but
    unattended console still expires. A session still waiting for its second factor is None
    unless ``pending`` (the TOTP pages ask for it, and only they).
    """
    now = now or utcnow()
    found = (await db.execute(
        select(ConsoleSession, Caseworker)
        .join(Caseworker, Caseworker.id == ConsoleSession.caseworker_id)
        .where(ConsoleSession.id_hash == digest(raw))
    )).first()
    if found is None:
        return None
    row, account = found
    waiting = row.second_factor_at is None and needs_second_factor(account, policy)
    expired = (now - as_utc(row.last_seen_at) > policy.idle
               or now - as_utc(row.created_at) > policy.lifetime
               or (waiting and now - as_utc(row.created_at) > policy.second_factor_within))
    if expired or not may_log_in(account):
        await db.delete(row)
        return None
    if waiting != pending:
        return None
    if touch and now - as_utc(row.last_seen_at) >= policy.touch_every:
        row.last_seen_at = now
    return _principal(account, "session", row)


async def set_session_lang(db: AsyncSession, session_hash: str, lang: str) -> None:
    row = await db.get(ConsoleSession, session_hash)
    if row is not None:
        row.lang = lang


async def end_session(db: AsyncSession, raw: str) -> None:
    await db.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == digest(raw)))


async def pass_second_factor(db: AsyncSession, session_hash: str,
                             now: datetime | None = None) -> None:
    """The session's TOTP (or recovery) code was right: it is a full session from now on."""
    now = now or utcnow()
    await db.execute(update(ConsoleSession).where(ConsoleSession.id_hash == session_hash)
                     .values(second_factor_at=now, last_seen_at=now))


async def revoke_all(db: AsyncSession, account_id: int, *, keep_session: str | None = None,
                     now: datetime | None = None) -> tuple[int, int]:
    """End every console session (but ``keep_session``, a session hash) and revoke every API
    token of an account. Returns (sessions ended, tokens revoked)."""
    sessions = delete(ConsoleSession).where(ConsoleSession.caseworker_id == account_id)
    if keep_session:
        sessions = sessions.where(ConsoleSession.id_hash != keep_session)
    ended = (await db.execute(sessions)).rowcount  # type: ignore[attr-defined]
    revoked = (await db.execute(
        update(ApiToken).where(ApiToken.caseworker_id == account_id,
                               ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow()))).rowcount  # type: ignore[attr-defined]
    return int(ended or 0), int(revoked or 0)
