"""Who goes first when the platform's budget is short.

A send carries its priority in a context variable, set where the reason is known (the channel
knows the turn was an emergency; the outbox knows a row is a caseworker's reply) and read where
the budget is asked (the sender), so the call sites in between need not pass it along.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from enum import IntEnum

from bot.messages import (
    ChildAtRiskReported,
    EmergencyTriggered,
    Event,
    SafetyCheckAsked,
    SelfHarmDisclosed,
)


class Priority(IntEnum):
    """Lower goes first. Campaigns only ever take what the others leave."""

    EMERGENCY = 0
    """Emergency and safety replies: the numbers to call, "are you safe now?"."""
    FIRST_REPLY = 1
    """The first message of a turn's answer: everybody waiting hears something soon."""
    LATER_REPLY = 2
    """The rest of a turn's answer, and retried replies."""
    CASEWORKER = 3
    """A caseworker's reply relayed through the outbox."""
    CAMPAIGN = 4


SAFETY_EVENTS = (EmergencyTriggered, SafetyCheckAsked, SelfHarmDisclosed, ChildAtRiskReported)
"""A turn with one of these events is answered at ``EMERGENCY`` priority."""

_current: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "sanad_send_priority", default=Priority.LATER_REPLY)


def current() -> Priority:
    """The priority of sends made here (``LATER_REPLY`` unless someone said otherwise)."""
    return _current.get()


@contextlib.contextmanager
def sending_as(priority: Priority) -> Iterator[None]:
    """Sends inside this block ask the budget at ``priority``."""
    token = _current.set(priority)
    try:
        yield
    finally:
        _current.reset(token)


class TurnPriorities:
    """The priority of each message of one turn's answer, in order: everything at
    ``EMERGENCY`` when the turn raised a safety event, else the first message at
    ``FIRST_REPLY`` and the rest at ``LATER_REPLY``."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.safety = any(isinstance(e, SAFETY_EVENTS) for e in events)
        self.sent = 0

    def next(self) -> contextlib.AbstractContextManager[None]:
        if self.safety:
            priority = Priority.EMERGENCY
        else:
            priority = Priority.FIRST_REPLY if self.sent == 0 else Priority.LATER_REPLY
        self.sent += 1
        return sending_as(priority)


OUTBOX_KINDS = {"caseworker": Priority.CASEWORKER, "reply": Priority.LATER_REPLY,
                "campaign": Priority.CAMPAIGN}


def of_outbox_kind(kind: str) -> Priority:
    """An outbox row's priority: a caseworker's reply, or a turn's reply sent again."""
    return OUTBOX_KINDS.get(kind, Priority.LATER_REPLY)
