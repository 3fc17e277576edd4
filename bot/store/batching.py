"""Small writes of many callers, made together: one transaction and one statement per kind.

After each turn the channel writes two facts: the chat's message ids (for quick exit) and
"these outbox rows were delivered". Each is a row or two, but a transaction of its own costs a
connection checkout, ``BEGIN`` and ``COMMIT`` (on PostgreSQL three round trips and a WAL flush,
more than the rows themselves). :class:`WriteBatch` collects the items handed to it during one
pass of the event loop and writes them in one transaction, then wakes every caller. Like
:class:`~bot.store.transactions.SharedCommit`, a caller returns only once its items are
committed, so nothing is acknowledged earlier than with a transaction of its own; a failure
fails every caller of the batch (each gets its own :class:`DatabaseUnavailable`).

Only writes that cannot fail on their data belong here (``ON CONFLICT DO NOTHING`` inserts,
updates by primary key): a failure then means the database itself failed, for all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.store import direct
from bot.store.db import DatabaseUnavailable
from bot.store.transactions import Transactions

Item = TypeVar("Item")

MAX_ITEMS = 512
"""Items per batch at most: bounds the statements' size and the first caller's wait."""


@dataclass(eq=False)
class _Batch(Generic[Item]):
    items: list[Item]
    written: asyncio.Future[None]
    flush: asyncio.Task[None] | None = field(default=None, repr=False)


class WriteBatch(Generic[Item]):
    """Items added in one pass of the event loop are written by one ``write(cursor, items)``
    in one transaction of ``transactions``."""

    def __init__(self, transactions: Transactions,
                 write: Callable[[direct.Cursor, Sequence[Item]], None], *,
                 max_items: int = MAX_ITEMS) -> None:
        self._transactions = transactions
        self._write = write
        self._max_items = max_items
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: _Batch[Item] | None = None

    async def add(self, *items: Item) -> None:
        """Write ``items`` with the others of this moment; returns once they are committed.

        Raises :class:`DatabaseUnavailable` when the batch's transaction failed.
        """
        batch = self._batch()
        batch.items.extend(items)
        if len(batch.items) >= self._max_items:
            self._open = None  # full: later items start the next batch
        try:
            await asyncio.shield(batch.written)
        except DatabaseUnavailable as exc:  # a fresh exception per caller, same cause
            raise DatabaseUnavailable(*exc.args) from exc.__cause__

    def _batch(self) -> _Batch[Item]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a store used from a new event loop (tests, CLI runs)
            self._loop, self._open = loop, None
        batch = self._open
        if batch is None:
            written: asyncio.Future[None] = loop.create_future()
            written.add_done_callback(_retrieve)  # no caller may be left to await it
            batch = self._open = _Batch([], written)
            # Runs after the work already ready in this pass of the loop: its items join.
            batch.flush = asyncio.create_task(self._flush(batch))
        return batch

    async def _flush(self, batch: _Batch[Item]) -> None:
        if self._open is batch:
            self._open = None
        items = batch.items
        try:
            await self._transactions.run(lambda cursor: self._write(cursor, items))
        except BaseException as exc:  # cancelled at shutdown too: no caller waits forever
            failure = DatabaseUnavailable(type(exc).__name__)
            failure.__cause__ = exc
            batch.written.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
        else:
            batch.written.set_result(None)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
