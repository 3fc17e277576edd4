"""Claiming is atomic: however many caseworkers press "claim" at once, one wins (SQLite and
the real PostgreSQL, through the ``sanad`` fixture's ``database_url`` parameter)."""

from __future__ import annotations

import asyncio

import pytest

from bot.app import Sanad
from handoff import actions
from tests.handoff.conftest import make_case


async def claim_as(sanad: Sanad, case_id: int, name: str) -> bool:
    async with sanad.store.session() as db:
        return await actions.claim(db, case_id, name)


@pytest.mark.parametrize("contenders", [2, 10])
async def test_exactly_one_claim_wins(sanad: Sanad, contenders: int) -> None:
    case_id = await make_case(sanad, priority="urgent")
    results = await asyncio.gather(*(claim_as(sanad, case_id, f"cw{i}")
                                     for i in range(contenders)))
    assert sum(results) == 1
    winner = f"cw{results.index(True)}"
    async with sanad.store.session() as db:
        case = await actions.get_case(db, case_id)
    assert (case.status, case.assignee) == ("claimed", winner)
    assert await claim_as(sanad, case_id, winner), "claiming your own case again is fine"


async def test_claim_next_hands_out_each_case_once(sanad: Sanad) -> None:
    ids = [await make_case(sanad, priority=p) for p in ("normal", "urgent", "high")]

    async def next_for(name: str) -> int | None:
        async with sanad.store.session() as db:
            return await actions.claim_next(db, name)

    got = await asyncio.gather(*(next_for(f"cw{i}") for i in range(8)))
    claimed = [c for c in got if c is not None]
    assert sorted(claimed) == sorted(ids), "every case once, nobody gets the same case"
    assert got.count(None) == 5


async def test_claim_next_takes_the_most_urgent_first(sanad_sqlite: Sanad) -> None:
    normal = await make_case(sanad_sqlite, priority="normal", minutes_ago=60)
    urgent = await make_case(sanad_sqlite, priority="urgent")
    async with sanad_sqlite.store.session() as db:
        assert await actions.claim_next(db, "cw1") == urgent
        assert await actions.claim_next(db, "cw1") == normal
        assert await actions.claim_next(db, "cw1") is None


async def test_two_caseworkers_claim_through_the_api_at_once(sanad_sqlite: Sanad) -> None:
    from tests.handoff.conftest import start_console

    console = await start_console(sanad_sqlite)
    try:
        case_id = await make_case(sanad_sqlite)
        client = await console.browser()
        responses = await asyncio.gather(*(
            client.request("POST", f"/api/cases/{case_id}/claim",
                           headers={"Authorization": f"Bearer {console.tokens[name]}"})
            for name in ("cw1", "cw2", "sup")
        ))
        assert sorted(r.status for r in responses) == [200, 409, 409]
    finally:
        await console.close()
        await console.server.close()
