"""What a flood costs a calm user: wall-clock seconds of three ordinary turns while another
user sends 50 messages at once, with flood control at the production defaults (1/s, burst 10,
waits up to 3 s). Prints JSON. This measurement used to be a wall-clock assert in
tests/test_flood.py (the calm user under 3 s); the test now checks the verdicts with a fake
clock, and the time is measured here.

    .venv/bin/python bench/flood.py [--flood 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))


async def one_run(flood_size: int) -> dict[str, float | int]:
    from bot.app import build
    from bot.config import Settings
    from bot.flood import FloodGuard
    from bot.messages import Inbound

    workdir = tempfile.mkdtemp(prefix="sanad-flood-")
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/flood.db",
           "SANAD_SECRET_KEY": "bench-secret-key-0123456789abcdef",
           "SANAD_KEY_FILE": f"{workdir}/key"}
    if os.environ.get("SANAD_CACHE_DIR"):
        env["SANAD_CACHE_DIR"] = os.environ["SANAD_CACHE_DIR"]
    sanad = await build(Settings.from_env(env))
    sanad.engine.flood = FloodGuard()  # the production defaults
    flooder = sanad.store.user_ref("terminal", "flooder")
    calm = sanad.store.user_ref("terminal", "calm")
    try:
        await sanad.engine.handle_turn(Inbound(user=calm, text="hello"))  # warm-up

        async def flood() -> int:
            turns = await asyncio.gather(*(
                sanad.engine.handle_turn(Inbound(user=flooder, text=f"spam {i}"))
                for i in range(flood_size)))
            return sum(1 for turn in turns if turn.outbound)

        async def calm_user() -> float:
            started = time.perf_counter()
            for text in ("hello", "menu", "thanks"):
                await sanad.engine.handle_turn(Inbound(user=calm, text=text))
            return time.perf_counter() - started

        task = asyncio.create_task(flood())
        calm_seconds = await calm_user()
        answered = await task
    finally:
        await sanad.aclose()
    return {"calm_seconds": round(calm_seconds, 3), "flood_answered": answered}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [asyncio.run(one_run(args.flood)) for _ in range(args.repeat)]
    print(json.dumps({
        "benchmark": "flood", "flood": args.flood,
        "calm_seconds_median": statistics.median(r["calm_seconds"] for r in runs),
        "calm_seconds_max": max(r["calm_seconds"] for r in runs), "runs": runs,
    }, indent=2))


if __name__ == "__main__":
    main()
