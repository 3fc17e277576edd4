"""CPU cost per Bot API call: PTB's default httpx layer vs. our aiohttp one.

Starts the fake Bot API in a separate process (so its CPU is not counted), then makes N
``sendMessage`` calls with a real :class:`telegram.Bot` per request layer, sequentially and with
some concurrency, and prints client CPU milliseconds and wall milliseconds per call.

    .venv/bin/python -m bench.telegram_request [--calls 1000] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.request import BaseRequest, HTTPXRequest

from bot.channels.telegram_request import AiohttpRequest

TOKEN = "123:abc"
TEXT = "مرحبا، أنا سند 🤝 " * 12
MARKUP = InlineKeyboardMarkup([[InlineKeyboardButton("📚 تعلّم", callback_data="menu:learn")],
                               [InlineKeyboardButton("🔍 افحص وضعي", callback_data="menu:check")]])


class NullRequest(BaseRequest):
    """No network: what PTB itself costs per call (building parameters, parsing the Message)."""

    ANSWER = (b'{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":1,"type":"private"},'
              b'"text":"x","from":{"id":123,"is_bot":true,"first_name":"Sanad"}}}')
    GET_ME = (b'{"ok":true,"result":{"id":123,"is_bot":true,"first_name":"Sanad",'
              b'"username":"sanad_test_bot"}}')

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(self, url: str, method: str, *args: object, **kwargs: object
                         ) -> tuple[int, bytes]:
        return 200, self.GET_ME if url.endswith("getMe") else self.ANSWER


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("fake Bot API did not start")


async def measure(make: Callable[[], BaseRequest], base_url: str, calls: int,
                  concurrency: int) -> tuple[float, float]:
    """Client CPU ms and wall ms per call."""
    bot = Bot(TOKEN, base_url=base_url, request=make(), get_updates_request=make())
    await bot.initialize()
    for _ in range(20):  # warm up connections and code paths
        await bot.send_message(1, TEXT, reply_markup=MARKUP)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(chat: int) -> None:
        async with semaphore:
            await bot.send_message(chat, TEXT, reply_markup=MARKUP)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await bot.shutdown()
    return cpu * 1000 / calls, wall * 1000 / calls


async def run(calls: int, concurrency: int) -> None:
    port = free_port()
    fake = subprocess.Popen([sys.executable, "-m", "tests.telegram.fake_bot_api",
                             "--port", str(port), "--token", TOKEN, "--quiet"],
                            stdout=subprocess.DEVNULL)
    try:
        await wait_listening(port)
        base_url = f"http://127.0.0.1:{port}/bot"
        layers: dict[str, Callable[[], BaseRequest]] = {
            "httpx (PTB default)": lambda: HTTPXRequest(connection_pool_size=64),
            "aiohttp (ours)": lambda: AiohttpRequest(connection_pool_size=64),
            "no network (PTB only)": NullRequest,
        }
        print(f"{calls} sendMessage calls per row; CPU and wall milliseconds per call")
        for mode in (1, concurrency):
            for name, make in layers.items():
                cpu, wall = await measure(make, base_url, calls, mode)
                print(f"{name:<22} concurrency={mode:<3} cpu={cpu:6.3f} ms  wall={wall:6.3f} ms")
    finally:
        fake.terminate()
        fake.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.concurrency))


if __name__ == "__main__":
    main()
