"""Does a burst of logins stall the bot? `/healthz` latency while anonymous logins with random
names hash passwords with the production argon2 parameters (issue #19).

Starts `sanad serve` (SQLite, development, warm model cache), fires `--logins` parallel login
attempts (repeated `--rounds` times) while polling `/healthz` every 20 ms, and prints one JSON
object: healthz p50/p99/max in ms during the burst, logins answered, and their statuses.

    .venv/bin/python bench/login_stall.py [--logins 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_up(base: str, session: aiohttp.ClientSession) -> None:
    for _ in range(600):
        try:
            async with session.get(f"{base}/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("sanad serve did not come up")


async def login(base: str) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(f"{base}/console/login") as page:
            found = CSRF.search(await page.text())
        form = {"name": "nobody-" + secrets.token_hex(4), "password": secrets.token_hex(12)}
        if found:
            form["csrf"] = found.group(1)
        async with session.post(f"{base}/console/login", data=form,
                                allow_redirects=False) as r:
            return r.status


async def measure(base: str, logins: int, rounds: int) -> dict[str, object]:
    latencies: list[float] = []
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        await wait_up(base, session)
        for _ in range(rounds):
            burst = asyncio.gather(*(login(base) for _ in range(logins)))
            task = asyncio.ensure_future(burst)
            while not task.done():
                started = time.perf_counter()
                async with session.get(f"{base}/healthz") as r:
                    await r.read()
                latencies.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.02)
            statuses += list(await task)
    ordered = sorted(latencies)
    return {
        "logins": logins * rounds, "login_statuses": sorted(set(statuses)),
        "healthz_samples": len(ordered),
        "healthz_p50_ms": round(statistics.median(ordered), 1),
        "healthz_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "healthz_max_ms": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}",
               "PORT": str(port), "SANAD_SECRET_KEY": "bench-secret-key-0123456789",
               "SANAD_CACHE_DIR": os.environ.get("SANAD_CACHE_DIR", str(Path(tmp) / "c"))}
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            result = asyncio.run(measure(f"http://127.0.0.1:{port}", args.logins, args.rounds))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
