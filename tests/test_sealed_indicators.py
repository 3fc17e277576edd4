"""Screening indicators are sealed at rest: no indicator name in the database file, its WAL or
a ``pg_dump``; opened only for the queue and case reads (under the person's data key)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Sanad
from bot.messages import HandoffRequested, Inbound
from bot.store.crypto import DecryptionError, FieldCipher
from bot.store.models import Case
from handoff import queue
from handoff.models import AuditEntry
from handoff.policy import Principal
from handoff.reads import summary_for
from tests.conftest import SECRET

CANARY = "g_canary_indicator"
"""An indicator id that appears nowhere else (no question, no state, no button)."""


async def open_case(sanad: Sanad, user: str, *indicators: str) -> int:
    """A turn of ``user`` that asks for a person with ``indicators`` (as screening does)."""
    ref = sanad.store.user_ref("terminal", user)
    async with sanad.store.turn(ref) as tx:
        assert await tx.load() is not None
        case = await queue.open_or_join(tx, HandoffRequested(
            priority="high", reason="screening", risk_level="high", indicators=indicators))
        return case.id


async def database_bytes(sanad: Sanad, url: str, tmp_path: Path) -> bytes:
    """Everything the database holds on disk (SQLite: the file, its WAL and shared memory) or
    in a data-only dump (PostgreSQL)."""
    await sanad.store.engine.dispose()
    if url.startswith("sqlite"):
        return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("sanad.db*")))
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    dump = subprocess.run(["pg_dump", "--data-only", "--no-owner", "-d", dsn],
                          capture_output=True, check=True, timeout=120)
    return dump.stdout


async def test_indicators_are_not_in_the_clear_but_the_queue_shows_them(
        sanad: Sanad, database_url: str, tmp_path: Path) -> None:
    case_id = await open_case(sanad, "sealed-1", "documents_retained", CANARY)
    await open_case(sanad, "sealed-1", "isolation", CANARY)  # joins: merged, sealed again
    async with sanad.store.session() as db:
        [summary] = await queue.list_cases(db)
        assert summary.id == case_id
        assert summary.indicators == ("documents_retained", CANARY, "isolation")
        detail = await queue.case_summary(db, case_id)
        assert detail is not None and detail.indicators == summary.indicators
        row = await db.get(Case, case_id)
        assert row is not None and row.indicators_enc is not None
        # Under the person's data key: the master key alone does not open it.
        with pytest.raises(DecryptionError):
            FieldCipher(SECRET).decrypt(row.indicators_enc, context=queue.INDICATORS_CONTEXT)
        assert await queue.indicators_of(db, row) == summary.indicators

    raw = await database_bytes(sanad, database_url, tmp_path)
    assert len(raw) > 10_000, "read the real database"
    assert CANARY.encode() not in raw
    assert b"documents_retained" not in raw


async def test_an_urgent_raise_outside_a_turn_keeps_the_indicators_sealed(sanad: Sanad) -> None:
    case_id = await open_case(sanad, "sealed-2", CANARY)
    async with sanad.store.session() as db:
        user_id = (await db.get(Case, case_id)).user_id  # type: ignore[union-attr]
        assert user_id is not None
        raised = await queue.raise_to_urgent(db, user_id=user_id)
        assert raised is not None and raised.id == case_id and raised.priority == "urgent"
    async with sanad.store.session() as db:
        [summary] = await queue.list_cases(db)
        assert summary.priority == "urgent" and summary.indicators == (CANARY,)


async def test_a_real_screening_leaves_no_yes_answer_in_the_sqlite_file(
        sanad_sqlite: Sanad, tmp_path: Path) -> None:
    """End to end: every answer yes, then a person. The only indicator ids left in the file
    are question positions in the conversation state (``screening.q.<id>``: where the person
    is, not what they answered)."""
    ref = sanad_sqlite.store.user_ref("terminal", "screened")
    steps = [{"text": "hello"}, {"button_id": "menu:check"}, {"button_id": "sc:consent:yes"},
             {"button_id": "sc:age:18_24"}, *[{"text": "yes"}] * 14,
             {"button_id": "sc:handoff:yes"}]
    for step in steps:
        await sanad_sqlite.engine.handle_turn(Inbound(user=ref, **step), address="screened")
    async with sanad_sqlite.store.session() as db:
        [summary] = await queue.list_cases(db)
        indicators = summary.indicators
    assert {"documents_retained", "isolation", "departure_soon"} <= set(indicators)
    alias = summary.alias.encode()

    raw = await database_bytes(sanad_sqlite, "sqlite", tmp_path)
    for indicator in indicators:
        loose = re.findall(rb"(?<!screening\.q\.)" + re.escape(indicator.encode()), raw)
        assert not loose, f"{indicator} in the clear"
    assert alias in raw, "the check reads the live cases table"


async def test_forgetting_a_user_drops_the_sealed_indicators(sanad: Sanad) -> None:
    case_id = await open_case(sanad, "sealed-3", CANARY)
    ref = sanad.store.user_ref("terminal", "sealed-3")
    async with sanad.store.turn(ref) as tx:
        await tx.load()
        await queue.forget_user(tx)
        await tx.erase_user()
    async with sanad.store.session() as db:
        case = await db.get(Case, case_id)
        assert case is not None and case.user_id is None and case.indicators_enc is None
        assert (await db.scalars(select(Case.indicators_enc))).all() == [None]


async def test_the_audited_case_read_opens_them(sanad: Sanad) -> None:
    """The case read of the API and console (``handoff.reads``): role-checked, audited, and
    the one that hands out the opened indicators."""
    case_id = await open_case(sanad, "sealed-4", CANARY)
    boss = Principal(id=1, name="boss", role="supervisor", via="token")
    async with sanad.store.session() as db:
        _, summary = await summary_for(db, boss, case_id, "api.case")
        assert summary.indicators == (CANARY,)
    async with sanad.store.session() as db:
        actions = list(await db.scalars(select(AuditEntry.action)
                                        .where(AuditEntry.case_id == case_id)))
    assert actions == ["api.case"]
