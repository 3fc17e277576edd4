"""Real ``sanad`` processes for the kill -9 tests, and a model of Telegram's webhook delivery."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from tests.conftest import SECRET

REPO = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "reliability_secret-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sanad_env(database_url: str, **extra: str) -> dict[str, str]:
    """A clean environment for a ``sanad`` subprocess (nothing inherited from the operator)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SANAD_", "TELEGRAM_", "WHATSAPP_", "DATABASE_URL", "NLU_"))}
    env.update({
        "DATABASE_URL": database_url, "SANAD_SECRET_KEY": SECRET.decode(),
        "SANAD_ENV": "development", "SANAD_SHOW_DRAFTS": "1",
        "SANAD_FLOOD_RATE": "10000", "SANAD_FLOOD_BURST": "10000", "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


@dataclass
class Process:
    """One ``python -m bot ...`` child; its stderr goes to a file the test may read."""

    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", *self.args], cwd=REPO,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def process(args: list[str], env: Mapping[str, str], log: Path) -> Iterator[Process]:
    child = Process(args, dict(env), log)
    child.start()
    try:
        yield child
    finally:
        child.stop()


async def wait_healthy(port: int, child: Process, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert child.proc is not None
            if child.proc.poll() is not None:
                raise AssertionError(f"sanad exited early:\n{child.output()[-3000:]}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"sanad did not become ready:\n{child.output()[-3000:]}")


@dataclass
class Platform:
    """Telegram's side of the webhook: each chat's updates in order, the next one only after
    the previous was acknowledged with a 200; anything else (an error status, a dropped
    connection, a dead server) is delivered again after a short pause."""

    url: str
    scripts: dict[int, list[dict[str, Any]]]
    position: dict[int, int] = field(default_factory=dict)
    posts: Counter[str] = field(default_factory=Counter)
    retry_pause: float = 0.1

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            await asyncio.gather(*(self._chat(http, chat) for chat in self.scripts))

    def done(self) -> bool:
        return all(self.position.get(c, 0) == len(s) for c, s in self.scripts.items())

    async def _chat(self, http: aiohttp.ClientSession, chat: int) -> None:
        headers = {"Content-Type": "application/json", SECRET_HEADER: WEBHOOK_SECRET}
        for index, update in enumerate(self.scripts[chat]):
            self.position[chat] = index
            body = orjson.dumps(update)
            while True:
                try:
                    async with http.post(self.url + WEBHOOK_PATH, data=body,
                                         headers=headers) as response:
                        await response.read()
                        self.posts[str(response.status)] += 1
                        if response.status == 200:
                            break
                except (TimeoutError, aiohttp.ClientError):
                    self.posts["connection error"] += 1
                await asyncio.sleep(self.retry_pause)
        self.position[chat] = len(self.scripts[chat])


async def eventually(condition: Any, timeout: float, what: str) -> None:
    """Wait for a condition (a deadline for progress, never an assertion on speed)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
