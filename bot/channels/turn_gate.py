"""Intake in priority order: a bounded number of turns at once, danger first (issue #24).

Under a rush (thousands of people writing in the same second) every turn used to start at
once: they queued for the CPU and for the store's connections (the pool timed out after 30 s
with 2,000 at once), and an emergency message waited its *turn* behind all of them before the
send budget could put its answer first. :class:`TurnGate` runs at most ``limit`` turns at once
(no more than the store's pool holds); the others wait in a priority queue:

1. :attr:`Urgency.SAFETY` — the safety layer's rules (``nlu/safety.yml``, the same compiled
   :class:`~nlu.safety.SafetyNet` the engine's detector uses) fire on the text;
2. :attr:`Urgency.FIRST` — the first message this process sees from a chat (someone new
   waiting for any answer at all);
3. :attr:`Urgency.OTHER` — the rest;

first in, first out within a class. Only the rules are read here (a few regular expressions):
the model and the age reader run in the turn, as before.

:class:`SendChain` keeps one chat's sends in the order of its turns once sending no longer
happens inside the chat's lock (the webhook is answered when the turn is committed).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from enum import IntEnum
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import POOL_OVERFLOW, POOL_SIZE
from nlu.normalize import normalize
from nlu.safeguard import CONTEXT_ONLY
from nlu.safety import SafetyNet, default_safety_net

T = TypeVar("T")

SINGLE_CONNECTION_TURNS = 64
"""Turns at once on a pool of one connection (SQLite). A turn holds the connection only for its
short transaction; its wall time is mostly the wait for it (behind the sends' writes and the
budget's asks), so a small bound starves intake: in ``bench/saturation.py`` (300 users), 4 at
once gave ~6 turns/s and an emergency p99 of 11.8 s, 64 at once 3.1 s. Sixty-four waiters stay
far from the pool's 60 s timeout."""
SEEN_CHATS = 100_000
"""Chats remembered as already seen (least recently seen forgotten first): bounded memory."""


class Urgency(IntEnum):
    """Lower runs first."""

    SAFETY = 0
    FIRST = 1
    OTHER = 2


class TurnGate:
    """At most ``limit`` turns at once; the rest wait, most urgent first, then in order.

    A waiter that is cancelled leaves the queue; one cancelled just as its slot was handed to
    it passes the slot on, so a slot is never lost."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a turn gate needs at least one slot")
        self.limit = limit
        self.running = 0
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @asynccontextmanager
    async def slot(self, urgency: Urgency) -> AsyncIterator[None]:
        await self._acquire(urgency)
        try:
            yield
        finally:
            self._release()

    def full(self) -> bool:
        """Whether a turn asking now would wait (only then does its urgency matter)."""
        return self.running >= self.limit or bool(self.waiting())

    def waiting(self) -> int:
        return sum(1 for _, _, f in self._queue if not f.done())

    async def _acquire(self, urgency: Urgency) -> None:
        if self.running < self.limit and not self.waiting():
            self.running += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (int(urgency), next(self._seq), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # handed a slot as it was cancelled: pass it on
            raise

    def _release(self) -> None:
        """Hand the slot to the most urgent waiter still waiting, or free it."""
        while self._queue:
            _, _, future = heapq.heappop(self._queue)
            if not future.done():
                future.set_result(None)  # the slot changes hands: ``running`` stays
                return
        self.running -= 1


class Triage:
    """The urgency of an incoming message, before its turn: the safety rules, then whether
    this process has seen the chat before."""

    def __init__(self, rules: SafetyNet | None = None, *, remember: int = SEEN_CHATS) -> None:
        self.rules = rules or default_safety_net()
        self.remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()

    def urgency(self, chat: str, text: str | None, *, scan: bool = True) -> Urgency:
        """``scan=False`` skips the rules: with a free slot the turn runs at once and its
        safety layer reads the message anyway, so intake need not read it first."""
        first = chat not in self._seen
        self._seen[chat] = None
        self._seen.move_to_end(chat)
        if len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        if scan and text and self.flags(text):
            return Urgency.SAFETY
        return Urgency.FIRST if first else Urgency.OTHER

    def flags(self, text: str) -> bool:
        """Whether a rule of an acted-on label fires (the women's-line context rule alone does
        not make a message urgent)."""
        return bool(set(self.rules.fired(normalize(text))) - CONTEXT_ONLY)


def rules_of(detector: Any) -> SafetyNet | None:
    """The compiled rules of the engine's safety detector (``EmbeddedSafety.rules``), so that
    intake reads the very rules the turn will; ``None`` for a detector without them."""
    rules = getattr(detector, "rules", None)
    return rules if isinstance(rules, SafetyNet) else None


def pool_capacity(engine: AsyncEngine) -> int:
    """Turns to run at once on the store's pool: the connections it hands out at most
    (PostgreSQL: ``POOL_SIZE`` + ``POOL_OVERFLOW``, as ``bot.store.db`` creates it);
    :data:`SINGLE_CONNECTION_TURNS` on SQLite's single connection."""
    if engine.dialect.name == "sqlite":
        return SINGLE_CONNECTION_TURNS
    return POOL_SIZE + POOL_OVERFLOW


class SendChain:
    """One chat's sends, one after another in the order they were scheduled; different
    chats send concurrently. Holds only the chats with a send pending."""

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Task[Any]] = {}

    def schedule(self, key: str, send: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """Start ``send`` once the chat's earlier sends are done (whatever their outcome)."""
        before = self._tails.get(key)

        async def after() -> T:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            return await send()

        task = asyncio.create_task(after(), name="channel-send")
        self._tails[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    async def settled(self, key: str | None = None) -> None:
        """Wait until the chat's (or every chat's) sends scheduled so far are done."""
        while True:
            tasks = [t for k, t in self._tails.items() if key is None or k == key]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    def pending(self) -> int:
        return len(self._tails)

    async def cancel(self) -> None:
        tasks = list(self._tails.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, key: str, done: asyncio.Task[Any]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]
