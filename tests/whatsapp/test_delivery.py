"""Getting messages out: Graph errors, the outbox, the 24-hour window and delivery reports."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.whatsapp_store import WhatsAppMessage
from tests.whatsapp.conftest import Harness, bot_core, running, whatsapp_settings
from tests.whatsapp.fake_graph_api import FakeGraphAPI, button_ids, visible_text
from tests.whatsapp.payloads import WA_ID

NOTICE = "[template new_message_notice]"


def failed_calls(h: Harness) -> list[Any]:
    return [c for c in h.fake.calls if c.status != 200]


async def tracked(h: Harness) -> list[WhatsAppMessage]:
    async with h.sanad.store.session() as db:
        return list(await db.scalars(select(WhatsAppMessage)
                                     .order_by(WhatsAppMessage.created_at)))


# --- answers within a turn ------------------------------------------------------------------
@pytest.mark.parametrize("code", [130429, 131056, 80007])
async def test_rate_limits_are_retried(wa: Harness, code: int) -> None:
    wa.fake.fail_next(1, code=code, kinds=("interactive",))
    assert await wa.say("hello") == 200
    assert len(failed_calls(wa)) == 1
    assert wa.fake.ok("interactive") and wa.ui("en", "menu.prompt") in visible_text(wa.last())
    [reply] = await wa.outbox("reply")  # the turn's answer, written with the turn: sent
    assert reply.status == "sent"


async def test_server_errors_and_network_failures_are_retried(wa: Harness) -> None:
    wa.fake.fail_next(1, code=None, http_status=503, kinds=("text",))
    wa.fake.fail_next(1, code=131000, kinds=("interactive",))
    assert await wa.say("hello") == 200
    assert [c.status for c in failed_calls(wa)] == [503, 500]
    assert wa.fake.ok("interactive")


async def test_the_outbox_sender_retries_longer_than_the_webhook(wa: Harness) -> None:
    case_id = await wa.open_case()
    await wa.caseworker_says(case_id, "hello")
    wa.fake.fail_next(3, code=130429, kinds=("interactive",))  # the policy allows 4 tries
    assert await wa.deliver_outbox() == 1
    assert len(failed_calls(wa)) == 3 and "hello" in visible_text(wa.last())


async def test_a_slow_meta_does_not_hold_the_webhook(
    wa_sqlite_url: str, embedded_nlu: Any, fake: FakeGraphAPI,
) -> None:
    async with bot_core(whatsapp_settings(wa_sqlite_url, fake), embedded_nlu) as sanad, \
            running(sanad, fake, send_budget=0.3) as h:
        fake.latency = 0.5
        started = time.monotonic()
        assert await h.say("hello") == 200
        assert time.monotonic() - started < 2.0
        [reply] = await h.outbox("reply")
        assert reply.status == "pending"  # the outbox sender delivers it
        fake.latency = 0.0
        assert await h.deliver_outbox() == 1


async def test_an_outage_at_meta_moves_the_answers_to_the_outbox(wa: Harness) -> None:
    wa.fake.fail_next(100, code=None, http_status=502, kinds=("text", "interactive"))
    assert await wa.say("hello") == 200  # the turn happened; Meta must not re-send it
    [queued] = await wa.outbox("reply")
    assert (queued.status, queued.last_error) == ("pending", "whatsapp:None")
    assert await wa.deliver_outbox() == 0  # still down: backs off
    wa.fake._faults.clear()
    assert await wa.deliver_outbox() == 1
    assert visible_text(wa.fake.messages(WA_ID)[0]).startswith(
        wa.ui("en", "menu.welcome")[:20])
    assert button_ids(wa.last())[0] == "menu:learn"
    assert [r.status for r in await wa.outbox("reply")] == ["sent"]


async def test_when_meta_fails_midway_only_the_rest_is_retried(wa: Harness) -> None:
    wa.fake.fail_next(100, code=130429, kinds=("interactive",))
    assert await wa.say("hello") == 200  # the welcome text went out, the menu did not
    assert len(wa.fake.messages(WA_ID)) == 1
    turn_row, rest = await wa.outbox("reply")
    assert (turn_row.status, rest.status) == ("sent", "pending")
    wa.fake._faults.clear()
    assert await wa.deliver_outbox() == 1
    assert [p["type"] for p in wa.fake.messages(WA_ID)] == ["text", "interactive"]


async def test_a_user_who_cannot_receive_is_marked_unreachable(wa: Harness) -> None:
    wa.fake.fail_next(1, code=131026, kinds=("text",))
    assert await wa.say("hello") == 200
    assert (await wa.user()).unreachable is True
    assert not wa.fake.ok("interactive")  # no point in sending the rest
    [reply] = await wa.outbox("reply")
    assert (reply.status, reply.last_error) == ("failed", "whatsapp:131026")
    assert await wa.say("hello again") == 200  # writing again makes them reachable
    assert (await wa.user()).unreachable is False


async def test_a_refused_interactive_message_is_sent_as_numbered_text(
    wa: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    wa.fake.fail_next(1, code=131009, kinds=("interactive",))
    with caplog.at_level(logging.INFO):
        assert await wa.say("hello") == 200
    fallback = visible_text(wa.last())
    assert wa.last()["type"] == "text" and "\n1. " in fallback and "\n6. " in fallback
    assert "131009" in caplog.text and WA_ID not in caplog.text and "hello" not in caplog.text


async def test_one_connection_is_reused(wa: Harness) -> None:
    await wa.say("hello")
    await wa.say("menu")
    peers = {c.peer for c in wa.fake.calls}
    assert len(wa.fake.calls) >= 5 and len(peers) == 1


# --- outside a turn: the outbox, inside and outside the window ------------------------------
async def test_caseworker_reply_and_its_delivery_reports(wa_any_db: Harness) -> None:
    h = wa_any_db
    case_id = await h.open_case()
    await h.caseworker_says(case_id, "Hello, I am Mona. Are you safe now?")
    assert await h.deliver_outbox() == 1
    reply = h.last()
    assert "Are you safe now?" in visible_text(reply) and button_ids(reply) == ["ho:end"]
    [row] = await h.outbox()
    assert row.status == "sent"
    wamid = h.fake.ok("interactive")[-1].wamid
    assert wamid is not None

    for status, expected in [("sent", "sent"), ("delivered", "delivered"), ("read", "read"),
                             ("delivered", "read")]:  # reports may arrive out of order
        assert await h.post(h.meta.statuses(h.meta.status(wamid, status))) == 200
        [row] = await h.outbox()
        assert row.status == expected
    [record] = [r for r in await tracked(h) if r.outbox_id == row.id]  # turns' answers too
    assert (record.kind, record.status) == ("message", "read")
    assert wamid not in record.message_key and WA_ID not in record.message_key


async def test_a_failed_report_fails_the_row_and_marks_a_lost_user(wa: Harness) -> None:
    case_id = await wa.open_case()
    await wa.caseworker_says(case_id, "one")
    await wa.deliver_outbox()
    wamid = wa.fake.ok("interactive")[-1].wamid or ""
    assert await wa.post(wa.meta.statuses(
        wa.meta.status(wamid, "failed", error_code=131026))) == 200
    [row] = await wa.outbox()
    assert (row.status, row.last_error) == ("failed", "whatsapp:131026")
    assert (await wa.user()).unreachable is True


async def test_outside_the_window_a_template_goes_out_and_the_message_waits(
    wa_any_db: Harness,
) -> None:
    h = wa_any_db
    case_id = await h.open_case()
    await h.age_window(25)
    await h.caseworker_says(case_id, "first reply")
    await h.caseworker_says(case_id, "second reply")
    assert await h.deliver_outbox() == 0
    [notice] = [p for p in h.fake.messages(WA_ID) if p["type"] == "template"]
    assert notice["template"] == {"name": "new_message_notice", "language": {"code": "ar"}}
    assert [r.status for r in await h.outbox()] == ["held", "held"]
    assert await h.deliver_outbox() == 0
    assert h.fake.texts(WA_ID).count(NOTICE) == 1  # once per pause, not per message or round
    assert not any("reply" in t for t in h.fake.texts(WA_ID))

    await h.say("مين؟")  # the user answers the notice: the window is open again
    assert await h.deliver_outbox() == 2
    texts = h.fake.texts(WA_ID)
    assert texts.index(next(t for t in texts if "first reply" in t)) < texts.index(
        next(t for t in texts if "second reply" in t))
    assert [r.status for r in await h.outbox()] == ["sent", "sent"]


async def test_meta_saying_131047_holds_the_message_until_the_user_writes(wa: Harness) -> None:
    case_id = await wa.open_case()
    await wa.caseworker_says(case_id, "are you there?")
    wa.fake.fail_next(1, code=131047, kinds=("interactive",))
    assert await wa.deliver_outbox() == 0
    assert wa.fake.texts(WA_ID)[-1] == NOTICE
    [row] = await wa.outbox()
    assert (row.status, row.last_error) == ("held", "held:window")
    await wa.say("نعم")
    assert await wa.deliver_outbox() == 1
    assert "are you there?" in visible_text(wa.last())


async def test_a_late_131047_report_brings_the_message_back_and_holds_it(wa: Harness) -> None:
    case_id = await wa.open_case()
    await wa.caseworker_says(case_id, "are you there?")
    assert await wa.deliver_outbox() == 1
    wamid = wa.fake.ok("interactive")[-1].wamid or ""
    assert await wa.post(wa.meta.statuses(
        wa.meta.status(wamid, "failed", error_code=131047))) == 200
    assert await wa.deliver_outbox() == 0  # Meta says the window is closed: notice, hold
    assert wa.fake.texts(WA_ID)[-1] == NOTICE
    [row] = await wa.outbox()
    assert row.status == "held"
    await wa.say("hi")
    assert await wa.deliver_outbox() == 1
    assert "are you there?" in visible_text(wa.last())


async def test_after_a_quick_exit_not_even_a_notice(wa: Harness) -> None:
    case_id = await wa.open_case()
    await wa.say("خروج")
    await wa.age_window(30)
    await wa.caseworker_says(case_id, "later")
    assert await wa.deliver_outbox() == 0
    assert NOTICE not in wa.fake.texts(WA_ID)
    [row] = await wa.outbox()
    assert (row.status, row.last_error) == ("paused", "contact paused")  # until they say OK


async def test_a_refused_template_still_keeps_the_message(
    wa: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    case_id = await wa.open_case()
    await wa.age_window(48)
    await wa.caseworker_says(case_id, "hello")
    wa.fake.fail_next(1, code=132001, kinds=("template",))
    with caplog.at_level(logging.WARNING):
        assert await wa.deliver_outbox() == 0
    [row] = await wa.outbox()
    assert row.status == "held" and "132001" in caplog.text


async def test_blocked_and_refused_rows(wa: Harness) -> None:
    case_id = await wa.open_case()
    await wa.caseworker_says(case_id, "refused")
    wa.fake.fail_next(2, code=131009, kinds=("interactive", "text"))
    assert await wa.deliver_outbox() == 0
    [refused] = await wa.outbox()
    assert (refused.status, refused.last_error) == ("failed", "whatsapp:131009")
    assert (await wa.user()).unreachable is False  # our mistake, not theirs

    await wa.caseworker_says(case_id, "blocked")
    wa.fake.fail_next(1, code=131026, kinds=("interactive",))
    assert await wa.deliver_outbox() == 0
    [_, blocked] = await wa.outbox()
    assert blocked.status == "failed" and (await wa.user()).unreachable is True


async def test_operator_errors_keep_the_message_for_a_later_try(wa: Harness) -> None:
    case_id = await wa.open_case()
    await wa.caseworker_says(case_id, "hello")
    wa.fake.fail_next(1, code=190, http_status=401, kinds=("interactive",))
    assert await wa.deliver_outbox() == 0
    [row] = await wa.outbox()
    assert row.status == "pending" and row.attempts == 1
    assert await wa.deliver_outbox() == 1


async def test_the_background_sender_delivers_released_messages(
    wa_sqlite_url: str, embedded_nlu: Any, fake: FakeGraphAPI,
) -> None:
    async with bot_core(whatsapp_settings(wa_sqlite_url, fake), embedded_nlu) as sanad, \
            running(sanad, fake, deliver_outbox=True) as h:
        case_id = await h.open_case()
        await h.age_window(26)
        await h.caseworker_says(case_id, "while you were away")
        await fake.wait_for(lambda: NOTICE in fake.texts(WA_ID))
        await h.say("hello")
        await fake.wait_for(lambda: "while you were away" in " ".join(fake.texts(WA_ID)))
