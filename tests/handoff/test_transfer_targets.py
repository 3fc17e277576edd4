"""Transfer targets (issue #20): a supervisor can hand a case only to someone who can work on
it now, never to an account still waiting for a supervisor's approval, invited without a
password yet, or deactivated; the page does not offer them and the action refuses them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from bot.app import Sanad
from handoff import accounts, actions
from handoff.auth import AuthPolicy
from handoff.models import Caseworker
from handoff.reads import case_handlers
from tests.handoff.conftest import FAST_PASSWORDS, Console, make_case, start_console


@pytest.fixture
async def console(sanad: Sanad) -> AsyncIterator[Console]:
    running = await start_console(sanad)
    yield running
    await running.close()
    await running.server.close()


async def people_who_cannot_work(sanad: Sanad) -> None:
    """``pending`` set a password but waits for approval; ``invited`` has not set one yet;
    ``gone`` was deactivated; ``unlocked`` is an approved colleague (the control)."""
    async with sanad.store.session() as db:
        for name in ("pending", "invited", "unlocked"):
            await accounts.invite(db, AuthPolicy(), name=name, role="caseworker", by="adm")
        await db.execute(update(Caseworker).where(Caseworker.name.in_(("pending", "unlocked")))
                         .values(password_hash=await FAST_PASSWORDS.hash("x" * 20)))
        await db.execute(update(Caseworker).where(Caseworker.name == "unlocked")
                         .values(approved_by="sup", approved_at=Caseworker.created_at))
        await db.execute(update(Caseworker).where(Caseworker.name == "cw2")
                         .values(active=False))


async def test_only_accounts_that_can_work_are_offered(console: Console) -> None:
    sanad = console.sanad
    await people_who_cannot_work(sanad)
    async with sanad.store.session() as db:
        assert await case_handlers(db) == ["cw1", "sup", "unlocked"]
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    page = await (await (await console.browser("sup")).get(f"/console/cases/{case_id}")).text()
    offered = page.split('id="transfer-to"')[1].split("</select>")[0]
    for name in ("pending", "invited", "cw2"):
        assert f'value="{name}"' not in offered, name
    assert 'value="unlocked"' in offered


async def test_the_action_refuses_them_too(console: Console) -> None:
    sanad = console.sanad
    await people_who_cannot_work(sanad)
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    sup = await console.browser("sup")
    await sup.get(f"/console/cases/{case_id}")
    for name in ("pending", "invited", "cw2", "adm", "nobody"):
        response = await sup.post(f"/console/cases/{case_id}/transfer", {"to": name})
        assert response.headers["Location"].endswith("notice=invalid"), name
        async with sanad.store.session() as db:
            assert (await actions.get_case(db, case_id)).assignee == "cw1", name
    done = await sup.post(f"/console/cases/{case_id}/transfer", {"to": "unlocked"})
    assert done.headers["Location"].endswith("notice=transferred")
    async with sanad.store.session() as db:
        assert (await actions.get_case(db, case_id)).assignee == "unlocked"
