"""Per-user flood control: a token bucket per pseudonymous user, in front of the NLU.

A person typing fast is never noticed (a burst of ``burst`` messages, then ``rate`` per second).
A flood is slowed (short waits) and, past ``max_wait``, dropped with at most one "slow down"
notice per ``notice_every`` seconds, so one abuser cannot eat the CPU that others need.
The clock and the sleep are injectable (the real ones by default), so tests can drive time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    PROCESS = "process"
    DROP_WITH_NOTICE = "notice"
    DROP = "drop"


@dataclass
class _Bucket:
    tokens: float
    updated: float
    noticed: float = field(default=-1e9)


class FloodGuard:
    def __init__(self, *, rate: float = 1.0, burst: int = 10, max_wait: float = 3.0,
                 notice_every: float = 30.0, max_users: int = 100_000,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.rate, self.burst, self.max_wait = rate, burst, max_wait
        self.notice_every, self.max_users = notice_every, max_users
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, _Bucket] = {}

    async def admit(self, key: str, *, urgent: bool = False) -> Verdict:
        """Take a token for ``key``, waiting up to ``max_wait``; say what to do otherwise.

        An ``urgent`` message (the safety layer found danger in it) is processed at once,
        whatever the bucket holds: a cry for help at the end of a burst is never slowed."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_users:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        bucket.tokens -= 1  # reserve, so concurrent floods queue behind each other
        if urgent:
            bucket.tokens = max(bucket.tokens, 0.0)
            return Verdict.PROCESS
        if bucket.tokens >= 0:
            return Verdict.PROCESS
        wait = -bucket.tokens / self.rate
        if wait <= self.max_wait:
            await self._sleep(wait)
            return Verdict.PROCESS
        bucket.tokens += 1  # dropped: give the reservation back
        if now - bucket.noticed >= self.notice_every:
            bucket.noticed = now
            return Verdict.DROP_WITH_NOTICE
        return Verdict.DROP

    def _forget_idle(self, now: float) -> None:
        """Buckets that refilled completely carry no information: drop them (bounded memory)."""
        full = [k for k, b in self._buckets.items()
                if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
