"""The webhook's protocol: Meta's handshake, signatures before anything else, status codes,
the database being down, and privacy (no text, no number, no wamid in logs or in the clear)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text

from bot.channels.whatsapp import WEBHOOK_PATH, WhatsAppChannel
from bot.config import ConfigError
from bot.store.models import ProcessedInbound, User
from tests.conftest import make_settings
from tests.whatsapp.conftest import (
    APP_SECRET,
    VERIFY_TOKEN,
    Harness,
    bot_core,
    database_down,
    whatsapp_settings,
)
from tests.whatsapp.fake_graph_api import FakeGraphAPI
from tests.whatsapp.payloads import WA_ID


async def users(h: Harness) -> int:
    async with h.sanad.store.session() as db:
        return int(await db.scalar(select(func.count()).select_from(User)) or 0)


# --- verification handshake -----------------------------------------------------------------
async def test_handshake_echoes_the_challenge(wa: Harness) -> None:
    response = await wa.client.get(WEBHOOK_PATH, params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert response.status == 200 and await response.text() == "1158201444"
    assert response.content_type == "text/plain"


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN[:-1], "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    {"hub.challenge": "1"},
])
async def test_handshake_refuses_a_wrong_token(wa: Harness, params: dict[str, str]) -> None:
    response = await wa.client.get(WEBHOOK_PATH, params=params)
    assert response.status == 403 and "1" not in await response.text()


# --- signatures -----------------------------------------------------------------------------
def _forged(body: bytes) -> str:
    return "sha256=" + hmac.new(b"not-the-app-secret", body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("signature", [
    None, "", "sha256=", "sha1=0123", "sha256=nothex" + "0" * 57, "forged", "sha256=" + "0" * 64,
])
async def test_missing_or_malformed_signature_is_401(wa: Harness, signature: str | None) -> None:
    assert await wa.post(wa.meta.messages(wa.meta.text("hello")), signature=signature) == 401
    assert wa.fake.calls == [] and await users(wa) == 0


async def test_forged_signature_is_401_and_nothing_is_read(wa: Harness) -> None:
    body = orjson.dumps(wa.meta.messages(wa.meta.text("hello")))
    assert await wa.post(body, signature=_forged(body)) == 401
    tampered = body.replace(b"hello", b"hallo")
    good_for_original = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert await wa.post(tampered, signature=good_for_original) == 401
    assert wa.fake.calls == [] and await users(wa) == 0


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"'])
async def test_signed_body_that_is_not_a_notification_is_400(wa: Harness, body: bytes) -> None:
    assert await wa.post(body) == 400
    assert wa.fake.calls == []


async def test_signed_but_unknown_shapes_are_acknowledged(wa: Harness) -> None:
    assert await wa.post({"object": "page", "entry": []}) == 200
    assert await wa.post({"object": "whatsapp_business_account", "entry": [{"changes": [
        {"field": "message_template_status_update", "value": {"event": "APPROVED"}}]}]}) == 200
    other_number = wa.meta.notification(
        wa.meta.value(wa.meta.text("hello"), phone_number_id="000111"))
    assert await wa.post(other_number) == 200
    assert wa.fake.calls == [] and await users(wa) == 0


async def test_junk_messages_do_not_cost_the_good_ones(wa: Harness) -> None:
    good = wa.meta.text("مرحبا")
    payload = wa.meta.notification(wa.meta.value(
        {"id": "wamid.junk", "type": "text"}, {"from": WA_ID, "type": "text"}, good,
        wa_id=WA_ID))
    assert await wa.post(payload) == 200
    assert wa.fake.reads() == [good["id"]] and wa.fake.messages(WA_ID)


async def test_batched_bodies_up_to_3_mb_are_read(wa: Harness) -> None:
    payload = wa.meta.messages(wa.meta.text("مرحبا"))
    payload["padding"] = "x" * (1024 * 1024)  # over the app's 256 KB default
    assert await wa.post(payload) == 200
    assert wa.fake.messages(WA_ID)
    payload["padding"] = "x" * (4 * 1024 * 1024)
    assert await wa.post(payload) == 413


# --- the database ---------------------------------------------------------------------------
async def test_database_down_is_503_then_the_retry_is_processed_once(wa_any_db: Harness) -> None:
    h = wa_any_db
    payload = h.meta.messages(h.meta.text("مرحبا"))
    with database_down(h.sanad):
        assert await h.post(payload) == 503
    assert h.fake.calls == []  # nothing sent while nothing was stored
    assert await h.post(payload) == 200
    answered = len(h.fake.messages(WA_ID))
    assert answered and await h.post(payload) == 200  # Meta's second retry: a duplicate
    assert len(h.fake.messages(WA_ID)) == answered and len(h.fake.reads()) == 1


async def test_statuses_while_the_database_is_down_are_retried(wa: Harness) -> None:
    payload = wa.meta.statuses(wa.meta.status("wamid.X", "read"))
    with database_down(wa.sanad):
        assert await wa.post(payload) == 503
    assert await wa.post(payload) == 200


async def test_a_bug_in_a_turn_apologises_and_acknowledges(
    wa: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("the user's words would be here: مرحبا")

    monkeypatch.setattr(wa.sanad.engine, "handle_turn", broken)
    with caplog.at_level(logging.DEBUG):
        assert await wa.say("مرحبا") == 200
    [apology] = wa.fake.texts(WA_ID)
    assert wa.ui("ar", "errors.unavailable") in apology
    assert "مرحبا" not in caplog.text and "ValueError" in caplog.text


# --- configuration ---------------------------------------------------------------------------
async def test_every_setting_is_required(wa_sqlite_url: str, embedded_nlu: Any,
                                         fake: FakeGraphAPI) -> None:
    settings = whatsapp_settings(wa_sqlite_url, fake, whatsapp_app_secret=None,
                                 whatsapp_verify_token=None)
    async with bot_core(settings, embedded_nlu) as sanad:
        with pytest.raises(ConfigError, match="WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN"):
            WhatsAppChannel(sanad)
    async with bot_core(make_settings(wa_sqlite_url), embedded_nlu) as sanad:
        with pytest.raises(ConfigError, match="WHATSAPP_TOKEN"):
            WhatsAppChannel(sanad)


# --- privacy --------------------------------------------------------------------------------
async def test_no_text_number_or_wamid_in_logs_or_in_the_clear(
    wa: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    secret_words = "صاحب الشغل واخد الباسبور بتاعي"
    with caplog.at_level(logging.DEBUG):
        message = wa.meta.text(secret_words)
        assert await wa.post(wa.meta.messages(message)) == 200
        wa.fake.fail_next(2, code=131009, kinds=("text",))  # Meta's error text quotes the number
        wa.fake.fail_next(1, code=131009, kinds=("interactive",))
        await wa.say("hello")
        await wa.post(wa.meta.statuses(wa.meta.status(message["id"], "failed",
                                                      error_code=131026)))
    assert secret_words not in caplog.text and WA_ID not in caplog.text
    assert "131009" in caplog.text  # codes are what operators get
    assert message["id"] not in caplog.text
    async with wa.sanad.store.session() as db:
        stored = [r.message_id for r in await db.scalars(select(ProcessedInbound))]
        dump = " ".join(str(row) for row in (await db.execute(text(
            "SELECT * FROM processed_inbound, users"))).all())
    assert stored and all(s.startswith("wa:") for s in stored)
    assert WA_ID not in dump and message["id"] not in dump and "wamid" not in dump
