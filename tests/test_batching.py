"""bot.store.batching: the small after-turn writes of one pass of the event loop share one
transaction; every caller returns only once its items are committed, and a failure reaches
every caller of the batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Sanad
from bot.store import direct
from bot.store.batching import WriteBatch
from bot.store.db import DatabaseUnavailable, open_database
from bot.store.models import PlatformMessage
from bot.store.repository import table_of
from bot.store.transactions import OwnTransactions, transactions_for
from tests.store_support import INSERT_USER, USERS, transaction_log, user_row


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with open_database(database_url) as engine:
        yield engine


@pytest.fixture
def transactions(engine: AsyncEngine) -> list[str]:
    return transaction_log(engine)


def add_users(cursor: direct.Cursor, keys: Sequence[str]) -> None:
    cursor.executemany(INSERT_USER, [user_row(key) for key in keys])


async def stored_keys(engine: AsyncEngine) -> set[str]:
    """What a connection of its own sees: committed rows only."""
    async with engine.connect() as conn:
        return set((await conn.scalars(select(USERS.c.key))).all())


async def test_items_of_one_pass_are_written_in_one_transaction_before_callers_return(
    engine: AsyncEngine, transactions: list[str],
) -> None:
    batch = WriteBatch(transactions_for(engine), add_users)
    keys = [f"u{i}" for i in range(20)]

    async def add(key: str) -> set[str]:
        await batch.add(key)
        return await stored_keys(engine)  # committed by the time the caller goes on

    seen = await asyncio.gather(*(add(k) for k in keys))
    assert transactions.count("commit") == 1
    assert all(set(keys) <= after for after in seen)


async def test_later_items_make_a_batch_of_their_own(
    engine: AsyncEngine, transactions: list[str],
) -> None:
    written: list[list[str]] = []

    def write(cursor: direct.Cursor, keys: Sequence[str]) -> None:
        written.append(list(keys))
        add_users(cursor, keys)

    batch = WriteBatch(OwnTransactions(engine), write)
    await asyncio.gather(batch.add("a"), batch.add("b", "c"))
    await batch.add("d")
    assert written == [["a", "b", "c"], ["d"]]
    assert await stored_keys(engine) == {"a", "b", "c", "d"}
    assert transactions.count("commit") == 2


async def test_a_full_batch_is_closed_and_the_rest_start_another(engine: AsyncEngine) -> None:
    sizes: list[int] = []

    def write(cursor: direct.Cursor, keys: Sequence[str]) -> None:
        sizes.append(len(keys))
        add_users(cursor, keys)

    batch = WriteBatch(OwnTransactions(engine), write, max_items=4)
    await asyncio.gather(*(batch.add(f"k{i}") for i in range(10)))
    assert sorted(sizes) == [2, 4, 4]  # on PostgreSQL the batches may commit in any order
    assert len(await stored_keys(engine)) == 10


async def test_a_failed_batch_fails_every_caller_and_writes_nothing(
    engine: AsyncEngine, transactions: list[str],
) -> None:
    batch = WriteBatch(OwnTransactions(engine), add_users)
    results = await asyncio.gather(batch.add("same"), batch.add("same"), batch.add("other"),
                                   return_exceptions=True)
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert len({id(r) for r in results}) == 3  # each caller raises its own exception
    assert all(r.__cause__ is results[0].__cause__ for r in results)  # type: ignore[union-attr]
    assert transactions == ["rollback"]
    assert await stored_keys(engine) == set()
    await batch.add("after")  # the next batch is not held up by the failed one
    assert await stored_keys(engine) == {"after"}


async def test_a_cancelled_caller_does_not_stop_the_others_items(engine: AsyncEngine) -> None:
    batch = WriteBatch(OwnTransactions(engine), add_users)
    doomed = asyncio.create_task(batch.add("left"))
    await asyncio.sleep(0)  # its item is in the batch
    doomed.cancel()
    await batch.add("stayed")
    assert await stored_keys(engine) == {"left", "stayed"}


async def test_remembered_messages_of_many_chats_share_a_transaction(
    sanad: Sanad, transactions_of_store: list[str],
) -> None:
    store = sanad.store
    users = [store.user_ref("telegram", 7000 + i) for i in range(8)]
    async with store.turn(users[0]) as tx:  # one known user: the others are not (yet)
        await tx.load()
    transactions_of_store.clear()

    await asyncio.gather(*(store.remember_messages(u, [str(10 * i), str(10 * i + 1)])
                           for i, u in enumerate(users)))
    assert transactions_of_store.count("commit") == 1
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(table_of(PlatformMessage).c.message_id))).all()
    assert sorted(r[0] for r in rows) == ["0", "1"]  # unknown users: nothing kept
    assert sorted(await store.take_messages(users[0], newer_than=timedelta(hours=1))) == [
        "0", "1"]


@pytest.fixture
def transactions_of_store(sanad: Sanad) -> list[str]:
    return transaction_log(sanad.store.engine)
