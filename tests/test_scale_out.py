"""Scale-out: two real ``sanad serve`` processes on one PostgreSQL database.

Telegram may deliver a user's updates to any process behind the load balancer, and may deliver
one update twice (a retry after a slow answer) to two processes at once. Against the fake Bot
API this checks, for users whose updates alternate between the processes (several users at a
time, some updates delivered to both processes concurrently):

* every update is answered exactly once: the replies of a duplicate delivery are sent once
  (the ``processed_inbound`` claim is an ``INSERT ... ON CONFLICT DO NOTHING``: the second
  process waits for the first one's transaction and then finds the id taken);
* a user's replies come in order and the session survives the hops between processes: a
  screening answered step by step across both processes gets exactly the replies, and the same
  stored result, as the same answers sent to one process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import postgres_reachable
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.updates import Updates

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123:abc"
SECRET = "scale-out-secret_0123456789"
WEBHOOK = "/telegram/webhook"

if not postgres_reachable():
    pytest.skip("PostgreSQL is not reachable: scale-out needs a shared database "
                "(set SANAD_TEST_PG_URL)", allow_module_level=True)

ANSWERS = {"low": ["sc:ans:no"] * 13, "high": ["sc:ans:yes"] * 13}


def screening(pattern: str) -> list[tuple[str, str]]:
    """A whole screening: greeting, consent, age, 13 answers, back to the menu."""
    return [("text", "hello"), ("tap", "menu:check"), ("tap", "sc:consent:yes"),
            ("tap", "sc:age:25_plus"), *(("tap", a) for a in ANSWERS[pattern]),
            ("tap", "menu")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(*args: str, env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]


async def _wait_healthy(session: aiohttp.ClientSession, port: int,
                        proc: asyncio.subprocess.Process) -> None:
    for _ in range(1200):
        if proc.returncode is not None:
            err = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"sanad serve exited: {err.decode(errors='replace')[-2000:]}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise AssertionError("sanad serve did not become healthy")


@contextlib.asynccontextmanager
async def two_servers(database_url: str, fake_url: str, cache_dir: Path
                      ) -> AsyncIterator[tuple[aiohttp.ClientSession, list[int]]]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "WHATSAPP_", "SANAD_", "DATABASE_URL"))}
    env.update({
        "DATABASE_URL": database_url, "SANAD_SECRET_KEY": "scale-out-secret-key-0123456789",
        # Each update's replies are read right after its 200: wait for the sends (which may
        # queue in the shared send budget) before answering, as before the early answer.
        "SANAD_TELEGRAM_REPLY_GRACE": "120",
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET, "SANAD_CACHE_DIR": str(cache_dir),
        "SANAD_FLOOD_RATE": "1000", "SANAD_FLOOD_BURST": "1000", "PYTHONPATH": str(ROOT),
    })
    await _run("db", "upgrade", env=env)  # once, before the processes start
    ports = [free_port(), free_port()]
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
        env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        for port in ports]
    try:
        async with aiohttp.ClientSession() as session:
            for port, proc in zip(ports, procs, strict=True):
                await _wait_healthy(session, port, proc)
            yield session, ports
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_two_processes_answer_each_update_once_in_order(
    postgres_url: str, nlu_cache: Path, embedded_nlu: Any,  # trains the model into the cache
) -> None:
    from tests.conftest import reset_postgres

    await reset_postgres(postgres_url)
    fake = FakeBotAPI(token=TOKEN)
    fake_url = await fake.start()
    update_ids = itertools.count(900_001)
    try:
        async with two_servers(postgres_url, fake_url, nlu_cache) as (session, ports):

            async def post(port: int, update: dict[str, Any]) -> int:
                async with session.post(f"http://127.0.0.1:{port}{WEBHOOK}", json=update,
                                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                                        timeout=aiohttp.ClientTimeout(total=60)) as resp:
                    return resp.status

            async def play(chat_id: int, pattern: str, route: str) -> list[list[str]]:
                """Send one user's screening; the replies of each update, in order."""
                builder = Updates(chat_id=chat_id, language_code="en", _update_ids=update_ids)
                replies: list[list[str]] = []
                for step, (kind, value) in enumerate(screening(pattern)):
                    update = builder.message(value) if kind == "text" else builder.callback(value)
                    before = len(fake.sent_texts(chat_id))
                    if route == "one":
                        statuses = [await post(ports[0], update)]
                    elif step % 3 == 2:  # delivered to both processes at once
                        statuses = list(await asyncio.gather(post(ports[0], update),
                                                             post(ports[1], update)))
                    else:
                        statuses = [await post(ports[step % 2], update)]
                    assert statuses == [200] * len(statuses), (chat_id, step, statuses)
                    replies.append(fake.sent_texts(chat_id)[before:])
                return replies

            # all at once: two reference users on one process, eight alternating users
            users = {8000 + i: ("low", "high")[i % 2] for i in range(8)}
            *played, ref_low, ref_high = await asyncio.gather(
                *(play(chat, p, "both") for chat, p in users.items()),
                play(7000, "low", "one"), play(7001, "high", "one"))
            reference = {"low": ref_low, "high": ref_high}

            for (chat, pattern), replies in zip(users.items(), played, strict=True):
                # in order, once each, session intact: exactly what one process answered
                assert replies == reference[pattern], (chat, pattern)
                assert all(replies), f"an update of chat {chat} got no reply"
            assert reference["low"][-2] != reference["high"][-2]  # the results differ

            sent = fake.calls_to("sendMessage")
            per_chat = {chat: sum(1 for c in sent if c.params["chat_id"] == chat)
                        for chat in users}
            assert per_chat == {chat: sum(map(len, reference[p])) for chat, p in users.items()}

            # the stored results agree too
            from sqlalchemy import func, select
            from sqlalchemy.ext.asyncio import create_async_engine

            from bot.store.models import ProcessedInbound, ScreeningResult

            engine = create_async_engine(postgres_url)
            try:
                async with engine.connect() as conn:
                    levels = dict((await conn.execute(
                        select(ScreeningResult.risk_level, func.count())
                        .group_by(ScreeningResult.risk_level))).all())
                    claimed = await conn.scalar(select(func.count()).select_from(
                        ProcessedInbound))
            finally:
                await engine.dispose()
            assert sum(levels.values()) == len(users) + len(reference)
            assert len(levels) == 2, levels
            total_updates = (len(users) + len(reference)) * len(screening("low"))
            assert claimed == total_updates
    finally:
        await fake.stop()
