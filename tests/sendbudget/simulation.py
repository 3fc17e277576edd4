"""A logical-time simulation of processes sharing one send budget (no wall clock).

Each simulated process behaves like :class:`bot.sendbudget.budget.PrioritisedBudget`: it asks
the backend for every waiter of its most urgent priority at once, hands grants out in priority
order, and after a shortfall asks again after ``min(retry_in, MAX_POLL)`` — or at once when a
more urgent send arrives. Time jumps from one event to the next, so 20 simulated seconds take
a fraction of a second on the in-memory backend, and the same asks can be replayed against the
database and Redis backends with an injected clock.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.sendbudget.budget import MAX_POLL
from bot.sendbudget.gcra import Grant
from bot.sendbudget.priority import Priority

Take = Callable[[str, int, int, int | None, float], Awaitable[Grant]]
"""(owner, priority, want, next_priority, now) -> Grant"""


@dataclass
class Send:
    owner: str
    priority: int
    arrived: float
    granted: float | None = None
    """The slot: when it may go out."""
    decided: float | None = None
    """When the slot was granted."""


@dataclass
class Process:
    name: str
    queue: list[tuple[int, int, Send]] = field(default_factory=list)
    next_ask: float = float("inf")


@dataclass
class Simulation:
    take: Take
    processes: dict[str, Process]
    interval: float
    sends: list[Send] = field(default_factory=list)
    calls: int = 0
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def of(cls, take: Take, interval: float, *names: str) -> Simulation:
        return cls(take, {name: Process(name) for name in names}, interval)

    def arrive(self, owner: str, priority: int, at: float) -> Send:
        send = Send(owner, priority, at)
        self.sends.append(send)
        return send

    async def run(self, until: float, *, endless: dict[str, int] | None = None) -> None:
        """Play arrivals up to ``until``; ``endless``: processes that always have one more
        send of that priority waiting (a campaign with a huge audience)."""
        pending = sorted(self.sends, key=lambda s: s.arrived)
        endless = endless or {}
        for name, priority in endless.items():
            self._enqueue(self.processes[name], Send(name, priority, 0.0), 0.0)
        index = 0
        now = 0.0
        while now <= until:
            next_arrival = pending[index].arrived if index < len(pending) else float("inf")
            next_ask = min(p.next_ask for p in self.processes.values())
            now = min(next_arrival, next_ask)
            if now > until:
                break
            if next_arrival <= next_ask:
                send = pending[index]
                index += 1
                self._enqueue(self.processes[send.owner], send, now)
                continue
            process = min(self.processes.values(), key=lambda p: p.next_ask)
            await self._ask(process, now, endless)

    def _enqueue(self, process: Process, send: Send, now: float) -> None:
        urgent = not process.queue or send.priority < process.queue[0][0]
        heapq.heappush(process.queue, (send.priority, next(self._seq), send))
        if urgent:
            process.next_ask = min(process.next_ask, now)

    async def _ask(self, process: Process, now: float, endless: dict[str, int]) -> None:
        top = process.queue[0][0]
        want = sum(1 for p, _, _ in process.queue if p == top)
        rest = [p for p, _, _ in process.queue if p != top]
        self.calls += 1
        grant = await self.take(process.name, top, want, min(rest, default=None), now)
        for delay in grant.delays(self.interval):
            _, _, send = heapq.heappop(process.queue)
            send.granted, send.decided = now + delay, now
            if process.name in endless:
                self.sends.append(send)
                self._enqueue(process, Send(process.name, endless[process.name], now), now)
        if not process.queue:
            process.next_ask = float("inf")
        elif grant.granted < want:
            process.next_ask = now + min(grant.retry_in, MAX_POLL)
        else:
            process.next_ask = now

    def granted_times(self, priority: int | None = None) -> list[float]:
        """When each granted send may go out (its slot), in order."""
        return sorted(s.granted for s in self.sends if s.granted is not None
                      and (priority is None or s.priority == priority))

    def waits(self, priority: int) -> list[float]:
        return [s.granted - s.arrived for s in self.sends
                if s.priority == priority and s.granted is not None]


def overtaken(sim: Simulation, urgent: int, other: int) -> list[tuple[Send, Send]]:
    """Pairs where a less urgent send was granted while a more urgent one that had arrived
    (in any process) still waited: what the budget must never do."""
    waiting = [s for s in sim.sends if s.priority == urgent]
    return [(u, o) for o in sim.sends if o.priority == other and o.decided is not None
            for u in waiting if u.arrived < o.decided
            and (u.decided is None or u.decided > o.decided)]


def max_in_window(times: list[float], window: float) -> int:
    """The most grants in any half-open window ``[t, t + window)``."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def saturation(sim: Simulation, *, seed: int = 24, users: int = 150,
               emergencies: int = 20, until: float = 20.0) -> None:
    """Two serve processes answering a rush of users (first and later replies, caseworker
    replies), emergencies at random moments; the worker's campaign is added by ``run``."""
    rng = random.Random(seed)
    for n in range(users):
        owner = "serve-1" if n % 2 else "serve-2"
        at = rng.uniform(2.0, 2.05)  # everybody writes at once, two seconds in
        sim.arrive(owner, Priority.FIRST_REPLY, at)
        sim.arrive(owner, Priority.LATER_REPLY, at)
    for _ in range(20):
        sim.arrive(rng.choice(["serve-1", "serve-2"]), Priority.CASEWORKER,
                   rng.uniform(0.0, until))
    for _ in range(emergencies):
        sim.arrive(rng.choice(["serve-1", "serve-2"]), Priority.EMERGENCY,
                   rng.uniform(0.0, until))
