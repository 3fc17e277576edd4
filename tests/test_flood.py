"""Flood control: one user sending 50 messages a second is slowed and then dropped, while
another user's messages are answered as fast as ever."""

from __future__ import annotations

import asyncio
import time

from bot.app import Sanad
from bot.flood import FloodGuard, Verdict
from bot.messages import Inbound


async def test_bucket_lets_a_person_type_and_stops_a_flood() -> None:
    guard = FloodGuard(rate=1.0, burst=10, max_wait=0.5, notice_every=30)
    verdicts = [await guard.admit("flooder") for _ in range(10)]
    assert verdicts == [Verdict.PROCESS] * 10, "a burst of 10 is fine"
    started = time.monotonic()
    rest = await asyncio.gather(*(guard.admit("flooder") for _ in range(40)))
    assert time.monotonic() - started < 2, "floods are not queued forever"
    assert rest.count(Verdict.DROP_WITH_NOTICE) == 1, "one notice, not forty"
    assert rest.count(Verdict.PROCESS) == 0
    assert await guard.admit("someone-else") is Verdict.PROCESS


async def test_a_flooding_user_does_not_slow_down_others(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    app.engine.flood = FloodGuard(rate=1.0, burst=10)  # the production defaults
    flooder = app.store.user_ref("terminal", "flooder")
    calm = app.store.user_ref("terminal", "calm")

    async def flood() -> list[int]:
        """50 messages arriving at once, as from a script."""
        turns = await asyncio.gather(*(
            app.engine.handle_turn(Inbound(user=flooder, text=f"spam {i}")) for i in range(50)))
        return [len(turn.outbound) for turn in turns]

    async def calm_user() -> float:
        started = time.monotonic()
        for text in ("hello", "menu", "thanks"):
            turn = await app.engine.handle_turn(Inbound(user=calm, text=text))
            assert turn.outbound
        return time.monotonic() - started

    flood_task = asyncio.create_task(flood())
    calm_seconds = await calm_user()
    answered = await flood_task
    assert calm_seconds < 3, f"the calm user waited {calm_seconds:.1f}s"
    processed = sum(1 for n in answered if n > 0)
    assert 10 <= processed <= 16, f"{processed} of 50 answered: the burst, a few slowed, one notice"
