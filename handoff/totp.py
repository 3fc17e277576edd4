"""The second factor: TOTP (RFC 6238, 30-second steps, 6 digits) and one-time recovery codes.

The TOTP secret is sealed with the field cipher (a database dump does not hold it); a code is
accepted once only (the last accepted step is remembered, and the check-and-remember is one
conditional UPDATE, so two requests racing with the same code cannot both win). Recovery codes
(80 random bits each) are kept as SHA-256 digests and used up one by one.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

import pyotp
from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.crypto import FieldCipher
from handoff.auth import digest
from handoff.models import Caseworker, RecoveryCode

ISSUER = "Sanad"
STEP_SECONDS = 30
DRIFT_STEPS = 1
"""A code of the step before or after is accepted too (phone clocks drift)."""
RECOVERY_CODES = 10
_CONTEXT = b"caseworkers.totp_secret"
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def seal(cipher: FieldCipher, secret: str) -> bytes:
    return cipher.encrypt_text(secret, context=_CONTEXT)


def secret_of(cipher: FieldCipher, account: Caseworker) -> str | None:
    if account.totp_secret_enc is None:
        return None
    return cipher.decrypt_text(account.totp_secret_enc, context=_CONTEXT)


def offer_secret(cipher: FieldCipher, account: Caseworker) -> str:
    """The secret to enrol with: the one already offered (a reloaded page shows the same QR
    code), or a new 160-bit one. Never replaces a confirmed secret."""
    if account.totp_enrolled_at is not None:
        raise ValueError("already enrolled")
    secret = secret_of(cipher, account)
    if secret is None:
        secret = pyotp.random_base32()
        account.totp_secret_enc = seal(cipher, secret)
    return secret


def uri(secret: str, name: str) -> str:
    """The ``otpauth://`` URI that authenticator apps read from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """The time step ``code`` belongs to (within the drift), if later than ``after``."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if (after is None or step > after) and hmac.compare_digest(
                totp.at(step * STEP_SECONDS), code):
            return step
    return None


async def use_code(db: AsyncSession, cipher: FieldCipher, account: Caseworker, code: str,
                   now: datetime) -> bool:
    """Accept a TOTP code once: the step is claimed by a conditional UPDATE."""
    secret = secret_of(cipher, account)
    if secret is None:
        return False
    step = matching_step(secret, code, now, account.totp_last_step)
    if step is None:
        return False
    claimed = await db.execute(
        update(Caseworker).where(
            Caseworker.id == account.id,
            or_(Caseworker.totp_last_step.is_(None), Caseworker.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    account.totp_last_step = step
    return True


def _normalise(code: str) -> str:
    return "".join(code.lower().split()).replace("-", "")


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))  # 16 * log2(31) > 79 bits
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


async def new_recovery_codes(db: AsyncSession, account_id: int) -> list[str]:
    """Replace an account's recovery codes; the caller shows them once."""
    await db.execute(delete(RecoveryCode).where(RecoveryCode.caseworker_id == account_id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    db.add_all(RecoveryCode(caseworker_id=account_id, code_hash=digest(_normalise(c)))
               for c in codes)
    return codes


async def use_recovery_code(db: AsyncSession, account_id: int, code: str,
                            now: datetime) -> bool:
    code = _normalise(code)
    if len(code) != 16:
        return False
    used = await db.execute(
        update(RecoveryCode).where(RecoveryCode.caseworker_id == account_id,
                                   RecoveryCode.code_hash == digest(code),
                                   RecoveryCode.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False))
    return used.rowcount == 1  # type: ignore[attr-defined]


async def confirm(db: AsyncSession, cipher: FieldCipher, account: Caseworker, code: str,
                  now: datetime) -> list[str] | None:
    """Finish enrolment with a first code from the app; returns the new recovery codes."""
    if account.totp_enrolled_at is not None or not await use_code(db, cipher, account, code,
                                                                   now):
        return None
    account.totp_enrolled_at = now
    return await new_recovery_codes(db, account.id)


async def second_factor(db: AsyncSession, cipher: FieldCipher, account: Caseworker,
                        code: str, now: datetime) -> str | None:
    """``"totp"`` or ``"recovery"`` when ``code`` is a valid, unused one; else None."""
    if account.totp_enrolled_at is None:
        return None
    if await use_code(db, cipher, account, code, now):
        return "totp"
    if await use_recovery_code(db, account.id, code, now):
        return "recovery"
    return None


async def remove(db: AsyncSession, account: Caseworker) -> None:
    """Forget the secret and the recovery codes (a lost phone): the next login enrols again."""
    account.totp_secret_enc = None
    account.totp_enrolled_at = None
    account.totp_last_step = None
    await db.execute(delete(RecoveryCode).where(RecoveryCode.caseworker_id == account.id))
