"""Flood control pinned with a fake clock: burst, refill, slow vs drop, notices, the urgent
bypass and the memory bound, each at its boundary. No real time passes in these tests."""

from __future__ import annotations

import pytest

from bot.flood import FloodGuard, Verdict
from tests.fake_time import FakeTime

PROCESS, NOTICE, DROP = Verdict.PROCESS, Verdict.DROP_WITH_NOTICE, Verdict.DROP


def guard_with(clock: FakeTime, **settings: float) -> FloodGuard:
    return FloodGuard(clock=clock, sleep=clock.sleep, **settings)  # type: ignore[arg-type]


async def admit_many(guard: FloodGuard, n: int, key: str = "u") -> list[Verdict]:
    return [await guard.admit(key) for _ in range(n)]


async def test_a_burst_of_burst_messages_passes_without_any_wait() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=10)
    assert await admit_many(guard, 10) == [PROCESS] * 10
    assert clock.slept == []


@pytest.mark.parametrize(("rate", "waits"), [(1.0, [1.0, 2.0, 3.0]), (2.0, [0.5, 1.0, 1.5]),
                                             (4.0, [0.25, 0.5, 0.75])])
async def test_past_the_burst_each_message_waits_for_its_own_token(
    rate: float, waits: list[float]
) -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=rate, burst=2, max_wait=5.0)
    await admit_many(guard, 2)
    assert await admit_many(guard, 3) == [PROCESS] * 3, "slowed, not dropped"
    assert clock.slept == pytest.approx(waits)


async def test_a_wait_of_exactly_max_wait_is_slowed_and_one_more_is_dropped() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=1, max_wait=3.0)
    assert await admit_many(guard, 4) == [PROCESS] * 4
    assert clock.slept == [1.0, 2.0, 3.0]
    assert await guard.admit("u") is NOTICE, "a wait of 4 s is over max_wait: dropped"
    assert clock.slept == [1.0, 2.0, 3.0], "a dropped message never sleeps"


async def test_a_dropped_message_gives_its_reservation_back() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=1, max_wait=2.0)
    await admit_many(guard, 3)  # 1 token, then waits of 1 s and 2 s: the bucket is at -2
    assert await admit_many(guard, 2) == [NOTICE, DROP]
    clock.now += 1.0  # one token back: a wait of 2 s again, as if the drops never happened
    assert await guard.admit("u") is PROCESS
    assert clock.slept[-1] == pytest.approx(2.0)


@pytest.mark.parametrize(("idle", "free"), [(0.0, 0), (1.0, 1), (3.0, 3), (3.5, 3), (10.0, 10),
                                            (1000.0, 10)])
async def test_an_idle_bucket_refills_at_rate_up_to_burst(idle: float, free: int) -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=10, max_wait=100.0)
    await admit_many(guard, 10)
    clock.now += idle
    clock.slept.clear()
    assert await admit_many(guard, free) == [PROCESS] * free
    assert clock.slept == [], f"{free} messages pass at once after {idle} s idle"
    await guard.admit("u")
    assert len(clock.slept) == 1 and clock.slept[0] > 0, "the next one waits"


async def test_a_faster_rate_refills_faster() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=2.0, burst=10, max_wait=100.0)
    await admit_many(guard, 10)
    clock.now += 2.0
    clock.slept.clear()
    await admit_many(guard, 5)
    assert clock.slept == [pytest.approx(0.5)], "2 s at 2 tokens/s: 4 pass, the 5th waits 0.5 s"


async def test_one_notice_per_notice_every_seconds_while_a_flood_goes_on() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=0.001, burst=1, max_wait=0.5, notice_every=30.0)
    assert await admit_many(guard, 4) == [PROCESS, NOTICE, DROP, DROP]
    clock.now += 29.999
    assert await guard.admit("u") is DROP
    clock.now = 1030.0
    assert await admit_many(guard, 2) == [NOTICE, DROP], "exactly 30 s later: a new notice"


@pytest.mark.parametrize("start", [0.0, 5.0, 1e6])
async def test_the_first_drop_gets_a_notice_whatever_the_clock_reads(start: float) -> None:
    clock = FakeTime(now=start)
    guard = guard_with(clock, rate=1.0, burst=1, max_wait=0.0)
    assert await admit_many(guard, 3) == [PROCESS, NOTICE, DROP]


async def test_the_production_defaults() -> None:
    """rate 1/s, burst 10, waits up to 3 s, one notice per 30 s of a sustained flood."""
    clock = FakeTime()
    guard = guard_with(clock)
    assert await admit_many(guard, 14) == [PROCESS] * 13 + [NOTICE]
    assert clock.slept == [1.0, 2.0, 3.0]
    clock.now += 29.0  # refilled: 13 more pass, the next drop gets no notice yet
    assert await admit_many(guard, 14) == [PROCESS] * 13 + [DROP]
    clock.now += 1.0  # 30 s after the first notice: one token back, then a new notice
    assert await admit_many(guard, 2) == [PROCESS, NOTICE]


async def test_an_urgent_message_passes_an_empty_bucket_at_once() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=2, max_wait=1.0)
    assert await admit_many(guard, 4) == [PROCESS, PROCESS, PROCESS, NOTICE]
    clock.slept.clear()
    assert await guard.admit("u", urgent=True) is PROCESS
    assert await guard.admit("u", urgent=True) is PROCESS
    assert clock.slept == [], "a cry for help is never slowed"


async def test_an_urgent_message_leaves_the_bucket_empty_not_in_debt() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=1, max_wait=1.0)
    await admit_many(guard, 2)  # the bucket is at -1
    await guard.admit("u", urgent=True)
    assert await guard.admit("u") is PROCESS, "the next message waits one token, no more"
    assert clock.slept == [1.0, 1.0]


async def test_an_urgent_message_uses_a_token_when_there_is_one() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=2, max_wait=5.0)
    await guard.admit("u", urgent=True)
    await admit_many(guard, 2)
    assert clock.slept == [1.0]


async def test_one_users_flood_leaves_another_users_bucket_full() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=3, max_wait=0.0)
    assert await admit_many(guard, 5, key="flooder") == [PROCESS] * 3 + [NOTICE, DROP]
    assert await admit_many(guard, 3, key="calm") == [PROCESS] * 3
    assert await guard.admit("calm") is NOTICE, "the calm user's own notice, not the flooder's"
    assert clock.slept == []


async def test_memory_is_bounded_by_forgetting_buckets_that_refilled() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=2, max_users=2)
    await guard.admit("a")
    await admit_many(guard, 2, key="b")
    clock.now += 1.0  # a is full again, b is not
    await guard.admit("c")
    assert set(guard._buckets) == {"b", "c"}, "only the full bucket is forgotten"
    await guard.admit("d")  # nothing is full: the map grows rather than lose a debt
    assert set(guard._buckets) == {"b", "c", "d"}


async def test_buckets_are_kept_while_there_is_room() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=1.0, burst=1, max_users=3)
    await guard.admit("a")
    clock.now += 10.0
    await guard.admit("b")
    await guard.admit("c")
    assert set(guard._buckets) == {"a", "b", "c"}
    await guard.admit("d")
    assert set(guard._buckets) == {"b", "c", "d"}, "full at 3 users: the idle one goes"


def test_the_real_clock_is_the_default() -> None:
    import asyncio
    import time

    guard = FloodGuard()
    assert guard._clock is time.monotonic and guard._sleep is asyncio.sleep


async def test_a_faster_rate_makes_a_bucket_idle_sooner() -> None:
    clock = FakeTime()
    guard = guard_with(clock, rate=2.0, burst=2, max_users=1)
    await guard.admit("a")  # one token short of full: half a second at 2 tokens/s
    clock.now += 0.5
    await guard.admit("b")
    assert set(guard._buckets) == {"b"}


async def test_by_default_a_hundred_thousand_users_are_tracked_before_any_is_forgotten() -> None:
    clock = FakeTime()
    guard = guard_with(clock)
    for user in range(100_000):
        await guard.admit(str(user))
    clock.now += 1.0  # every bucket is full again
    await guard.admit("one more")
    assert set(guard._buckets) == {"one more"}
