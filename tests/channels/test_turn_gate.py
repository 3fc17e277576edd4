"""The turn gate, the triage, the send chain and the lease keeper's clock: logic only, with
events and a fake clock (no sleeps, no database)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.channels.turn_gate import SendChain, Triage, TurnGate, Urgency
from bot.outbox import LeaseKeeper, LeaseLost, check_lease

EMERGENCY = "أنا في خطر الآن"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_emergency_behind_queued_turns_runs_next() -> None:
    gate = TurnGate(1)
    order: list[str] = []
    release = asyncio.Event()

    async def turn(name: str, urgency: Urgency) -> None:
        async with gate.slot(urgency):
            order.append(name)
            if name == "running":
                await release.wait()

    first = asyncio.create_task(turn("running", Urgency.OTHER))
    await settle()
    queued = [asyncio.create_task(turn(f"o{i}", Urgency.OTHER)) for i in range(5)]
    await settle()
    newcomer = asyncio.create_task(turn("new", Urgency.FIRST))
    await settle()
    danger = asyncio.create_task(turn("danger", Urgency.SAFETY))
    await settle()
    assert order == ["running"] and gate.waiting() == 7
    release.set()
    await asyncio.gather(first, *queued, newcomer, danger)
    assert order == ["running", "danger", "new", "o0", "o1", "o2", "o3", "o4"]
    assert gate.running == 0


async def test_the_gate_never_runs_more_than_its_bound() -> None:
    gate = TurnGate(3)
    now = {"running": 0, "max": 0}
    steps = [asyncio.Event() for _ in range(20)]

    async def turn(i: int) -> None:
        async with gate.slot(Urgency(i % 3)):
            now["running"] += 1
            now["max"] = max(now["max"], now["running"])
            assert gate.running <= 3
            await steps[i].wait()
            now["running"] -= 1

    tasks = [asyncio.create_task(turn(i)) for i in range(20)]
    await settle()
    assert now["running"] == 3 and gate.waiting() == 17
    for step in steps:  # let them finish one by one, in any order
        step.set()
        await settle()
        assert now["running"] <= 3
    await asyncio.gather(*tasks)
    assert now["max"] == 3 and gate.running == 0


async def test_a_failed_or_cancelled_turn_releases_its_slot() -> None:
    gate = TurnGate(1)
    hold = asyncio.Event()
    ran: list[str] = []

    async def failing() -> None:
        async with gate.slot(Urgency.OTHER):
            await hold.wait()
            raise RuntimeError("a bug in a turn")

    async def turn(name: str) -> None:
        async with gate.slot(Urgency.OTHER):
            ran.append(name)

    async def stuck() -> None:
        async with gate.slot(Urgency.SAFETY):
            await asyncio.Event().wait()

    broken = asyncio.create_task(failing())
    await settle()
    waiting_then_cancelled = asyncio.create_task(turn("cancelled"))
    later = asyncio.create_task(turn("later"))
    await settle()
    waiting_then_cancelled.cancel()  # gives up while queued: never runs, holds nothing
    await settle()
    hold.set()
    with pytest.raises(RuntimeError):
        await broken
    await later
    assert ran == ["later"] and gate.running == 0

    running = asyncio.create_task(stuck())  # cancelled while running: its slot comes back
    await settle()
    assert gate.running == 1
    running.cancel()
    await settle()
    assert gate.running == 0
    await turn("after")
    assert ran == ["later", "after"]


async def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_is_passed_on() -> None:
    gate = TurnGate(1)
    ran: list[str] = []
    hold = asyncio.Event()

    async def turn(name: str) -> None:
        async with gate.slot(Urgency.OTHER):
            ran.append(name)
            if name == "first":
                await hold.wait()

    first = asyncio.create_task(turn("first"))
    await settle()
    unlucky = asyncio.create_task(turn("unlucky"))
    last = asyncio.create_task(turn("last"))
    await settle()
    hold.set()
    await asyncio.sleep(0)  # "first" leaves: the slot is handed to "unlucky" ...
    assert first.done() and gate.running == 1
    unlucky.cancel()  # ... cancelled before it could run
    await asyncio.gather(first, last, unlucky, return_exceptions=True)
    assert ran == ["first", "last"] and gate.running == 0


def test_triage_reads_the_safety_rules_then_first_messages() -> None:
    triage = Triage()
    assert triage.urgency("1", "مرحبا") is Urgency.FIRST
    assert triage.urgency("1", "عايز اعرف عن السفر") is Urgency.OTHER
    assert triage.urgency("1", EMERGENCY) is Urgency.SAFETY
    assert triage.urgency("2", "I'm in danger now, they locked me in") is Urgency.SAFETY
    assert triage.urgency("3", None) is Urgency.FIRST  # a tap with no text
    assert triage.urgency("3", "this exam is killing me") is not Urgency.SAFETY


def test_triage_remembers_a_bounded_number_of_chats() -> None:
    triage = Triage(remember=2)
    for chat in ("a", "b", "c"):
        assert triage.urgency(chat, "hi") is Urgency.FIRST
    assert triage.urgency("c", "hi") is Urgency.OTHER
    assert triage.urgency("a", "hi") is Urgency.FIRST  # forgotten: counted as new again


async def test_a_chats_sends_keep_the_order_of_its_turns() -> None:
    chain = SendChain()
    log: list[str] = []
    gates = {name: asyncio.Event() for name in ("a1", "a2", "b1")}

    def send(name: str):  # type: ignore[no-untyped-def]
        async def run() -> str:
            await gates[name].wait()
            log.append(name)
            return name
        return run

    a1 = chain.schedule("a", send("a1"))
    a2 = chain.schedule("a", send("a2"))
    b1 = chain.schedule("b", send("b1"))
    gates["a2"].set()
    gates["b1"].set()
    await b1
    assert log == ["b1"]  # another chat does not wait
    await settle()
    assert log == ["b1"]  # a2 waits for a1, although it is ready
    gates["a1"].set()
    assert await a2 == "a2" and await a1 == "a1"
    assert log == ["b1", "a1", "a2"]
    await chain.settled()
    assert chain.pending() == 0


def test_a_row_counts_as_held_until_the_margin_before_its_lease_ends() -> None:
    now = [100.0]
    keeper = LeaseKeeper(None, lease=timedelta(seconds=60),  # type: ignore[arg-type]
                         clock=lambda: now[0])
    keeper.hold([7], attempts=1, since=100.0)  # lease ends at 160, margin 20
    with keeper.sending([7]):
        check_lease()
        now[0] = 139.0
        check_lease()
        now[0] = 140.0
        with pytest.raises(LeaseLost):
            check_lease()
    assert keeper.held() == 0  # let go after the send
    check_lease()  # outside a guarded block nothing is checked
