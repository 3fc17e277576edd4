"""The inbox fields and views of the case API (issue #20), on SQLite and the real PostgreSQL:
thread times, trigger, labels, the WhatsApp reply window, filtered views, reopening, and
closing only with an explicit outcome."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update

from bot.app import Sanad
from bot.store.models import Case, CaseMessage, OutboxMessage
from bot.store.repository import utcnow
from handoff.models import AuditEntry, CaseNote
from handoff.queue import TRIGGERS, list_cases
from tests.handoff.conftest import Console, make_case

WHEN = utcnow().replace(microsecond=0) - timedelta(hours=2)
LIST_KEYS = {"id", "alias", "status", "priority", "risk_level", "indicators", "language",
             "channel", "created_at", "claimed_at", "assignee", "contact_paused", "trigger",
             "labels", "waiting_since", "last_user_message_at", "unanswered", "window"}



class Api:
    """One caller of the JSON API with their bearer token."""

    def __init__(self, console: Console, name: str) -> None:
        self.console, self.name = console, name

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        client = await self.console.browser()
        headers = {"Authorization": f"Bearer {self.console.tokens[self.name]}"}
        response = await client.request(method, path, json=body, headers=headers)
        return response.status, await response.json()

    async def get(self, path: str) -> Any:
        status, body = await self.call("GET", path)
        assert status == 200, body
        return body

    async def cases(self, query: str = "") -> list[dict[str, Any]]:
        return await self.get(f"/api/cases{query}")

    async def ids(self, query: str = "") -> list[int]:
        return [c["id"] for c in await self.cases(query)]


async def add_message(sanad: Sanad, case_id: int, sender: str, at: datetime,
                      text: str = "MESSAGE-CANARY") -> None:
    async with sanad.store.session() as db:
        db.add(CaseMessage(case_id=case_id, sender=sender,
                           author="cw1" if sender == "caseworker" else None,
                           text_enc=sanad.store.cipher.encrypt_text(
                               text, context=b"case_messages.text"),
                           created_at=at))


async def audit_rows(sanad: Sanad, action: str) -> list[tuple[str, int | None, str | None]]:
    async with sanad.store.session() as db:
        rows = await db.execute(select(AuditEntry.actor, AuditEntry.case_id, AuditEntry.detail)
                                .where(AuditEntry.action == action).order_by(AuditEntry.id))
        return [(r.actor, r.case_id, r.detail) for r in rows]


# --- fields ------------------------------------------------------------------------------

async def test_thread_times_follow_who_wrote_last(inbox: Console) -> None:
    sanad, sup = inbox.sanad, Api(inbox, "sup")
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    silent = await make_case(sanad)

    def at(minutes: int) -> str:
        return (WHEN + timedelta(minutes=minutes)).isoformat()

    async def fields() -> tuple[Any, Any, Any]:
        item = next(c for c in await sup.cases() if c["id"] == case_id)
        detail = await sup.get(f"/api/cases/{case_id}")
        shown = (item["waiting_since"], item["last_user_message_at"], item["unanswered"])
        assert shown == (detail["waiting_since"], detail["last_user_message_at"],
                         detail["unanswered"]), "the list and the detail agree"
        return shown

    assert await fields() == (None, None, False)
    await add_message(sanad, case_id, "user", WHEN)
    await add_message(sanad, case_id, "user", WHEN + timedelta(minutes=3))
    assert await fields() == (at(0), at(3), True)
    await add_message(sanad, case_id, "caseworker", WHEN + timedelta(minutes=5))
    assert await fields() == (None, at(3), False)
    await add_message(sanad, case_id, "user", WHEN + timedelta(minutes=9))
    await add_message(sanad, case_id, "user", WHEN + timedelta(minutes=12))
    assert await fields() == (at(9), at(12), True), "only messages after the last answer wait"

    body = await sup.cases()
    assert all(set(c) == LIST_KEYS for c in body)
    quiet = next(c for c in body if c["id"] == silent)
    assert (quiet["waiting_since"], quiet["unanswered"]) == (None, False)
    assert "CANARY" not in str(body), "no message text in list items"


async def test_the_trigger_is_derived_from_the_reason_the_case_was_opened(
    inbox: Console,
) -> None:
    expected = {**TRIGGERS, "something_new": "request"}
    ids = {await make_case(inbox.sanad, reason=reason): trigger
           for reason, trigger in expected.items()}
    shown = {c["id"]: c["trigger"] for c in await Api(inbox, "sup").cases()}
    assert shown == ids
    assert set(shown.values()) == {"emergency", "screening", "request", "minor",
                                   "child_at_risk"}
    one = next(iter(ids))
    assert (await Api(inbox, "cw1").get(f"/api/cases/{one}"))["trigger"] == ids[one]


async def test_whatsapp_cases_show_the_reply_window_and_a_held_reply(inbox: Console) -> None:
    sanad, cw1 = inbox.sanad, Api(inbox, "cw1")
    last_wrote = utcnow().replace(microsecond=0) - timedelta(hours=25)
    closed_window = await make_case(sanad, channel="whatsapp", last_inbound_at=last_wrote)
    open_window = await make_case(sanad, channel="whatsapp",
                                  last_inbound_at=utcnow() - timedelta(hours=1))
    terminal = await make_case(sanad)

    windows = {c["id"]: c["window"] for c in await cw1.cases()}
    assert windows[closed_window] == {"open": False,
                                      "open_until": (last_wrote + timedelta(hours=24)).isoformat()}
    assert windows[open_window]["open"] is True
    assert windows[terminal] is None, "a channel without a reply window"

    assert (await cw1.call("POST", f"/api/cases/{closed_window}/claim"))[0] == 200
    status, _ = await cw1.call("POST", f"/api/cases/{closed_window}/messages",
                               {"text": "are you safe?"})
    assert status == 201
    async with sanad.store.session() as db:  # what the WhatsApp outbox does outside the window
        await db.execute(update(OutboxMessage).where(OutboxMessage.kind == "caseworker")
                         .values(status="held"))
    thread = await cw1.get(f"/api/cases/{closed_window}/messages")
    assert [(m["from"], m["status"]) for m in thread] == [("caseworker", "held")]
    detail = await cw1.get(f"/api/cases/{closed_window}")
    assert detail["window"]["open"] is False and detail["unanswered"] is False


# --- labels ------------------------------------------------------------------------------

async def test_supervisors_label_cases_and_every_change_is_audited(inbox: Console) -> None:
    sanad, sup, cw1 = inbox.sanad, Api(inbox, "sup"), Api(inbox, "cw1")
    case_id = await make_case(sanad)
    path = f"/api/cases/{case_id}/labels"

    status, body = await sup.call("POST", path, {"add": ["needs_interpreter", "follow-up"]})
    assert (status, body) == (200, {"id": case_id, "labels": ["needs_interpreter", "follow-up"]})
    status, body = await sup.call("POST", path, {"add": ["legal"], "remove": ["follow-up"]})
    assert body["labels"] == ["needs_interpreter", "legal"]
    assert (await cw1.get(f"/api/cases/{case_id}"))["labels"] == ["needs_interpreter", "legal"]
    assert next(c for c in await cw1.cases() if c["id"] == case_id)["labels"] == [
        "needs_interpreter", "legal"]

    assert (await cw1.call("POST", path, {"add": ["mine"]}))[0] == 403
    for bad in ({"add": ["tel_01012345678"]}, {"add": ["Capital"]}, {"add": "legal"},
                {"add": [5]}, {}, {"add": ["x" * 40]}, {"remove": ["a b"]}):
        status, body = await sup.call("POST", path, bad)
        assert status == 400 and "error" in body, bad
    too_many = [f"l{i}" for i in range(11)]
    assert (await sup.call("POST", path, {"add": too_many}))[0] == 400

    assert await audit_rows(sanad, "case.label_add") == [
        ("sup", case_id, "needs_interpreter"), ("sup", case_id, "follow-up"),
        ("sup", case_id, "legal")]
    assert await audit_rows(sanad, "case.label_remove") == [("sup", case_id, "follow-up")]
    assert ("cw1", case_id, None) in await audit_rows(sanad, "case.denied")
    assert (await sup.get(f"/api/cases/{case_id}"))["labels"] == ["needs_interpreter", "legal"]


# --- views -------------------------------------------------------------------------------

async def test_views_filter_the_queue_within_the_callers_role(inbox: Console) -> None:
    sanad = inbox.sanad
    sup, cw1, cw2 = Api(inbox, "sup"), Api(inbox, "cw1"), Api(inbox, "cw2")
    waiting = await make_case(sanad, minutes_ago=10)
    urgent_waiting = await make_case(sanad, priority="urgent", minutes_ago=5)
    mine = await make_case(sanad, status="claimed", assignee="cw1", minutes_ago=8)
    urgent_theirs = await make_case(sanad, priority="urgent", status="claimed", assignee="cw2")
    closed_mine = await make_case(sanad, status="claimed", assignee="cw1", minutes_ago=20)
    closed_theirs = await make_case(sanad, status="claimed", assignee="cw2", minutes_ago=30)
    assert (await cw1.call("POST", f"/api/cases/{closed_mine}/close",
                           {"outcome": "advice_given"}))[0] == 200
    assert (await cw2.call("POST", f"/api/cases/{closed_theirs}/close",
                           {"outcome": "referred"}))[0] == 200

    assert await cw1.ids() == [urgent_waiting, waiting, mine]
    assert await cw1.ids("?view=mine") == [mine]
    assert await cw1.ids("?view=unassigned") == [urgent_waiting, waiting]
    assert await cw1.ids("?view=urgent") == [urgent_waiting]
    assert await cw1.ids("?view=closed") == [closed_mine]
    assert await sup.ids("?view=mine") == []
    assert await sup.ids("?view=urgent") == [urgent_waiting, urgent_theirs]
    assert await sup.ids("?view=closed") == [closed_theirs, closed_mine], "latest closed first"
    assert await cw2.ids("?view=mine") == [urgent_theirs]

    alias = (await sup.get(f"/api/cases/{mine}"))["alias"]
    assert mine in await cw1.ids(f"?q={alias.lower()}")
    assert await cw1.ids(f"?q={alias[2:]}&view=mine") == [mine]
    assert all(alias[3:] in c["alias"] for c in await sup.cases(f"?q={alias[3:]}"))
    assert mine not in await cw2.ids(f"?q={alias}"), "outside cw2's role"
    assert await sup.ids("?q=%25") == [] and await sup.ids("?q=_") == []

    for query in ("?view=everything", "?view=MINE", "?q=" + "S" * 17):
        status, body = await sup.call("GET", f"/api/cases{query}")
        assert status == 400 and "error" in body, query
    assert ("cw1", None, "closed") in await audit_rows(sanad, "api.list")
    assert ("sup", None, None) in await audit_rows(sanad, "api.list")


async def test_the_list_costs_the_same_statements_for_one_case_or_many(sanad: Sanad) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        statements.append(sql)

    async def statements_for_list() -> int:
        statements.clear()
        async with sanad.store.session() as db:
            cases = await list_cases(db)
        assert cases
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    event.listen(sanad.store.engine.sync_engine, "before_cursor_execute", count)
    try:
        first = await make_case(sanad)
        await add_message(sanad, first, "user", WHEN)
        one = await statements_for_list()
        for _ in range(5):
            case_id = await make_case(sanad, channel="whatsapp", last_inbound_at=WHEN)
            await add_message(sanad, case_id, "user", WHEN)
            await add_message(sanad, case_id, "caseworker", WHEN + timedelta(minutes=1))
        many = await statements_for_list()
    finally:
        event.remove(sanad.store.engine.sync_engine, "before_cursor_execute", count)
    assert one == many == 1


# --- reopen and close --------------------------------------------------------------------

async def test_reopen_by_the_closer_or_a_supervisor(inbox: Console) -> None:
    sanad = inbox.sanad
    sup, cw1, cw2 = Api(inbox, "sup"), Api(inbox, "cw1"), Api(inbox, "cw2")
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    path = f"/api/cases/{case_id}/reopen"

    assert (await cw1.call("POST", path))[0] == 409, "an open case cannot be reopened"
    assert (await cw1.call("POST", f"/api/cases/{case_id}/close",
                           {"outcome": "no_contact"}))[0] == 200
    detail = await sup.get(f"/api/cases/{case_id}")
    assert (detail["status"], detail["outcome"], detail["closed_by"]) == (
        "closed", "no_contact", "cw1")
    assert (await cw2.call("POST", path))[0] == 403, "not theirs"
    assert await cw1.call("POST", path) == (200, {"id": case_id, "status": "claimed"})
    detail = await cw1.get(f"/api/cases/{case_id}")
    assert (detail["status"], detail["assignee"], detail["outcome"], detail["closed_at"]) == (
        "claimed", "cw1", None, None)
    assert case_id in await cw1.ids("?view=mine")

    # Closed by a supervisor: the caseworker who held it may not reopen it; a supervisor may.
    assert (await sup.call("POST", f"/api/cases/{case_id}/close",
                           {"outcome": "duplicate"}))[0] == 200
    assert (await cw1.call("POST", path))[0] == 403
    assert await sup.call("POST", path) == (200, {"id": case_id, "status": "claimed"})

    async with sanad.store.session() as db:
        kinds = list(await db.execute(select(CaseNote.kind, CaseNote.author, CaseNote.detail)
                                      .where(CaseNote.case_id == case_id)
                                      .order_by(CaseNote.id)))
    assert [tuple(k) for k in kinds] == [
        ("close", "cw1", "no_contact"), ("reopen", "cw1", "no_contact"),
        ("close", "sup", "duplicate"), ("reopen", "sup", "duplicate")]
    assert await audit_rows(sanad, "case.reopen") == [("cw1", case_id, None),
                                                      ("sup", case_id, None)]
    denied = await audit_rows(sanad, "case.denied")
    assert ("cw2", case_id, None) in denied and ("cw1", case_id, None) in denied


async def test_reopen_sends_an_unheld_case_back_to_the_queue_unless_the_person_moved_on(
    inbox: Console,
) -> None:
    sanad, sup = inbox.sanad, Api(inbox, "sup")
    ended = await make_case(sanad, user="moving-on")
    assert (await sup.call("POST", f"/api/cases/{ended}/close",
                           {"outcome": "not_at_risk"}))[0] == 200
    assert await sup.call("POST", f"/api/cases/{ended}/reopen") == (
        200, {"id": ended, "status": "waiting"})
    assert ended in await sup.ids("?view=unassigned")

    # The same person has opened a new case since: one open case per person.
    assert (await sup.call("POST", f"/api/cases/{ended}/close",
                           {"outcome": "other"}))[0] == 200
    async with sanad.store.session() as db:
        old = await db.get(Case, ended)
        assert old is not None
        db.add(Case(user_id=old.user_id, alias=old.alias, status="waiting", priority="normal",
                    priority_rank=2, reason="user_request", language="ar",
                    channel="terminal", created_at=utcnow()))
    status, body = await sup.call("POST", f"/api/cases/{ended}/reopen")
    assert status == 409 and "another open case" in body["error"]
    assert (await sup.call("POST", "/api/cases/424242/reopen"))[0] == 404


@pytest.mark.parametrize("body", [{}, {"outcome": None}, {"outcome": ""},
                                  {"outcome": "gave_up"}, {"outcome": ["referred"]},
                                  {"note": "referred"}])
async def test_closing_needs_an_explicit_known_outcome(inbox: Console,
                                                       body: dict[str, Any]) -> None:
    cw1 = Api(inbox, "cw1")
    case_id = await make_case(inbox.sanad, status="claimed", assignee="cw1")
    status, answer = await cw1.call("POST", f"/api/cases/{case_id}/close", body)
    assert status == 400 and "outcome must be one of" in answer["error"]
    assert (await cw1.get(f"/api/cases/{case_id}"))["status"] == "claimed"
