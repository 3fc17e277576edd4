"""Every read of a case leaves an audit row (actor, action, case, time; never text)."""

from __future__ import annotations

from sqlalchemy import select

from handoff import relay
from handoff.models import AuditEntry
from tests.handoff.conftest import Console, make_case


async def audit_rows(console: Console) -> list[tuple[str, str, int | None]]:
    async with console.sanad.store.session() as db:
        rows = await db.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(r.actor, r.action, r.case_id) for r in rows]


async def add_user_message(console: Console, case_id: int, text: str) -> None:
    from bot.store.models import CaseMessage
    from bot.store.repository import utcnow

    async with console.sanad.store.session() as db:
        db.add(CaseMessage(case_id=case_id, sender="user", author=None, created_at=utcnow(),
                           text_enc=console.sanad.store.cipher.encrypt_text(
                               text, context=b"case_messages.text")))


async def test_every_case_read_is_audited(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw1")
    await add_user_message(console, case_id, "AUDIT-CANARY my secret")
    cw1 = await console.browser(login_as="cw1")
    bearer = {"Authorization": f"Bearer {console.tokens['sup']}"}
    reads = [
        (cw1, f"/console/cases/{case_id}", {}, ("cw1", "case.view", case_id)),
        (cw1, f"/console/cases/{case_id}/poll?n=0", {}, ("cw1", "case.thread", case_id)),
        (cw1, f"/api/cases/{case_id}", {}, ("cw1", "api.case", case_id)),
        (cw1, f"/api/cases/{case_id}/messages", {}, ("cw1", "api.messages", case_id)),
        (cw1, f"/api/cases/{case_id}", bearer, ("sup", "api.case", case_id)),
        (cw1, f"/api/cases/{case_id}/messages", bearer, ("sup", "api.messages", case_id)),
        (cw1, "/api/cases", bearer, ("sup", "api.list", None)),
        (cw1, "/console/queue", {}, ("cw1", "queue.view", None)),
    ]
    for browser, path, headers, expected in reads:
        before = await audit_rows(console)
        response = await browser.get(path, headers=headers)
        assert response.status == 200, path
        after = await audit_rows(console)
        previewed = [("cw1", "case.preview", case_id)] if path == "/console/queue" else []
        assert after[len(before):] == [expected, *previewed], path


async def test_polls_that_reveal_nothing_new_are_not_audited(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw1")
    await add_user_message(console, case_id, "hello")
    cw1 = await console.browser(login_as="cw1")
    before = await audit_rows(console)
    response = await cw1.get(f"/console/cases/{case_id}/poll?n=1")
    assert response.status == 200 and "html" not in await response.json()
    assert await audit_rows(console) == before
    await add_user_message(console, case_id, "one more")
    data = await (await cw1.get(f"/console/cases/{case_id}/poll?n=1")).json()
    assert data["n"] == 2 and "one more" in data["html"] and "hello" not in data["html"]
    assert (await audit_rows(console))[-1] == ("cw1", "case.thread", case_id)


async def test_denied_reads_are_audited_too(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw1")
    cw2 = await console.browser(login_as="cw2")
    assert (await cw2.get(f"/console/cases/{case_id}")).status == 403
    assert (await audit_rows(console))[-1] == ("cw2", "case.denied", case_id)


async def test_audit_rows_hold_no_text(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw1")
    await add_user_message(console, case_id, "AUDIT-CANARY")
    cw1 = await console.browser(login_as="cw1")
    await cw1.post(f"/console/cases/{case_id}/reply", {"text": "REPLY-CANARY"})
    await cw1.post(f"/console/cases/{case_id}/notes", {"text": "NOTE-CANARY"})
    await cw1.get(f"/console/cases/{case_id}")
    async with console.sanad.store.session() as db:
        thread = await relay.thread(db, cipher=console.sanad.store.cipher, case_id=case_id)
        rows = list(await db.scalars(select(AuditEntry)))
    assert [m.text for m in thread] == ["AUDIT-CANARY", "REPLY-CANARY"]
    dump = repr([(r.actor, r.action, r.case_id, r.detail) for r in rows])
    assert "CANARY" not in dump
    assert {"case.reply", "case.note", "case.view", "login"} <= {r.action for r in rows}
