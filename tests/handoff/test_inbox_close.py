"""Closing safely in the console: closed cases found again by view and alias, and reopened by
whoever closed them or a supervisor (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Sanad
from handoff.actions import get_case
from tests.handoff.conftest import Console, make_case
from tests.handoff.test_inbox_live import start


@pytest.fixture
async def console(sanad: Sanad) -> AsyncIterator[Console]:
    running = await start(sanad)
    yield running
    await running.close()
    await running.server.close()


async def test_a_closed_case_is_found_and_reopened_by_its_closer(console: Console) -> None:
    sanad = console.sanad
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    async with sanad.store.session() as db:
        alias = (await get_case(db, case_id)).alias
    cw1, cw2 = await console.browser("cw1"), await console.browser("cw2")
    page = await cw1.get(f"/console/cases/{case_id}")
    assert "/reopen" not in await page.text(), "an open case offers no reopen"
    response = await cw1.post(f"/console/cases/{case_id}/close",
                              {"outcome": "advice_given", "confirm": "yes"})
    assert response.status == 303

    open_queue = await (await cw1.get("/console/queue")).text()
    assert alias not in open_queue
    closed = await (await cw1.get(f"/console/queue?view=closed&q={alias[2:5].lower()}")).text()
    assert alias in closed and 'value="closed" selected' in closed
    assert 'data-events="/console/queue/events?view=closed&amp;q=' in closed
    elsewhere = await (await cw1.get("/console/queue?view=closed&q=ZZZZZZ")).text()
    assert alias not in elsewhere

    page = await cw1.get(f"/console/cases/{case_id}")
    assert f'action="/console/cases/{case_id}/reopen"' in await page.text()
    assert (await cw2.post(f"/console/cases/{case_id}/reopen", csrf=cw2.csrf)).status == 403
    response = await cw1.post(f"/console/cases/{case_id}/reopen",
                              headers={"Accept": "application/json"})
    assert response.status == 200
    async with sanad.store.session() as db:
        case = await get_case(db, case_id)
    assert (case.status, case.assignee, case.outcome) == ("claimed", "cw1", None)
    response = await cw1.post(f"/console/cases/{case_id}/reopen")
    assert response.status == 303 and response.headers["Location"].endswith("notice=not_open")


async def test_a_supervisor_reopens_any_closed_case(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw2")
    cw2, sup = await console.browser("cw2"), await console.browser("sup")
    await cw2.get(f"/console/cases/{case_id}")
    assert (await cw2.post(f"/console/cases/{case_id}/close",
                           {"outcome": "other", "confirm": "yes"})).status == 303
    page = await (await sup.get(f"/console/cases/{case_id}")).text()
    assert "/reopen" in page
    response = await sup.post(f"/console/cases/{case_id}/reopen")
    assert response.headers["Location"] == f"/console/cases/{case_id}?notice=reopened"


async def test_closing_asks_for_confirmation_first(console: Console) -> None:
    """A stray click never closes: without ``confirm=yes`` the form gets a page that asks
    (naming the outcome), ``fetch`` gets ``confirm: true``; no outcome, nothing at all."""
    sanad = console.sanad
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    cw1 = await console.browser("cw1")
    await cw1.get(f"/console/cases/{case_id}?lang=en")

    asked = await cw1.post(f"/console/cases/{case_id}/close", {"outcome": "referred"})
    page = await asked.text()
    assert asked.status == 200 and "Close case S-" in page and "Referred" in page
    assert 'name="confirm" value="yes"' in page and 'value="referred"' in page
    assert f'href="/console/cases/{case_id}"' in page, "a way back without closing"
    fetched = await cw1.post(f"/console/cases/{case_id}/close", {"outcome": "referred"},
                             headers={"Accept": "application/json"})
    assert await fetched.json() == {"ok": False, "confirm": True}
    for refused in ({}, {"outcome": ""}, {"outcome": "nonsense", "confirm": "yes"},
                    {"confirm": "yes"}):
        response = await cw1.post(f"/console/cases/{case_id}/close", refused)
        assert response.headers["Location"].endswith("notice=invalid"), refused
    async with sanad.store.session() as db:
        assert (await get_case(db, case_id)).status == "claimed", "nothing closed it yet"

    done = await cw1.post(f"/console/cases/{case_id}/close",
                          {"outcome": "referred", "confirm": "yes"},
                          headers={"Accept": "application/json"})
    assert await done.json() == {"ok": True, "location": "/console/queue", "notice": "closed"}
    async with sanad.store.session() as db:
        case = await get_case(db, case_id)
    assert (case.status, case.outcome) == ("closed", "referred")
    again = await cw1.post(f"/console/cases/{case_id}/close", {"outcome": "referred"})
    assert again.headers["Location"].endswith("notice=not_open"), "no page asks about a closed case"


async def test_only_the_holder_or_a_supervisor_is_asked(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw1")
    cw2 = await console.browser("cw2")
    await cw2.get("/console/queue")
    response = await cw2.post(f"/console/cases/{case_id}/close", {"outcome": "other"})
    assert response.status == 403
