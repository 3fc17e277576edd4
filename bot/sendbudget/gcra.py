"""The budget's arithmetic, with no clock and no storage: one function every backend runs.

A generic cell rate algorithm (GCRA, a token bucket kept as one number): ``tat`` is the
theoretical arrival time of the next send. A send is allowed at ``now`` when
``tat - now <= tolerance`` (``tolerance = (burst - 1) * interval``) and moves ``tat`` on by one
``interval``; so in any window of ``W`` seconds at most ``burst + W * rate`` sends are allowed,
and an idle budget banks no more than ``burst``. A grant may be for a slot up to ``horizon``
seconds ahead (``Grant.start``: the first slot's offset from now; the others follow one
interval apart), so that one round trip to a shared store grants a batch and the store's
latency does not slow the rate; nobody books further ahead than that, so a more urgent send
waits at most ``horizon`` for slots someone else already holds.

Priorities across processes: each caller (one per process and budget) says, on every call, the
most urgent priority it still has waiting after this call (its *demand*). A call is refused
while another caller has fresh demand (seen within ``demand_ttl``) more urgent than its own, and
a priority with a reserve (campaigns) may only take a send when ``reserve`` more would still be
left, so a conversation arriving between two polls never waits behind a campaign.

A platform's flood wait pauses the budget: nothing is granted before ``paused_until``, and the
schedule restarts there without a burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

EPSILON = 1e-6
"""Rounding slack, in send intervals (epoch seconds carry ~1e-10 s of float error)."""


@dataclass(frozen=True, slots=True)
class Limits:
    rate: float
    """Sends per second the budget spends (below the platform's limit: headroom)."""
    burst: int = 1
    """Sends an idle budget may grant at once."""
    horizon: float = 0.25
    """Seconds ahead a slot may be granted."""
    reserves: tuple[int, ...] = (0, 0, 0, 0, 1)
    """Per priority (index = ``Priority`` value): sends that must stay available after a
    grant at that priority."""
    demand_ttl: float = 0.25
    """Seconds a caller's demand counts after it last said so (a dead process's demand fades)."""

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval

    def reserve(self, priority: int) -> int:
        return self.reserves[priority] if priority < len(self.reserves) else self.reserves[-1]


@dataclass(slots=True)
class State:
    tat: float = 0.0
    paused_until: float = 0.0
    demand: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Caller id -> (most urgent priority it has waiting, when it said so)."""


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    retry_in: float
    """When ``granted`` fell short: seconds until asking again may succeed."""
    paused: bool = False
    start: float = 0.0
    """Seconds from now to the first granted slot (0 or less: at once); the next ones follow
    one ``interval`` apart."""

    def delays(self, interval: float) -> list[float]:
        """Seconds from now to each granted slot."""
        return [max(0.0, self.start + k * interval) for k in range(self.granted)]


def take(state: State, limits: Limits, now: float, *, owner: str, priority: int, want: int,
         next_priority: int | None) -> Grant:
    """Grant up to ``want`` sends at ``priority`` to ``owner`` at ``now`` (mutates ``state``).

    ``next_priority``: the most urgent priority the owner still has waiting once these
    ``want`` are served (``None``: nothing else)."""
    interval = limits.interval
    if now < state.paused_until:
        _note(state, limits, now, owner, priority)
        return Grant(0, state.paused_until - now, paused=True)
    blocked = any(p < priority and now - seen <= limits.demand_ttl
                  for o, (p, seen) in state.demand.items() if o != owner)
    granted = 0
    retry_in = interval
    start = 0.0
    if not blocked:
        tat = max(state.tat, now)
        start = tat - limits.tolerance - now
        reach = limits.tolerance - limits.reserve(priority) * interval + limits.horizon
        slots = (reach - (tat - now)) / interval
        if slots >= -EPSILON:
            granted = min(want, math.floor(slots + EPSILON) + 1)
            tat += granted * interval
        state.tat = tat
        if granted < want:  # ask again when half the horizon is free: a batch, not a slot
            retry_in = max((tat - now) - reach + limits.horizon / 2, interval / 4)
    waiting = priority if granted < want else next_priority
    _note(state, limits, now, owner, waiting)
    return Grant(granted, retry_in, start=start)


def pause(state: State, limits: Limits, now: float, seconds: float) -> float:
    """A flood wait: nothing is granted for ``seconds``, then the schedule restarts without
    a burst. Returns the end of the pause."""
    state.paused_until = max(state.paused_until, now + max(0.0, seconds))
    state.tat = max(state.tat, state.paused_until + limits.tolerance)
    return state.paused_until


def _note(state: State, limits: Limits, now: float, owner: str, waiting: int | None) -> None:
    if waiting is None:
        state.demand.pop(owner, None)
    else:
        state.demand[owner] = (waiting, now)
    stale = [o for o, (_, seen) in state.demand.items() if now - seen > limits.demand_ttl * 4]
    for o in stale:
        del state.demand[o]
