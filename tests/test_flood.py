"""Flood control: one user sending 50 messages at once is slowed and then dropped, while
another user's messages are all answered. Time is faked: what a flood costs a calm user in
wall-clock time is measured by bench/flood.py, not asserted here."""

from __future__ import annotations

import asyncio

from bot.app import Sanad
from bot.flood import FloodGuard, Verdict
from bot.messages import Inbound
from tests.fake_time import FakeTime


async def test_bucket_lets_a_person_type_and_stops_a_flood() -> None:
    clock = FakeTime()
    guard = FloodGuard(rate=1.0, burst=10, max_wait=0.5, notice_every=30, clock=clock,
                       sleep=clock.sleep)
    verdicts = [await guard.admit("flooder") for _ in range(10)]
    assert verdicts == [Verdict.PROCESS] * 10, "a burst of 10 is fine"
    rest = await asyncio.gather(*(guard.admit("flooder") for _ in range(40)))
    assert clock.slept == [], "floods are not queued: a wait over max_wait is a drop"
    assert rest.count(Verdict.DROP_WITH_NOTICE) == 1, "one notice, not forty"
    assert rest.count(Verdict.PROCESS) == 0
    assert await guard.admit("someone-else") is Verdict.PROCESS


async def test_a_flooding_user_does_not_take_another_users_turns(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    clock = FakeTime()  # the production defaults, all 50 messages in the same instant
    app.engine.flood = FloodGuard(rate=1.0, burst=10, clock=clock, sleep=clock.sleep)
    flooder = app.store.user_ref("terminal", "flooder")
    calm = app.store.user_ref("terminal", "calm")

    async def flood() -> list[int]:
        """50 messages arriving at once, as from a script."""
        turns = await asyncio.gather(*(
            app.engine.handle_turn(Inbound(user=flooder, text=f"spam {i}")) for i in range(50)))
        return [len(turn.outbound) for turn in turns]

    async def calm_user() -> None:
        for text in ("hello", "menu", "thanks"):
            turn = await app.engine.handle_turn(Inbound(user=calm, text=text))
            assert turn.outbound, f"the calm user's {text!r} was answered"

    flood_task = asyncio.create_task(flood())
    await calm_user()
    answered = await flood_task
    processed = sum(1 for n in answered if n > 0)
    assert processed == 14, "the burst of 10, 3 slowed (1, 2 and 3 s), one notice"
    assert clock.slept == [1.0, 2.0, 3.0]
