"""What a channel's deliverer may tell the campaign sender, and what each answer means.

A campaign deliverer is any ``bot.outbox.Deliverer``. Besides returning (sent), it may raise:

* an exception with a ``retry_after`` attribute (seconds or a ``timedelta``; PTB's
  ``RetryAfter`` and a Graph API 429 look like this): the platform is flooded; the whole
  channel pauses for that long, in every process, and the message is tried again;
* :class:`bot.outbox.PermanentDeliveryError`: the user blocked the bot; ``blocked``, and the user
  is marked unreachable (no campaign reaches them until they write again);
* :class:`Held`: the platform cannot take it now (WhatsApp outside the 24-hour window): the row
  gets the outbox status ``held`` that the WhatsApp channel releases when the user writes;
* :class:`Refused`: refused for good for a reason that is not the user's: ``failed``;
* anything else: a transient failure, retried with backoff a few times, then ``failed``.

Whatever ``deliver`` returns is handed to the sender's optional ``on_sent`` hook (the WhatsApp
channel links message ids to the outbox row there, so delivery reports reach the campaign).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from bot.messages import Outbound
from bot.outbox import PermanentDeliveryError


class Deliverer(Protocol):
    async def deliver(self, address: str, messages: Sequence[Outbound]) -> object: ...


class Held(Exception):
    """Not now: wait in the outbox (status ``held``) until the channel releases the row."""

    def __init__(self, reason: str = "held") -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(Exception):
    """Refused for good, but the user is still reachable (e.g. the platform rejected content)."""


class RateLimited(Exception):
    """The platform said "too fast" (or needs an operator): pause the whole channel."""

    def __init__(self, retry_after: float, reason: str = "rate limited") -> None:
        super().__init__(f"{reason}, retry after {retry_after:.1f}s")
        self.retry_after = float(retry_after)
        self.reason = reason


class Outcome(StrEnum):
    SENT = "sent"
    RATE_LIMITED = "rate_limited"
    BLOCKED = "blocked"
    HELD = "held"
    REFUSED = "refused"
    RETRY = "retry"
    INTERRUPTED = "interrupted"
    """Cancelled while the platform call was in flight: it may or may not have gone out."""


@dataclass(frozen=True, slots=True)
class Sent:
    """What ``on_sent`` receives after a successful delivery."""

    outbox_id: int
    user_id: int
    campaign_id: int
    result: object


OnSent = Callable[[Sent], Awaitable[None]]


def retry_after(exc: BaseException) -> float | None:
    """Seconds to wait if ``exc`` is a flood-control answer (429), else None."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def classify(exc: BaseException) -> Outcome:
    if retry_after(exc) is not None:
        return Outcome.RATE_LIMITED
    if isinstance(exc, PermanentDeliveryError):
        return Outcome.BLOCKED
    if isinstance(exc, Held):
        return Outcome.HELD
    if isinstance(exc, Refused):
        return Outcome.REFUSED
    return Outcome.RETRY
