"""SIGTERM to ``sanad serve`` under load: it stops accepting, finishes the turns and sends in
flight, exits 0; a new process carries on. Nothing lost, nothing sent twice.

Ten chats talk to a real ``python -m bot serve`` (Telegram webhook channel, the fake Bot API of
this test). Every chat's reply hangs in ``sendMessage`` part-way through its conversation; the
process gets SIGTERM while those ten turns are in flight. It must refuse new connections at once,
then (once the sends are let through) answer the ten webhooks, exit with status 0, and the next
process must deliver the rest of every conversation: the messages each chat receives equal an
undisturbed run's exactly (compare ``tests/reliability/test_kill_serve.py``, where ``kill -9``
may repeat a send)."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from nlu import EmbeddedNLU
from tests.reliability.support import (
    WEBHOOK_SECRET,
    Platform,
    eventually,
    free_port,
    process,
    sanad_env,
    wait_healthy,
)
from tests.reliability.test_kill_serve import conversations, outbox_state, undisturbed
from tests.telegram.fake_bot_api import FakeBotAPI

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


async def test_sigterm_under_load_drains_and_exits_0(tmp_path: Path, embedded_nlu: EmbeddedNLU,
                                                     nlu_cache: Path) -> None:
    scripts = conversations()
    expected = await undisturbed(scripts, f"sqlite+aiosqlite:///{tmp_path / 'baseline.db'}",
                                 embedded_nlu)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'sanad.db'}"
    fake = FakeBotAPI()
    await fake.start()
    port = free_port()
    platform = Platform(f"http://127.0.0.1:{port}", scripts)
    stall_from = {chat: 1 + chat % 2 for chat in scripts}
    stalling = True
    released = asyncio.Event()
    stalled: list[tuple[int, str]] = []

    async def pause(method: str, params: dict[str, Any], performed: bool) -> bool:
        chat = params.get("chat_id")
        if (stalling and not performed and method == "sendMessage" and chat in stall_from
                and platform.position.get(chat, 0) >= stall_from[chat]):
            stalled.append((chat, params["text"]))
            await released.wait()  # the send is in flight until the test lets it through
        return True

    fake.pause = pause
    env = sanad_env(database_url, TELEGRAM_BOT_TOKEN=fake.token,
                    TELEGRAM_API_BASE_URL=fake.base_url, TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
                    SANAD_CACHE_DIR=str(nlu_cache), SANAD_LOG_FORMAT="json")
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--shutdown-timeout", "30"]
    delivery: asyncio.Task[None] | None = None
    try:
        with process(args, env, tmp_path / "serve-1.log") as first:
            await wait_healthy(port, first)
            delivery = asyncio.create_task(platform.run())
            await eventually(lambda: {c for c, _ in stalled} == set(scripts), 60,
                             "a reply of every chat to hang in sendMessage")
            assert first.proc is not None
            first.proc.send_signal(signal.SIGTERM)
            await eventually(lambda: refuses_connections(port), 10,
                             "the listener to close after SIGTERM")
            assert first.proc.poll() is None, "it must wait for the turns in flight"
            at_term = list(stalled)
            sent_before = len(fake.calls_to("sendMessage"))
            stalling = False
            released.set()
            status = await asyncio.to_thread(first.proc.wait, 60)
            first_log = first.output()
        assert status == 0, first_log[-3000:]
        # the ten turns in flight finished their sends before the process exited
        in_flight_sent = Counter((call.params["chat_id"], call.params["text"])
                                 for call in fake.calls_to("sendMessage")[sent_before:])
        assert Counter(at_term) <= in_flight_sent, (at_term, in_flight_sent)

        with process(args, env, tmp_path / "serve-2.log") as second:
            await wait_healthy(port, second)
            assert delivery is not None
            await asyncio.wait_for(delivery, 120)
            want = sum(sum(c.values()) for c in expected.values())
            await eventually(lambda: len(fake.calls_to("sendMessage")) >= want, 60,
                             "every reply to reach the chats")
            statuses, keys, processed = await outbox_state(database_url)
    finally:
        if delivery is not None:
            delivery.cancel()
            await asyncio.gather(delivery, return_exceptions=True)
        await fake.stop()

    updates = sum(len(s) for s in scripts.values())
    assert statuses == Counter({"sent": updates}), statuses
    assert keys == updates and processed == updates
    got = {chat: Counter(fake.sent_texts(chat)) for chat in scripts}
    assert got == expected, "after SIGTERM nothing may be lost or sent twice"
    assert "Traceback" not in first_log
    messages = [line for line in first_log.splitlines() if line.startswith("{")]
    assert any("sanad serve stopping" in line for line in messages)
    assert any("sanad serve stopped" in line for line in messages)
