"""Signed webhooks to a partner's own case-management system.

A referral step owed to a partner with a webhook is a ``WebhookDelivery`` row written in the
step's transaction; ``sanad worker`` (job ``referral-webhooks``) POSTs due rows. Each POST:

* body: ``{"id": <delivery id>, "event": "referral.sent", "occurred_at": ..., "referral": {the
  partner's view}}``, built from the referral *as it is now* (after consent ended, it carries no
  shared field);
* headers ``X-Sanad-Delivery`` (the same id on every retry: the receiver de-duplicates on it),
  ``X-Sanad-Event`` and ``X-Sanad-Signature: sha256=<hex HMAC-SHA256 of the body with the
  partner's webhook secret>``;
* any 2xx settles it; a timeout, a connection error or another status is retried with
  exponential backoff (30 s doubling, at most an hour) up to ``MAX_ATTEMPTS``, then marked
  failed and audited. Nothing is lost: the row stays, and the partner API still shows the state.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.crypto import FieldCipher
from bot.store.repository import Store, as_utc, utcnow
from handoff import audit
from handoff.referrals import views
from handoff.referrals.models import PartnerWebhook, Referral, WebhookDelivery

log = logging.getLogger(__name__)

SECRET_CONTEXT = b"partner_webhooks.secret"
MAX_ATTEMPTS = 10
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
LEASE = timedelta(seconds=60)
TIMEOUT_S = 10.0
STOP_EVENTS = ("referral.withdrawn", "referral.consent_withdrawn")


class WebhookError(ValueError):
    pass


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_url(url: str, *, allow_http: bool = False) -> str:
    parts = urlsplit(url)
    if parts.scheme not in (("https", "http") if allow_http else ("https",)) or not parts.netloc:
        raise WebhookError("the webhook URL must be https://host/...")
    if len(url) > 500:
        raise WebhookError("the webhook URL is longer than 500 characters")
    return url


async def set_webhook(db: AsyncSession, cipher: FieldCipher, partner_id: str, url: str, *,
                      allow_http: bool = False) -> str:
    """Register (or replace) a partner's webhook; returns the new secret, shown once."""
    check_url(url, allow_http=allow_http)
    secret = secrets.token_hex(32)
    sealed = cipher.encrypt_text(secret, context=SECRET_CONTEXT)
    row = await db.get(PartnerWebhook, partner_id)
    if row is None:
        db.add(PartnerWebhook(partner_id=partner_id, url=url, secret_enc=sealed, active=True,
                              created_at=utcnow()))
    else:
        row.url, row.secret_enc, row.active = url, sealed, True
    return secret


async def enqueue(db: AsyncSession, cipher: FieldCipher, referral: Referral, event: str) -> bool:
    """Owe the partner a POST for ``event`` (if it has a webhook). When consent ends, an
    undelivered ``referral.sent`` is cancelled: the stop event follows instead."""
    hook = await db.get(PartnerWebhook, referral.partner_id)
    if event in STOP_EVENTS:
        await db.execute(update(WebhookDelivery).where(
            WebhookDelivery.referral_id == referral.id, WebhookDelivery.status == "pending",
            WebhookDelivery.event.not_in(STOP_EVENTS)).values(status="cancelled")
            .execution_options(synchronize_session=False))
    if hook is None or not hook.active:
        return False
    now = utcnow()
    db.add(WebhookDelivery(delivery_id=uuid.uuid4().hex, partner_id=referral.partner_id,
                           referral_id=referral.id, event=event, status="pending",
                           attempts=0, next_attempt_at=now, created_at=now))
    return True


@dataclass(frozen=True)
class _Due:
    id: int
    delivery_id: str
    event: str
    url: str
    secret: bytes
    body: bytes
    case_id: int | None


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, BASE_BACKOFF * (2 ** max(0, attempts - 1)))


async def _lease(store: Store, now: datetime, batch: int) -> list[_Due]:
    cipher = store.cipher
    async with store.session() as db:
        query = (select(WebhookDelivery).where(WebhookDelivery.status == "pending",
                                               WebhookDelivery.next_attempt_at <= now)
                 .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(batch))
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        due = []
        for row in list(await db.scalars(query)):
            hook = await db.get(PartnerWebhook, row.partner_id)
            referral = await db.get(Referral, row.referral_id) if row.referral_id else None
            if hook is None or not hook.active or referral is None:
                row.status, row.last_error = "cancelled", "no webhook or referral"
                continue
            row.attempts += 1
            row.next_attempt_at = now + LEASE  # leased: another worker skips it meanwhile
            steps = await views.steps_of(db, [referral.id])
            payload: dict[str, Any] = {
                "id": row.delivery_id, "event": row.event,
                "occurred_at": as_utc(row.created_at).isoformat(),
                "referral": views.for_partner(cipher, referral, steps[referral.id]),
            }
            due.append(_Due(row.id, row.delivery_id, row.event, hook.url,
                            cipher.decrypt_text(hook.secret_enc, context=SECRET_CONTEXT).encode(),
                            orjson.dumps(payload), referral.case_id))
    return due


async def _post(session: aiohttp.ClientSession, due: _Due, timeout: float) -> str | None:
    """None when the partner took it; else a short error code (no body, no URL)."""
    headers = {"Content-Type": "application/json", "X-Sanad-Delivery": due.delivery_id,
               "X-Sanad-Event": due.event, "X-Sanad-Signature": signature(due.secret, due.body)}
    try:
        async with session.post(due.url, data=due.body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout),
                                allow_redirects=False) as response:
            await response.read()
            return None if 200 <= response.status < 300 else f"http_{response.status}"
    except TimeoutError:
        return "timeout"
    except aiohttp.ClientError as exc:
        return type(exc).__name__[:64]


async def deliver_due(store: Store, session: aiohttp.ClientSession, *,
                      now: datetime | None = None, timeout: float = TIMEOUT_S,
                      batch: int = 20) -> dict[str, int]:
    """One round: POST every due delivery once; returns counts by result."""
    now = now or utcnow()
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for due in await _lease(store, now, batch):
        error = await _post(session, due, timeout)
        async with store.session() as db:
            row = await db.get(WebhookDelivery, due.id)
            if row is None:
                continue
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", utcnow(), None
                counts["sent"] += 1
                audit.record(db, "system", "webhook.sent", due.case_id, detail=due.event)
            elif row.attempts >= MAX_ATTEMPTS:
                row.status, row.last_error = "failed", error
                counts["failed"] += 1
                audit.record(db, "system", "webhook.failed", due.case_id, detail=error)
                log.warning("referral webhook %s failed for good (%s)", due.id, error)
            else:
                row.last_error, row.next_attempt_at = error, now + backoff(row.attempts)
                counts["retry"] += 1
                audit.record(db, "system", "webhook.retry", due.case_id, detail=error)
    return counts


async def run_job(store: Store) -> dict[str, int]:
    """The worker's ``referral-webhooks`` job."""
    async with aiohttp.ClientSession() as session:
        return await deliver_due(store, session)
