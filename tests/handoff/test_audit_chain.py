"""The audit log is hash-chained: an edited, deleted or truncated row is detected, and
concurrent writers never fork the chain (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import pairwise

import pytest
from sqlalchemy import delete, select, update

from bot.store.db import open_database
from bot.store.repository import Store
from handoff import audit
from handoff.models import AuditEntry, AuditHead
from tests.conftest import make_settings


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with open_database(database_url) as engine:
        yield Store.from_settings(make_settings(database_url), engine)


async def write(store: Store, n: int, actor: str = "sup") -> None:
    for i in range(n):
        async with store.session() as db:
            audit.record(db, actor, "case.view", case_id=i + 1)


async def verdict(store: Store) -> audit.Verdict:
    async with store.session() as db:
        return await audit.verify(db)


async def test_rows_are_chained_in_order_and_verify(store: Store) -> None:
    await write(store, 3)
    async with store.session() as db:  # several rows in one transaction
        audit.record(db, "adm", "account.create", detail="mona")
        audit.record(db, "adm", "account.invite", detail="mona")
    async with store.session() as db:
        rows = list(await db.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.row_hash for a, b in pairwise(rows))
    result = await verdict(store)
    assert result.ok and result.rows == 5 and result.head_seq == 5
    assert result.head_hash == rows[-1].row_hash


@pytest.mark.parametrize("field,value", [("actor", "someone-else"), ("case_id", 99),
                                         ("action", "case.note"), ("reason", "legal")])
async def test_an_edited_row_is_detected(store: Store, field: str, value: object) -> None:
    await write(store, 4)
    async with store.session() as db:
        await db.execute(update(AuditEntry).where(AuditEntry.seq == 2).values({field: value}))
    result = await verdict(store)
    assert not result.ok
    assert [p.seq for p in result.problems] == [2]


async def test_an_edit_that_recomputes_the_rows_own_hash_breaks_the_next_link(
    store: Store,
) -> None:
    await write(store, 4)
    async with store.session() as db:
        row = await db.scalar(select(AuditEntry).where(AuditEntry.seq == 2))
        assert row is not None
        row.actor = "forged"
        row.row_hash = audit.row_digest(row.prev_hash or "", row)
    result = await verdict(store)
    assert [p.seq for p in result.problems] == [3]


async def test_a_deleted_row_is_detected(store: Store) -> None:
    await write(store, 5)
    async with store.session() as db:
        await db.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    result = await verdict(store)
    assert not result.ok and result.problems[0].seq == 4
    assert "missing" in result.problems[0].what


async def test_deleting_the_last_rows_is_detected_by_the_head(store: Store) -> None:
    await write(store, 5)
    async with store.session() as db:
        await db.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))
    result = await verdict(store)
    assert not result.ok and "removed" in result.problems[0].what


async def test_retention_removing_the_oldest_rows_is_not_tampering(store: Store) -> None:
    await write(store, 5)
    async with store.session() as db:
        await db.execute(delete(AuditEntry).where(AuditEntry.seq <= 2))
    result = await verdict(store)
    assert result.ok and result.first_seq == 3 and result.rows == 3


async def test_a_rolled_back_transaction_leaves_no_hole(store: Store) -> None:
    await write(store, 2)
    with pytest.raises(RuntimeError):
        async with store.session() as db:
            audit.record(db, "cw1", "case.view", case_id=7)
            raise RuntimeError("the action failed")
    await write(store, 1)
    result = await verdict(store)
    assert result.ok and result.rows == 3 and result.head_seq == 3


async def test_concurrent_writers_never_fork_the_chain(store: Store) -> None:
    """Twenty transactions at once, each holding its rows a moment before committing."""

    async def one(n: int) -> None:
        async with store.session() as db:
            audit.record(db, f"cw{n}", "case.view", case_id=n)
            await asyncio.sleep(0.01)
            audit.record(db, f"cw{n}", "case.thread", case_id=n)

    await asyncio.gather(*(one(n) for n in range(20)))
    result = await verdict(store)
    assert result.ok, result.problems
    assert result.rows == 40 and result.head_seq == 40
    async with store.session() as db:
        head = await db.get(AuditHead, audit.HEAD_ID)
        assert head is not None and head.seq == 40


async def test_a_rewritten_history_is_caught_by_an_anchor_kept_elsewhere(store: Store) -> None:
    """Someone edits row 2 and recomputes every later hash and the head: the chain looks whole,
    but the head hash printed before (and kept outside the database) is gone."""
    await write(store, 3)
    anchor = (await verdict(store)).head_hash
    await write(store, 2)
    async with store.session() as db:
        rows = list(await db.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        prev = rows[0].row_hash or ""
        rows[1].actor = "forged"
        for row in rows[1:]:
            row.prev_hash = prev
            row.row_hash = prev = audit.row_digest(prev, row)
        await db.execute(update(AuditHead).values(hash=prev))
    assert (await verdict(store)).ok, "a full rewrite is not visible from inside"
    async with store.session() as db:
        caught = await audit.verify(db, anchors=(anchor,))
    assert not caught.ok and "rewritten" in caught.problems[0].what
    async with store.session() as db:
        assert (await audit.verify(db, anchors=(prev,))).ok
