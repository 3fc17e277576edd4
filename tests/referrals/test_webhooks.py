"""Signed webhooks to a partner's system, against a fake endpoint on 127.0.0.1: the signature,
retries with backoff after 5xx and timeouts (a fake clock, no sleeping for the backoff), the
same delivery id on every retry, giving up and auditing, and no shared field after consent
ended."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.store.repository import utcnow
from handoff.models import AuditEntry
from handoff.referrals import partners, webhooks
from handoff.referrals.directory import PartnerDirectory
from handoff.referrals.models import WebhookDelivery
from tests.handoff.conftest import Console
from tests.referrals.conftest import SHELTER, add_partner_accounts, call
from tests.referrals.test_lifecycle import consented


@dataclass
class FakePartner:
    """A partner's case system: answers each POST with the next planned reply."""

    plan: list[int | str] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((dict(request.headers), body))
        step = self.plan.pop(0) if self.plan else 200
        if step == "hang":
            await asyncio.sleep(1.5)
            step = 200
        return web.Response(status=int(step))


@pytest.fixture
async def fake_partner() -> AsyncIterator[tuple[FakePartner, str]]:
    fake = FakePartner()
    app = web.Application()
    app.router.add_post("/hook", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("/hook"))
    await server.close()


async def hooked(console: Console, url: str) -> str:
    async with console.sanad.store.session() as db:
        return await webhooks.set_webhook(db, console.sanad.store.cipher, SHELTER, url,
                                          allow_http=True)


async def test_signed_retried_after_5xx_and_timeout_with_one_delivery_id(
        console_any_db: Console, fake_partner: tuple[FakePartner, str]) -> None:
    console = console_any_db
    fake, url = fake_partner
    await add_partner_accounts(console)
    secret = await hooked(console, url)
    fake.plan = [503, "hang", 200]
    await consented(console, "hook-retry")
    store = console.sanad.store
    start = utcnow()
    async with aiohttp.ClientSession() as session:
        first = await webhooks.deliver_due(store, session, now=start, timeout=0.5)
        assert first == {"sent": 0, "retry": 1, "failed": 0}
        early = await webhooks.deliver_due(store, session, now=start + timedelta(seconds=29),
                                           timeout=0.5)
        assert early == {"sent": 0, "retry": 0, "failed": 0}, "backoff is respected"
        second = await webhooks.deliver_due(store, session, now=start + timedelta(seconds=31),
                                            timeout=0.5)
        assert second == {"sent": 0, "retry": 1, "failed": 0}
        third = await webhooks.deliver_due(store, session, now=start + timedelta(minutes=5),
                                           timeout=0.5)
        assert third == {"sent": 1, "retry": 0, "failed": 0}
        again = await webhooks.deliver_due(store, session, now=start + timedelta(hours=2))
        assert again == {"sent": 0, "retry": 0, "failed": 0}, "delivered once, then done"
    assert len(fake.received) == 3
    ids = {headers["X-Sanad-Delivery"] for headers, _ in fake.received}
    assert len(ids) == 1, "the receiver de-duplicates on one id across retries"
    for headers, body in fake.received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Sanad-Signature"], expected)
        payload = json.loads(body)
        assert payload["id"] in ids and payload["event"] == "referral.sent"
        assert payload["referral"]["shared"]["summary"] == "needs a safe place tonight"
        assert "case_id" not in payload["referral"]
    async with store.session() as db:
        errors = list(await db.scalars(select(AuditEntry.detail).where(
            AuditEntry.action == "webhook.retry").order_by(AuditEntry.id)))
    assert errors == ["http_503", "timeout"]


async def test_gives_up_after_max_attempts_and_audits(
        console_sqlite: Console, fake_partner: tuple[FakePartner, str]) -> None:
    console = console_sqlite
    fake, url = fake_partner
    await add_partner_accounts(console)
    await hooked(console, url)
    fake.plan = [500] * webhooks.MAX_ATTEMPTS
    await consented(console, "hook-fail")
    now = utcnow()
    async with aiohttp.ClientSession() as session:
        for _ in range(webhooks.MAX_ATTEMPTS):
            await webhooks.deliver_due(console.sanad.store, session, now=now)
            now += webhooks.MAX_BACKOFF + timedelta(seconds=1)
    async with console.sanad.store.session() as db:
        row = await db.scalar(select(WebhookDelivery))
        failed = await db.scalar(select(AuditEntry.detail).where(
            AuditEntry.action == "webhook.failed"))
    assert row is not None and row.status == "failed" and row.attempts == webhooks.MAX_ATTEMPTS
    assert failed == "http_500"
    assert len(fake.received) == webhooks.MAX_ATTEMPTS
    # Nothing lost: the partner API still shows the referral.
    tokens = await add_partner_tokens(console)
    [seen] = (await call(console, "GET", "/api/referrals", tokens))[1]
    assert seen["status"] == "sent"


async def add_partner_tokens(console: Console) -> str:
    async with console.sanad.store.session() as db:
        return await partners.issue_token(db, PartnerDirectory.load(console.sanad.content),
                                          SHELTER)


async def test_after_consent_ends_only_the_stop_goes_out_without_fields(
        console_sqlite: Console, fake_partner: tuple[FakePartner, str]) -> None:
    console = console_sqlite
    fake, url = fake_partner
    await add_partner_accounts(console)
    await hooked(console, url)
    _person, _, rid = await consented(console, "hook-stop")
    await call(console, "POST", f"/api/referrals/{rid}/consent-withdrawn", console.tokens["cw1"])
    async with aiohttp.ClientSession() as session:
        await webhooks.deliver_due(console.sanad.store, session)
    [(headers, body)] = fake.received
    payload = json.loads(body)
    assert headers["X-Sanad-Event"] == "referral.consent_withdrawn"
    assert payload["referral"]["shared"] is None and payload["referral"]["instruction"] == "stop"
    assert b"safe place" not in body


def test_webhook_urls_must_be_https() -> None:
    with pytest.raises(webhooks.WebhookError):
        webhooks.check_url("http://partner.example/hook")
    with pytest.raises(webhooks.WebhookError):
        webhooks.check_url("ftp://partner.example/hook")
    assert webhooks.check_url("https://partner.example/hook")


def test_the_worker_runs_the_webhook_job(console_sqlite: Console) -> None:
    from bot.worker import Worker

    names = [job.name for job in Worker(console_sqlite.sanad.settings)
             .jobs(console_sqlite.sanad.store)]
    assert "referral-webhooks" in names
