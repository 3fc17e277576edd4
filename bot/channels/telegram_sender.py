"""Calling the Bot API politely: Telegram's rate limits, flood waits and bounded retries.

Telegram allows about one message per second in a chat (short bursts are fine) and about 30
per second overall; above that it answers 429 with ``retry_after``. Network failures and 5xx are
retried with exponential backoff, a bounded number of times: the webhook is waiting for us, and
Telegram itself re-delivers an update that we could not finish.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.outbox import check_lease
from bot.sendbudget import SendBudget

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class SendPolicy:
    per_chat_rate: float = 1.0
    """Messages per second in one chat, sustained."""
    per_chat_burst: int = 4
    """Messages a chat may receive at once (one turn's answer) before the rate applies."""
    global_rate: float = 30.0
    global_burst: int = 30
    attempts: int = 5
    """Tries per call, flood waits included."""
    backoff: float = 0.5
    """First retry delay after a network error; doubles each time, up to ``max_backoff``."""
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    """A longer flood wait is not waited for: the call fails instead of holding the webhook."""


class UserBlockedBot(Exception):
    """Telegram answered 403: the user blocked the bot or deleted their account."""


class RateLimiter:
    """Token buckets per key, by reservation: no lock, and waiting callers keep their order."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[object, tuple[float, float]] = {}

    def reserve(self, key: object = None) -> float:
        """Take a token now and return how long to wait before using it."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate) - 1.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._forget_idle(now)
        return -tokens / self.rate if tokens < 0 else 0.0

    async def acquire(self, key: object = None) -> None:
        delay = self.reserve(key)
        if delay > 0:
            await asyncio.sleep(delay)

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled completely: they hold no information."""
        full = [k for k, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]


class Sender:
    """Runs Bot API calls under the rate limits, retrying what is worth retrying.

    With a ``budget`` (:mod:`bot.sendbudget`: the bot's budget shared by every process, asked
    at the priority of the context) the overall rate is the budget's, and a flood wait pauses
    the budget for everyone; without one, this process keeps its own ``global_rate``.
    """

    def __init__(self, policy: SendPolicy | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, *,
                 budget: SendBudget | None = None) -> None:
        self.policy = policy or SendPolicy()
        self._sleep = sleep
        self.budget = budget
        self._chats = RateLimiter(self.policy.per_chat_rate, self.policy.per_chat_burst)
        self._global = RateLimiter(self.policy.global_rate, self.policy.global_burst)

    async def call(self, make: Callable[[], Awaitable[T]], *, chat_id: int | None = None,
                   what: str = "call", guarded: bool = False) -> T:
        """``make()`` once or a few times. ``chat_id`` counts the call against that chat's rate
        (messages only). ``guarded``: the call sends an outbox row's message, so it is made
        only while the row's lease is surely this process's (checked after every wait:
        :class:`bot.outbox.LeaseLost` otherwise). Raises :class:`UserBlockedBot` on 403, the
        last error otherwise."""
        policy = self.policy
        for attempt in range(1, policy.attempts + 1):
            if self.budget is None:
                await self._global.acquire()
            if chat_id is not None:
                await self._chats.acquire(chat_id)
            if self.budget is not None:  # after the chat's wait: a grant is spent at once
                await self.budget.acquire()
            if guarded:
                check_lease()
            try:
                return await make()
            except Forbidden:
                raise UserBlockedBot() from None
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                if attempt == policy.attempts or wait > policy.max_retry_after:
                    raise
                log.warning("telegram %s: flood wait %.1fs (attempt %d)", what, wait, attempt)
                if self.budget is not None:  # everyone waits; the queue resumes by priority
                    await self.budget.pause(wait)
                else:
                    await self._sleep(wait)
            except BadRequest:
                raise  # our request is wrong; sending it again changes nothing
            except NetworkError as exc:  # includes TimedOut and Telegram's 5xx
                if attempt == policy.attempts:
                    raise
                delay = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
                delay *= random.uniform(0.75, 1.0)
                log.warning("telegram %s: %s, retrying in %.2fs (attempt %d)",
                            what, type(exc).__name__, delay, attempt)
                await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def retry_after_seconds(exc: RetryAfter) -> float:
    """``RetryAfter.retry_after`` is an int or a timedelta depending on PTB's settings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
