"""bot.store.transactions: on SQLite, the write transactions of one pass of the event loop
share a commit; each caller still returns only after its work is durable, and a failure
stays its own."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Sanad
from bot.messages import Inbound
from bot.store import direct
from bot.store.db import DatabaseUnavailable, create_engine, open_database
from bot.store.sqlite_inline import InlineConnection
from bot.store.transactions import OwnTransactions, SharedCommit, transactions_for
from tests.store_support import INSERT_USER, USERS, transaction_log, user_row


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    async with open_database(sqlite_url) as engine:
        yield engine


@pytest.fixture
def commits(engine: AsyncEngine) -> list[str]:
    return transaction_log(engine)


def add_user(key: str) -> Callable[[direct.Cursor], int]:
    def work(cursor: direct.Cursor) -> int:
        return cursor.execute(INSERT_USER, user_row(key))
    return work


def stored_keys(engine: AsyncEngine) -> set[str]:
    """What another connection (another process) sees: only committed rows."""
    path = engine.url.database
    assert path is not None
    with sqlite3.connect(path) as other:
        return {key for (key,) in other.execute("SELECT key FROM users")}


def fail(cursor: direct.Cursor) -> None:
    add_user("doomed")(cursor)
    raise ValueError("a bug in the caller's work")


def test_sqlite_shares_commits_and_postgresql_does_not(engine: AsyncEngine) -> None:
    assert isinstance(transactions_for(engine), SharedCommit)
    pg = create_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    assert isinstance(transactions_for(pg), OwnTransactions)


async def test_writers_of_one_pass_share_one_commit_and_return_after_it(
    engine: AsyncEngine, commits: list[str],
) -> None:
    shared = SharedCommit(engine)
    keys = [f"u{i}" for i in range(10)]

    async def write(key: str) -> set[str]:
        assert await shared.run(add_user(key)) == 1
        return stored_keys(engine)  # committed by the time the caller goes on

    seen = await asyncio.gather(*(write(k) for k in keys))
    assert commits == ["commit"]
    assert all(set(keys) <= after for after in seen)


async def test_a_lone_writer_commits_at_once(engine: AsyncEngine, commits: list[str]) -> None:
    shared = SharedCommit(engine)
    await shared.run(add_user("first"))
    assert stored_keys(engine) == {"first"}
    await shared.run(add_user("second"))
    assert commits == ["commit", "commit"]


@pytest.mark.parametrize("position", [0, 1, 2])
async def test_a_failing_member_is_undone_alone(
    engine: AsyncEngine, commits: list[str], position: int,
) -> None:
    """First (it has no savepoint: the transaction is discarded and the others start a new
    one), in the middle or last: only its own work is lost."""
    shared = SharedCommit(engine)
    works: list[Callable[[direct.Cursor], object]] = [add_user("one"), add_user("two")]
    works.insert(position, fail)
    results = await asyncio.gather(*(shared.run(w) for w in works), return_exceptions=True)
    assert [type(r) for r in results] == [ValueError if i == position else int
                                          for i in range(3)]
    assert stored_keys(engine) == {"one", "two"}
    assert commits == (["rollback", "commit"] if position == 0 else ["commit"])


async def test_a_database_error_is_the_members_own(engine: AsyncEngine) -> None:
    shared = SharedCommit(engine)
    results = await asyncio.gather(
        shared.run(add_user("taken")), shared.run(add_user("taken")),
        shared.run(add_user("free")), return_exceptions=True)
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], IntegrityError)
    assert stored_keys(engine) == {"taken", "free"}


async def test_a_broken_transaction_fails_every_member(
    engine: AsyncEngine, commits: list[str],
) -> None:
    """A member that ends the savepoint itself leaves nothing to release: the transaction's
    state is unknown, so it is rolled back whole and every member hears so."""
    shared = SharedCommit(engine)

    def meddle(cursor: direct.Cursor) -> None:
        add_user("meddler")(cursor)
        cursor.raw("RELEASE SAVEPOINT member")

    results = await asyncio.gather(
        shared.run(add_user("innocent")), shared.run(meddle), shared.run(add_user("later")),
        return_exceptions=True)
    assert isinstance(results[0], DatabaseUnavailable)
    assert isinstance(results[1], DBAPIError)  # its own error: no such savepoint
    assert isinstance(results[2], (DatabaseUnavailable, int))
    assert "innocent" not in stored_keys(engine) and "meddler" not in stored_keys(engine)
    assert commits[0] == "rollback"


async def test_a_failed_commit_fails_every_member(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = SharedCommit(engine)
    commit = InlineConnection.commit

    async def fail_once(self: InlineConnection) -> None:
        monkeypatch.setattr(InlineConnection, "commit", commit)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(InlineConnection, "commit", fail_once)
    results = await asyncio.gather(shared.run(add_user("a")), shared.run(add_user("b")),
                                   return_exceptions=True)
    assert [type(r) for r in results] == [OperationalError, OperationalError]
    assert stored_keys(engine) == set()
    await shared.run(add_user("c"))  # rolled back and returned to the pool: usable
    assert stored_keys(engine) == {"c"}


async def test_members_are_capped(engine: AsyncEngine, commits: list[str]) -> None:
    shared = SharedCommit(engine, max_members=3)
    await asyncio.gather(*(shared.run(add_user(f"u{i}")) for i in range(7)))
    assert commits == ["commit"] * 3
    assert len(stored_keys(engine)) == 7


async def test_open_yields_a_connection_in_the_shared_transaction(
    engine: AsyncEngine, commits: list[str],
) -> None:
    shared = SharedCommit(engine)

    async def turn(key: str, boom: bool = False) -> None:
        async with shared.open() as conn:
            await direct.run(conn, add_user(key))
            await asyncio.sleep(0)  # a member that really waits keeps the others out
            if boom:
                raise ValueError("the turn failed")

    results = await asyncio.gather(turn("t1"), turn("t2", boom=True), shared.run(add_user("w")),
                                   return_exceptions=True)
    assert results[0] is None and results[2] == 1
    assert isinstance(results[1], ValueError)
    assert stored_keys(engine) == {"t1", "w"}
    assert commits == ["commit"]


async def test_a_cancelled_member_does_not_stop_the_commit(engine: AsyncEngine) -> None:
    shared = SharedCommit(engine)
    first = asyncio.create_task(shared.run(add_user("cancelled-while-waiting")))
    second = asyncio.create_task(shared.run(add_user("waits")))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # both have written; the group ends on the next pass
    first.cancel()
    await second
    assert stored_keys(engine) == {"cancelled-while-waiting", "waits"}


async def test_the_pool_is_free_between_groups(engine: AsyncEngine) -> None:
    """Back-office work (its own sessions on the pool's one connection) is not starved."""
    shared = SharedCommit(engine)
    await shared.run(add_user("a"))
    async with engine.connect() as conn:  # would wait for the pool if the group held it
        keys = (await conn.execute(select(USERS.c.key))).scalars().all()
    assert keys == ["a"]


async def test_turns_of_several_users_share_a_commit(
    sanad_sqlite: Sanad, commits_of_sanad: list[str],
) -> None:
    """Through the engine: users writing at once get their own answers, every turn is
    stored (their duplicates are recognised), and it took one commit."""
    store = sanad_sqlite.store

    def inbound(user: str, message_id: str) -> Inbound:
        return Inbound(user=store.user_ref("telegram", user), text="hi", message_id=message_id)

    await sanad_sqlite.engine.handle_turn(inbound("early", "m-early"))  # caches staff state
    commits_of_sanad.clear()
    turns = await asyncio.gather(*(sanad_sqlite.engine.handle_turn(inbound(f"user{i}", f"m{i}"))
                                   for i in range(6)))
    assert commits_of_sanad == ["commit"]
    assert all(turn.outbound and not turn.duplicate for turn in turns)
    again = await sanad_sqlite.engine.handle_turn(inbound("user3", "m3"))
    assert again.duplicate  # the claim was committed with the rest


@pytest.fixture
def commits_of_sanad(sanad_sqlite: Sanad) -> list[str]:
    seen: list[str] = []
    event.listen(sanad_sqlite.store.engine.sync_engine, "commit",
                 lambda conn: seen.append("commit"))
    return seen
