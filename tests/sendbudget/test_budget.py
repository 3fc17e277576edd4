"""The process side: the priority queue in front of the backend, and the senders using it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from telegram.error import RetryAfter

from bot.channels.telegram_sender import Sender, SendPolicy
from bot.messages import EmergencyTriggered, ModuleOpened
from bot.sendbudget import PrioritisedBudget, Priority, TurnPriorities, current, sending_as
from bot.sendbudget.gcra import Grant


class ScriptedBackend:
    """Grants nothing until opened, then one send per ask; records every ask."""

    def __init__(self) -> None:
        self.open = False
        self.asks: list[tuple[int, int, int | None]] = []
        self.paused: list[float] = []

    async def take(self, owner: str, priority: int, want: int,
                   next_priority: int | None) -> Grant:
        self.asks.append((priority, want, next_priority))
        if not self.open:
            return Grant(0, 0.001)
        return Grant(1, 0.001)

    async def pause(self, seconds: float) -> float:
        self.paused.append(seconds)
        return seconds


async def test_waiting_sends_are_granted_most_urgent_first_then_in_arrival_order() -> None:
    backend = ScriptedBackend()
    budget = PrioritisedBudget(backend, name="telegram", interval=0.001)
    served: list[str] = []

    async def send(label: str, priority: Priority) -> None:
        await budget.acquire(priority)
        served.append(label)

    tasks = [asyncio.create_task(send(label, priority)) for label, priority in [
        ("campaign", Priority.CAMPAIGN), ("later", Priority.LATER_REPLY),
        ("first-a", Priority.FIRST_REPLY), ("caseworker", Priority.CASEWORKER),
        ("first-b", Priority.FIRST_REPLY), ("emergency", Priority.EMERGENCY)]]
    await asyncio.sleep(0.01)
    assert served == []
    assert backend.asks[-1] == (Priority.EMERGENCY, 1, Priority.FIRST_REPLY)
    backend.open = True
    await asyncio.wait_for(asyncio.gather(*tasks), 2.0)
    await budget.aclose()

    assert served == ["emergency", "first-a", "first-b", "later", "caseworker", "campaign"]
    # The backend is asked for all of the top priority at once (a batch), and told what
    # else waits behind it (the demand other processes defer to).
    assert (Priority.FIRST_REPLY, 2, Priority.LATER_REPLY) in backend.asks


async def test_a_send_that_gave_up_takes_no_grant() -> None:
    backend = ScriptedBackend()
    budget = PrioritisedBudget(backend, name="telegram", interval=0.001)
    impatient = asyncio.create_task(budget.acquire(Priority.EMERGENCY))
    patient = asyncio.create_task(budget.acquire(Priority.CAMPAIGN))
    await asyncio.sleep(0.01)
    impatient.cancel()
    backend.open = True
    await asyncio.wait_for(patient, 2.0)
    assert budget.waiting() == 0
    await budget.aclose()


def test_a_turn_with_a_safety_event_is_sent_at_emergency_priority() -> None:
    safety = TurnPriorities([EmergencyTriggered()])
    plain = TurnPriorities([ModuleOpened(module_id="m")])
    seen = []
    for priorities in (safety, safety, plain, plain, plain):
        with priorities.next():
            seen.append(current())
    assert seen == [Priority.EMERGENCY, Priority.EMERGENCY, Priority.FIRST_REPLY,
                    Priority.LATER_REPLY, Priority.LATER_REPLY]
    assert current() is Priority.LATER_REPLY  # restored outside


class RecordingBudget:
    def __init__(self) -> None:
        self.acquired: list[Priority | None] = []
        self.paused: list[float] = []

    async def acquire(self, priority: Priority | None = None) -> None:
        self.acquired.append(current() if priority is None else priority)

    async def pause(self, seconds: float) -> None:
        self.paused.append(seconds)

    async def reserve(self, priority: Priority, count: int, stop: asyncio.Event) -> list[float]:
        raise NotImplementedError


async def test_the_telegram_sender_asks_the_budget_and_shares_a_flood_wait() -> None:
    budget = RecordingBudget()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    sender = Sender(SendPolicy(), sleep, budget=budget)
    calls = 0

    async def make() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryAfter(timedelta(seconds=3))
        return "ok"

    with sending_as(Priority.EMERGENCY):
        assert await sender.call(make, chat_id=5, what="sendMessage") == "ok"
    assert budget.acquired == [Priority.EMERGENCY, Priority.EMERGENCY]
    assert budget.paused == [3.0]  # everyone pauses; the retry waits in the budget's queue
    assert slept == []


@pytest.mark.parametrize("kind, expected", [("caseworker", Priority.CASEWORKER),
                                            ("reply", Priority.LATER_REPLY)])
async def test_outbox_rows_are_sent_at_their_kinds_priority(kind: str,
                                                            expected: Priority) -> None:
    from bot.outbox import OutboxSender, _Leased

    seen: list[Priority] = []

    class Deliverer:
        async def deliver(self, address: str, messages: object) -> None:
            seen.append(current())

    sender = OutboxSender(store=None, channel="telegram", deliverer=Deliverer())  # type: ignore[arg-type]

    async def lease() -> list[_Leased]:
        return [_Leased(1, "k", "42", [], kind)]

    async def settle(row: _Leased, **_: object) -> None:
        return None

    sender._lease = lease  # type: ignore[method-assign]
    sender._settle = settle  # type: ignore[method-assign]
    assert await sender.run_once() == 1
    assert seen == [expected]
