"""The sealed parts of a referral: the shared fields and the chat token (field cipher)."""

from __future__ import annotations

from typing import Any

import orjson

from bot.store.crypto import FieldCipher
from handoff.referrals.models import Referral

SHARED_CONTEXT = b"referrals.shared"
TOKEN_CONTEXT = b"referrals.consent_token"


def seal_shared(cipher: FieldCipher, fields: dict[str, Any]) -> bytes:
    return cipher.encrypt(orjson.dumps({"fields": fields}), context=SHARED_CONTEXT)


def shared_fields(cipher: FieldCipher, referral: Referral) -> dict[str, Any] | None:
    """The sealed fields, opened; None once consent ended."""
    if referral.shared_enc is None:
        return None
    opened: dict[str, Any] = orjson.loads(cipher.decrypt(referral.shared_enc,
                                                         context=SHARED_CONTEXT))
    return dict(opened.get("fields") or {})
