"""One send budget per bot, asked by every sender of the process in priority order.

:class:`PrioritisedBudget` keeps the process's waiting sends in a priority queue and one task
asks the :class:`Backend` (where the budget lives: this process's memory, the database, Redis)
for the most urgent of them, in batches; grants go to the waiters in priority order, then
arrival order. The backend shares the budget between processes (see :mod:`bot.sendbudget.gcra`
for how priorities hold across them).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.sendbudget import gcra, metrics
from bot.sendbudget.priority import Priority, current

log = logging.getLogger(__name__)

MAX_POLL = 0.25
"""Longest sleep between two asks while sends wait (a new, more urgent send wakes it)."""
BACKEND_RETRY = 0.5
"""Seconds before asking again after the backend failed (the database or Redis is down)."""


class SendBudget(Protocol):
    """What a sender needs: permission to send now, and a way to report a flood wait."""

    async def acquire(self, priority: Priority | None = None) -> None:
        """Wait until one send at ``priority`` (default: the context's) may go out now."""

    async def reserve(self, priority: Priority, count: int, stop: asyncio.Event) -> list[float]:
        """Up to ``count`` send times (this process's monotonic clock, each to be used no
        earlier), as soon as at least one is granted; ``[]`` if ``stop`` is set first."""

    async def pause(self, seconds: float) -> None:
        """The platform said "retry after": nobody sends on this budget for ``seconds``."""


class Backend(Protocol):
    """Where the budget lives; each call is atomic across every process sharing it."""

    async def take(self, owner: str, priority: int, want: int,
                   next_priority: int | None) -> gcra.Grant: ...

    async def pause(self, seconds: float) -> float:
        """Returns the seconds left of the pause (the longest wins)."""


class MemoryBackend:
    """The budget of one process, in its memory: the default with no shared store."""

    def __init__(self, limits: gcra.Limits, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.state = gcra.State()

    async def take(self, owner: str, priority: int, want: int,
                   next_priority: int | None) -> gcra.Grant:
        return gcra.take(self.state, self.limits, self.clock(), owner=owner, priority=priority,
                         want=want, next_priority=next_priority)

    async def pause(self, seconds: float) -> float:
        now = self.clock()
        return gcra.pause(self.state, self.limits, now, seconds) - now


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    since: float = field(compare=False)
    future: asyncio.Future[float] = field(compare=False)
    """Resolved with the granted send time."""


class PrioritisedBudget:
    """A :class:`SendBudget` for one bot in this process, over a shared :class:`Backend`."""

    def __init__(self, backend: Backend, *, name: str, interval: float, max_batch: int = 32,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.backend = backend
        self.name = name
        """The metrics label: the channel (never the token)."""
        self.interval = interval
        """Seconds between two granted slots (1 / the budget's rate)."""
        self.max_batch = max_batch
        self.clock = clock
        self._sleep = sleep
        self.owner = uuid.uuid4().hex[:16]
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        self._runner: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_slot = float("-inf")

    async def acquire(self, priority: Priority | None = None) -> None:
        level = int(current() if priority is None else priority)
        slot = await self._enqueue(level)  # cancelled: the runner skips it
        delay = slot - self.clock()
        if delay > 0:
            await (self._sleep or asyncio.sleep)(delay)

    async def reserve(self, priority: Priority, count: int, stop: asyncio.Event) -> list[float]:
        futures = [asyncio.ensure_future(self._enqueue(int(priority))) for _ in range(count)]
        stopped = asyncio.ensure_future(stop.wait())
        try:
            first: set[asyncio.Future[object]] = {futures[0], stopped}  # type: ignore[arg-type]
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.sleep(0)  # the rest of the same grant resolve in the same step
        finally:
            stopped.cancel()
            for future in futures:
                if not future.done():
                    future.cancel()  # still queued: no grant is lost
        return sorted(f.result() for f in futures if f.done() and not f.cancelled())

    def _enqueue(self, level: int) -> asyncio.Future[float]:
        waiter = _Waiter(level, next(self._seq), self.clock(),
                         asyncio.get_running_loop().create_future())
        heapq.heappush(self._queue, waiter)
        if self._queue[0] is waiter:
            self._wake.set()  # more urgent than whatever the runner sleeps for
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=f"send-budget-{self.name}")
        return waiter.future

    async def pause(self, seconds: float) -> None:
        metrics.flood_wait(self.name)
        try:
            await self.backend.pause(seconds)
        except Exception as exc:  # the local queue still waits: the next ask says paused
            log.warning("send budget %s: could not share a flood wait (%s)", self.name,
                        type(exc).__name__)
        self._wake.set()

    def waiting(self) -> int:
        return sum(1 for w in self._queue if not w.future.done())

    async def aclose(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()

    async def _run(self) -> None:
        while self._drop_cancelled():
            top = self._queue[0].priority
            batch = [w for w in heapq.nsmallest(self.max_batch, self._queue)
                     if w.priority == top and not w.future.done()]
            rest = [w for w in self._queue if w.priority != top and not w.future.done()]
            next_priority = min((w.priority for w in rest), default=None)
            if len(batch) < sum(1 for w in self._queue if w.priority == top):
                next_priority = top  # more of the same than one batch
            self._wake.clear()  # a more urgent waiter from now on cuts the nap short
            try:
                grant = await self.backend.take(self.owner, top, len(batch), next_priority)
            except Exception as exc:
                log.warning("send budget %s: backend unavailable (%s); retrying", self.name,
                            type(exc).__name__)
                await self._nap(BACKEND_RETRY)
                continue
            self._hand_out(grant)
            if grant.granted < len(batch):
                await self._nap(min(MAX_POLL, grant.retry_in))

    def _hand_out(self, grant: gcra.Grant) -> None:
        """Each granted slot to the most urgent waiter, in order. Slots count from when the
        answer arrived (never earlier than the backend meant: late is safe)."""
        now = self.clock()
        for delay in grant.delays(self.interval):
            if not self._drop_cancelled():
                break
            waiter = heapq.heappop(self._queue)
            # Never two sends of this process closer than an interval: a batch that came
            # back late must not bunch up with the previous one.
            slot = max(now + delay, self._last_slot + self.interval)
            self._last_slot = slot
            waiter.future.set_result(slot)
            metrics.granted(self.name, waiter.priority, slot - waiter.since)

    def _drop_cancelled(self) -> bool:
        """Forget waiters that gave up; True while someone still waits."""
        while self._queue and self._queue[0].future.done():
            heapq.heappop(self._queue)
        return bool(self._queue)

    async def _nap(self, seconds: float) -> None:
        if self._sleep is not None:
            await self._sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))
