"""Case actions on the database: close, transfer, notes, referrals, SLA escalation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Sanad
from bot.store.repository import utcnow
from handoff import actions
from handoff.models import CaseNote
from tests.handoff.conftest import FAST_PASSWORDS, Console, make_case


async def test_close_needs_the_holder_and_a_known_outcome(sanad_sqlite: Sanad) -> None:
    case_id = await make_case(sanad_sqlite, status="claimed", assignee="cw1")
    async with sanad_sqlite.store.session() as db:
        with pytest.raises(actions.InvalidInput):
            await actions.close(db, case_id, "cw1", "gave up")
    async with sanad_sqlite.store.session() as db:
        with pytest.raises(actions.CaseConflict):
            await actions.close(db, case_id, "cw2", "other")
    async with sanad_sqlite.store.session() as db:
        await actions.close(db, case_id, "cw1", "referred")
    async with sanad_sqlite.store.session() as db:
        case = await actions.get_case(db, case_id)
        assert (case.status, case.outcome) == ("closed", "referred")
        with pytest.raises(actions.CaseConflict):
            await actions.close(db, case_id, "sup", "other", any_holder=True)
        with pytest.raises(actions.CaseNotFound):
            await actions.close(db, 424242, "cw1", "other")


async def test_transfer_back_to_the_queue_or_to_a_named_caseworker(sanad_sqlite: Sanad) -> None:
    from handoff.auth import create_account

    async with sanad_sqlite.store.session() as db:
        await create_account(db, FAST_PASSWORDS, name="cw2", role="caseworker",
                             password="long enough password")
        await create_account(db, FAST_PASSWORDS, name="out", role="outreach",
                             password="long enough password")
    case_id = await make_case(sanad_sqlite, status="claimed", assignee="cw1")
    async with sanad_sqlite.store.session() as db:
        await actions.transfer(db, case_id, "cw1")
    async with sanad_sqlite.store.session() as db:
        case = await actions.get_case(db, case_id)
        assert (case.status, case.assignee) == ("transferred", None)
        assert await actions.claim(db, case_id, "cw3"), "a transferred case can be claimed"
    async with sanad_sqlite.store.session() as db:
        with pytest.raises(actions.InvalidInput):
            await actions.transfer(db, case_id, "sup", "out", any_holder=True)
        with pytest.raises(actions.InvalidInput):
            await actions.transfer(db, case_id, "sup", "ghost", any_holder=True)
    async with sanad_sqlite.store.session() as db:
        await actions.transfer(db, case_id, "sup", "cw2", any_holder=True)
    async with sanad_sqlite.store.session() as db:
        case = await actions.get_case(db, case_id)
        assert (case.status, case.assignee) == ("claimed", "cw2")
        kinds = [(n.kind, n.detail) for n in await actions.notes(
            db, sanad_sqlite.store.cipher, case_id)]
    assert kinds == [("transfer", "queue"), ("transfer", "cw2")]


async def test_notes_are_sealed_and_referrals_name_a_real_service(
    sanad_sqlite: Sanad, tmp_path: object,
) -> None:
    cipher, content = sanad_sqlite.store.cipher, sanad_sqlite.content
    case_id = await make_case(sanad_sqlite, status="claimed", assignee="cw1")
    async with sanad_sqlite.store.session() as db:
        await actions.add_note(db, cipher, case_id, "cw1", "NOTE-CANARY passport with boss")
        await actions.refer(db, cipher, content, case_id, "cw1", "iom_egypt", "call Monday")
        with pytest.raises(actions.InvalidInput):
            await actions.refer(db, cipher, content, case_id, "cw1", "made_up_service")
        with pytest.raises(actions.InvalidInput):
            await actions.add_note(db, cipher, case_id, "cw1", "   ")
    async with sanad_sqlite.store.session() as db:
        raw = list(await db.scalars(select(CaseNote.text_enc)))
        views = await actions.notes(db, cipher, case_id)
    assert all(b"CANARY" not in (blob or b"") for blob in raw)
    assert [(v.kind, v.text, v.service_id) for v in views] == [
        ("note", "NOTE-CANARY passport with boss", None),
        ("referral", "call Monday", "iom_egypt"),
    ]


async def test_overdue_urgent_and_high_cases_are_escalated_once(sanad_sqlite: Sanad) -> None:
    urgent_late = await make_case(sanad_sqlite, priority="urgent", minutes_ago=6)
    urgent_fresh = await make_case(sanad_sqlite, priority="urgent", minutes_ago=1)
    high_late = await make_case(sanad_sqlite, priority="high", minutes_ago=31)
    high_fresh = await make_case(sanad_sqlite, priority="high", minutes_ago=10)
    normal_old = await make_case(sanad_sqlite, priority="normal", minutes_ago=600)
    claimed_late = await make_case(sanad_sqlite, priority="urgent", minutes_ago=60,
                                   status="claimed", assignee="cw1")
    settings = sanad_sqlite.settings
    async with sanad_sqlite.store.session() as db:
        first = await actions.escalate_overdue(db, utcnow(), settings.sla_urgent_minutes,
                                               settings.sla_high_minutes)
    async with sanad_sqlite.store.session() as db:
        again = await actions.escalate_overdue(db, utcnow() + timedelta(seconds=1),
                                               settings.sla_urgent_minutes,
                                               settings.sla_high_minutes)
    assert sorted(first) == sorted([urgent_late, high_late])
    assert again == []
    assert {urgent_fresh, high_fresh, normal_old, claimed_late}.isdisjoint(first)


async def test_escalated_cases_are_highlighted_in_the_queue(console: Console) -> None:
    late = await make_case(console.sanad, priority="urgent", minutes_ago=9)
    async with console.sanad.store.session() as db:
        await actions.escalate_overdue(db, utcnow(), 5, 30)
    cw1 = await console.browser(login_as="cw1")
    page = await (await cw1.get("/console/queue?lang=en")).text()
    row = page.split(f'href="/console/cases/{late}"')[0].rsplit("<tr", 1)[1]
    assert "escalated" in row
    assert "Overdue" in page and "waiting 9 min" in page


async def test_worker_jobs_escalate_and_forget_expired_logins(sanad_sqlite: Sanad) -> None:
    from sqlalchemy import func, update

    from handoff import jobs
    from handoff.auth import AuthPolicy, create_account, open_session
    from handoff.models import ConsoleSession

    late = await make_case(sanad_sqlite, priority="urgent", minutes_ago=20)
    assert await jobs.escalate(sanad_sqlite.store, sanad_sqlite.settings) == [late]
    async with sanad_sqlite.store.session() as db:
        account = await create_account(db, FAST_PASSWORDS, name="cw1", role="caseworker",
                                       password="long enough password")
        await open_session(db, account, lang="ar")
        await open_session(db, account, lang="en")
    async with sanad_sqlite.store.session() as db:
        first = await db.scalar(select(ConsoleSession.id_hash).limit(1))
        await db.execute(update(ConsoleSession).where(ConsoleSession.id_hash == first)
                         .values(last_seen_at=utcnow() - timedelta(minutes=45)))
    assert await jobs.purge_logins(sanad_sqlite.store, AuthPolicy()) == 1
    async with sanad_sqlite.store.session() as db:
        assert await db.scalar(select(func.count()).select_from(ConsoleSession)) == 1
