"""Every message is tracked, the turn's own answers included, so a ``failed`` status webhook
that comes after Meta accepted it is acted on: sent again, raised, or recorded.

The fake Graph API accepts the message, then POSTs the ``failed`` status (signed) to the real
webhook route, as Meta does (``FakeGraphAPI.fail_later``).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.campaigns import campaign_channels
from bot.channels.whatsapp_store import RETRY_PREFIX, WhatsAppMessage
from bot.engine import apology
from bot.messages import Outbound
from bot.outbox import MAX_ATTEMPTS
from bot.outreach import cli
from bot.store.models import Case, EventRecord, Subscription
from tests.outreach.conftest import new_campaign
from tests.outreach.helpers import delivery_statuses
from tests.whatsapp.conftest import Harness
from tests.whatsapp.payloads import WA_ID


async def tracked(h: Harness) -> list[WhatsAppMessage]:
    async with h.sanad.store.session() as db:
        return list(await db.scalars(select(WhatsAppMessage).order_by(WhatsAppMessage.position)))


def counter(h: Harness, name: str, **labels: str) -> float:
    assert h.channel.metrics is not None
    return h.channel.metrics.counters[(name, tuple(sorted(labels.items())))]


async def test_the_answers_of_a_turn_are_tracked(wa_any_db: Harness) -> None:
    h = wa_any_db
    await h.say("hello")
    [row] = await h.outbox("reply")
    records = await tracked(h)
    assert [(r.kind, r.status, r.outbox_id, r.position) for r in records] == [
        ("message", "sent", row.id, 0), ("message", "sent", row.id, 1)]
    wamids = [c.wamid or "" for c in h.fake.ok() if c.kind != "read"]
    assert not {r.message_key for r in records} & set(wamids)
    for wamid in wamids:
        await h.post(h.meta.statuses(h.meta.status(wamid, "delivered")))
    [row] = await h.outbox("reply")
    assert row.status == "delivered"


async def test_a_passing_failure_sends_only_that_answer_again(wa_any_db: Harness) -> None:
    h = wa_any_db
    h.fake.fail_later(1, code=131000, kinds=("interactive",))
    assert await h.say("hello") == 200
    await h.fake.settle()
    assert [r.answer for r in h.fake.reports] == [200]
    [turn, again] = await h.outbox("reply")
    assert turn.status == "sent" and again.idempotency_key.startswith(RETRY_PREFIX)
    assert await h.deliver_outbox() == 1
    kinds = [p["type"] for p in h.fake.messages(WA_ID)]
    assert kinds == ["text", "interactive", "interactive"]  # the welcome is not repeated
    await h.post(h.fake.reports[0].body)  # Meta's retry of the same report: no second copy
    assert len(await h.outbox("reply")) == 2


async def test_a_one_message_row_goes_out_again_as_it_is(wa: Harness) -> None:
    case_id = await wa.open_case()
    await wa.caseworker_says(case_id, "are you safe?")
    wa.fake.fail_later(1, code=130429, kinds=("interactive",))
    assert await wa.deliver_outbox() == 1
    await wa.fake.settle()
    [row] = await wa.outbox()
    assert (row.status, row.last_error) == ("pending", "whatsapp:130429")
    assert await wa.deliver_outbox() == 1
    [row] = await wa.outbox()
    assert row.status == "sent"
    assert sum("are you safe?" in t for t in wa.fake.texts(WA_ID)) == 2
    wamid = wa.fake.ok("interactive")[-1].wamid or ""
    await wa.post(wa.meta.statuses(wa.meta.status(wamid, "read")))
    [row] = await wa.outbox()
    assert row.status == "read"  # the new sending speaks for the row, not the failed one


async def test_sending_again_stops_after_the_outbox_attempts(wa: Harness) -> None:
    case_id = await wa.open_case()
    await wa.caseworker_says(case_id, "hello?")
    wa.fake.fail_later(100, code=131000, kinds=("interactive",))
    for _ in range(MAX_ATTEMPTS + 2):
        await wa.deliver_outbox()
        await wa.fake.settle()
    [row] = await wa.outbox()
    assert row.status == "failed" and row.attempts == MAX_ATTEMPTS
    assert sum("hello?" in t for t in wa.fake.texts(WA_ID)) == MAX_ATTEMPTS


async def test_an_undelivered_emergency_answer_is_raised(
    wa: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    wa.fake.fail_later(1, code=131000)
    words = "أنا محبوس ومش قادر أخرج وبيضربوني"
    with caplog.at_level(logging.INFO):
        assert await wa.say(words) == 200
        await wa.fake.settle()
    assert "emergency numbers was not delivered" in caplog.text
    assert counter(wa, "sanad_whatsapp_emergency_total", outcome="undelivered") == 1
    assert WA_ID not in caplog.text and words not in caplog.text
    assert await wa.deliver_outbox() == 1  # and it goes out again
    assert sum(wa.ui("ar", "emergency.intro") in t for t in wa.fake.texts(WA_ID)) == 2
    async with wa.sanad.store.session() as db:  # and a person is asked to follow up
        cases = (await db.scalars(select(Case))).all()
    assert [(c.priority, c.status) for c in cases] == [("urgent", "waiting")]


async def test_the_emergency_text_and_the_apology_are_recognised(wa: Harness) -> None:
    is_emergency = wa.channel.emergency
    for lang in ("ar", "en", "fr"):
        assert is_emergency(apology(wa.sanad.ui, wa.sanad.content, lang))
    assert not is_emergency(Outbound(wa.ui("en", "menu.prompt")))


async def test_a_late_131026_marks_the_user_unreachable(wa: Harness) -> None:
    wa.fake.fail_later(1, code=131026, kinds=("text",))
    await wa.say("hello")
    await wa.fake.settle()
    assert (await wa.user()).unreachable is True


async def campaign(h: Harness, code: int) -> tuple[int, Any]:
    """One subscriber, one campaign through the real WhatsApp deliverer; Meta accepts the
    message and reports ``code`` later."""
    await h.subscribe()
    store = h.sanad.store
    campaign_id = await new_campaign(store, "wa")
    h.fake.fail_later(1, code=code)
    h.fake.hold_reports = True  # the campaign worker is another process: Meta reports later
    async with campaign_channels(h.sanad.settings, store) as channels:
        assert await cli.send(store, "wa", channels.deliverers, rate=200,
                              on_sent=channels.on_sent, options={"idle": 0.05}) == 0
    await h.fake.release_reports()
    return campaign_id, await delivery_statuses(store, campaign_id)


async def test_the_marketing_limit_holds_a_campaign_message(wa: Harness) -> None:
    _, statuses = await campaign(wa, 131049)
    assert statuses == {"held": 1}
    async with wa.sanad.store.session() as db:
        assert await db.scalar(select(Subscription.topics))  # still opted in


async def test_stopped_marketing_is_an_opt_out(wa: Harness) -> None:
    _, statuses = await campaign(wa, 131050)
    assert statuses == {"skipped": 1}
    async with wa.sanad.store.session() as db:
        assert await db.scalar(select(Subscription.topics)) is None
        names = list(await db.scalars(select(EventRecord.name)))
    assert names[-1] == "Unsubscribed"


async def sync_campaign(h: Harness, code: int) -> Any:
    """As :func:`campaign`, but Meta refuses the send at once with ``code``."""
    await h.subscribe()
    store = h.sanad.store
    campaign_id = await new_campaign(store, "wa")
    h.fake.fail_next(1, code=code)
    async with campaign_channels(h.sanad.settings, store) as channels:
        assert await cli.send(store, "wa", channels.deliverers, rate=200,
                              on_sent=channels.on_sent, options={"idle": 0.05}) == 0
    return await delivery_statuses(store, campaign_id)


async def test_a_refused_send_over_the_marketing_limit_waits(wa: Harness) -> None:
    assert await sync_campaign(wa, 131049) == {"held": 1}
    async with wa.sanad.store.session() as db:
        assert await db.scalar(select(Subscription.topics))  # still opted in


async def test_a_refused_send_to_someone_who_stopped_marketing_opts_them_out(
    wa: Harness,
) -> None:
    statuses = await sync_campaign(wa, 131050)
    assert "sent" not in statuses and "held" not in statuses
    async with wa.sanad.store.session() as db:
        assert await db.scalar(select(Subscription.topics)) is None
