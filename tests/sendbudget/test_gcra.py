"""The budget's arithmetic across processes, in logical time: the limit, the priorities, pauses."""

from __future__ import annotations

import statistics

from bot.sendbudget import gcra
from bot.sendbudget.gcra import Grant, Limits, State
from bot.sendbudget.priority import Priority
from tests.sendbudget.simulation import Simulation, max_in_window, overtaken, saturation

TELEGRAM = Limits(rate=27.0)
"""What ``SANAD_TELEGRAM_SEND_LIMIT=30`` with the default headroom gives (no burst, slots up
to 0.25 s ahead)."""
PROCESSES = ("serve-1", "serve-2", "worker")


def memory_take(limits: Limits = TELEGRAM) -> tuple[State, object]:
    state = State()

    async def take(owner: str, priority: int, want: int, next_priority: int | None,
                   now: float) -> Grant:
        return gcra.take(state, limits, now, owner=owner, priority=priority, want=want,
                         next_priority=next_priority)

    return state, take


async def test_two_serve_processes_and_a_worker_never_exceed_the_limit_in_20_s() -> None:
    _, take = memory_take()
    sim = Simulation.of(take, TELEGRAM.interval, *PROCESSES)  # type: ignore[arg-type]
    saturation(sim)

    await sim.run(20.0, endless={"worker": Priority.CAMPAIGN})

    sends = sim.granted_times()
    assert max_in_window(sends, 1.0) <= 28  # Telegram allows 30
    assert max_in_window(sends, 1.0) >= 27  # and the budget is used, not wasted
    within = [t for t in sends if t < 20.0]  # later slots were booked ahead (the horizon)
    assert len(within) <= 27 * 20 + 1
    assert len(within) >= 27 * 20 * 0.97


async def test_emergencies_jump_the_queue_and_first_replies_come_before_later_ones() -> None:
    _, take = memory_take()
    sim = Simulation.of(take, TELEGRAM.interval, *PROCESSES)  # type: ignore[arg-type]
    saturation(sim)

    await sim.run(20.0, endless={"worker": Priority.CAMPAIGN})

    emergency = sim.waits(Priority.EMERGENCY)
    assert len(emergency) == 20
    # At most the slots others already hold (one horizon) and an interval.
    assert max(emergency) <= TELEGRAM.horizon + 2 / TELEGRAM.rate + 1e-6
    first = sim.granted_times(Priority.FIRST_REPLY)
    later = sim.granted_times(Priority.LATER_REPLY)
    assert len(first) == len(later) == 150
    # No second message while somebody's first reply waits, in either process; nor a
    # caseworker's reply or a campaign message while a conversation waits.
    assert overtaken(sim, Priority.FIRST_REPLY, Priority.LATER_REPLY) == []
    assert overtaken(sim, Priority.EMERGENCY, Priority.FIRST_REPLY) == []
    assert overtaken(sim, Priority.LATER_REPLY, Priority.CASEWORKER) == []
    assert overtaken(sim, Priority.FIRST_REPLY, Priority.CAMPAIGN) == []
    assert sorted(first)[len(first) * 9 // 10] < sorted(later)[len(later) // 10]
    campaign_during_rush = [t for t in sim.granted_times(Priority.CAMPAIGN)
                            if min(first) + 0.3 < t < max(later)]
    assert campaign_during_rush == []  # campaigns back off while conversations wait


async def test_campaigns_take_what_conversations_leave() -> None:
    _, take = memory_take()
    sim = Simulation.of(take, TELEGRAM.interval, *PROCESSES)  # type: ignore[arg-type]
    saturation(sim)

    await sim.run(20.0, endless={"worker": Priority.CAMPAIGN})

    conversation = len([s for s in sim.sends
                        if s.granted is not None and s.priority != Priority.CAMPAIGN])
    campaign = len(sim.granted_times(Priority.CAMPAIGN))
    leftover = TELEGRAM.rate * 20.0 + TELEGRAM.burst - conversation
    assert campaign / leftover >= 0.97


async def test_a_reserve_keeps_a_slot_within_reach_for_the_next_conversation() -> None:
    state = State()
    interval = TELEGRAM.interval
    campaign = gcra.take(state, TELEGRAM, 100.0, owner="worker", priority=Priority.CAMPAIGN,
                         want=50, next_priority=None)
    # Slots one interval apart, up to the horizon less the one-slot reserve.
    assert campaign.granted == 6
    assert campaign.delays(interval) == [k * interval for k in range(6)]
    reply = gcra.take(state, TELEGRAM, 100.0, owner="serve", priority=Priority.FIRST_REPLY,
                      want=50, next_priority=None)
    assert reply.granted == 1  # the slot the campaign had to leave
    assert abs(reply.start - 6 * interval) < 1e-9
    assert reply.start <= TELEGRAM.horizon


async def test_demand_of_a_more_urgent_process_blocks_a_less_urgent_one_until_it_fades() -> None:
    state = State()
    drained = gcra.take(state, TELEGRAM, 100.0, owner="serve", priority=Priority.EMERGENCY,
                        want=50, next_priority=None)
    assert drained.granted == 7  # up to the horizon; the serve process is left waiting
    later = 100.0 + 3 / TELEGRAM.rate
    blocked = gcra.take(state, TELEGRAM, later, owner="other", priority=Priority.FIRST_REPLY,
                        want=1, next_priority=None)
    assert blocked.granted == 0  # tokens are there, but an emergency waits elsewhere
    # The serve process died: its demand fades after the TTL and the others go on.
    after = later + TELEGRAM.demand_ttl + 0.01
    assert gcra.take(state, TELEGRAM, after, owner="other", priority=Priority.FIRST_REPLY,
                     want=1, next_priority=None).granted == 1


async def test_a_flood_wait_pauses_everyone_and_resumes_without_a_burst_in_priority_order(
) -> None:
    state = State()

    async def take_paused(owner: str, priority: int, want: int, next_priority: int | None,
                          now: float) -> Grant:
        return gcra.take(state, TELEGRAM, now, owner=owner, priority=priority, want=want,
                         next_priority=next_priority)

    gcra.pause(state, TELEGRAM, 0.0, 5.0)  # a 429 with retry_after 5
    sim = Simulation.of(take_paused, TELEGRAM.interval, *PROCESSES)
    for n in range(30):
        sim.arrive("serve-1", Priority.LATER_REPLY, 0.5 + n * 0.01)
    for n in range(5):
        sim.arrive("serve-2", Priority.FIRST_REPLY, 1.0 + n * 0.01)
    sim.arrive("serve-2", Priority.EMERGENCY, 4.9)

    await sim.run(10.0, endless={"worker": Priority.CAMPAIGN})

    sends = sim.granted_times()
    assert min(sends) >= 5.0  # nobody during the pause
    assert max_in_window(sends, 0.99 / TELEGRAM.rate) == 1  # no burst after it
    order = [s.priority for s in sorted(sim.sends, key=lambda s: s.granted or 99)
             if s.granted is not None][:36]
    assert order == sorted(order)  # emergency, first replies, later replies, then campaign
    assert statistics.mean(sim.waits(Priority.EMERGENCY)) <= 0.1 + 1e-6
