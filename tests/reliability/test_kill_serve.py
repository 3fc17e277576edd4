"""``kill -9`` of ``sanad serve`` while replies are in flight, then a restart.

A real ``python -m bot serve`` child with the Telegram webhook channel talks to the fake Bot API
of this test; :class:`Platform` plays Telegram: each chat's updates in order, each delivered
again until it gets a 200. The fake stalls ``sendMessage`` part-way through every chat's
conversation, the child is killed with SIGKILL while those sends hang, and a new child is
started on the same database. The messages each chat receives are compared with an undisturbed
run of the same conversations (in-process): nothing lost, nothing repeated, and the flows
(which change the language half-way) carry on where they were.

Two kinds of in-flight send at the kill:

* ``never_reached_telegram``: the stalled sends had not been performed (the connection died
  first). The restart delivers those replies once: **zero duplicates**.
* ``reached_telegram``: Telegram performed the send but the answer never came back. Telegram has
  no idempotency key, so after the lease the reply is sent again: duplicates are bounded by, and
  only ever copies of, the sends in flight at the kill (SECURITY.md, "the crash window").
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.i18n import UiCatalog
from bot.store.db import create_engine
from bot.store.models import OutboxMessage, ProcessedInbound
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
from tests.telegram.conftest import FAST, bot_core, running, telegram_settings
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.updates import Updates

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

CHATS = 10
LEASE_SECONDS = 4
"""Short, so the test does not wait 60 s for the replies of the killed process."""


def conversations() -> dict[int, list[dict[str, Any]]]:
    """Per chat: a greeting, the language menu, a switch to English, a greeting in English."""
    scripts = {}
    for chat in range(9101, 9101 + CHATS):
        updates = Updates(chat_id=chat, _update_ids=itertools.count(chat * 100))
        scripts[chat] = [
            updates.message("مرحبا"),
            updates.callback("menu:language", message_id=1),
            updates.callback("lang:en", message_id=2),
            updates.message("hello"),
        ]
    return scripts


async def undisturbed(scripts: dict[int, list[dict[str, Any]]], database_url: str,
                      nlu: EmbeddedNLU) -> dict[int, Counter[str]]:
    """What each chat receives when nothing goes wrong (same code, in-process)."""
    fake = FakeBotAPI()
    await fake.start()
    try:
        settings = telegram_settings(database_url, fake)
        async with bot_core(settings, nlu) as sanad, running(sanad, fake, policy=FAST) as h:
            for script in scripts.values():
                for update in script:
                    assert await h.post(update) == 200
            sent = {chat: Counter(fake.sent_texts(chat)) for chat in scripts}
    finally:
        await fake.stop()
    assert all(sent.values()), "every chat is answered in the undisturbed run"
    return sent


async def outbox_state(database_url: str) -> tuple[Counter[str], int, int]:
    """(reply rows by status, distinct idempotency keys, processed updates)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(OutboxMessage.status, func.count())
                                       .where(OutboxMessage.kind == "reply")
                                       .group_by(OutboxMessage.status))).all()
            keys = await conn.scalar(select(func.count(OutboxMessage.idempotency_key.distinct())))
            processed = await conn.scalar(select(func.count()).select_from(ProcessedInbound))
    finally:
        await engine.dispose()
    return Counter({status: int(n) for status, n in rows}), int(keys or 0), int(processed or 0)


@pytest.mark.parametrize("in_flight", ["never_reached_telegram", "reached_telegram"])
async def test_kill_9_mid_reply_loses_nothing_and_sessions_continue(
    in_flight: str, tmp_path: Path, embedded_nlu: EmbeddedNLU, nlu_cache: Path,
) -> None:
    scripts = conversations()
    expected = await undisturbed(scripts, f"sqlite+aiosqlite:///{tmp_path / 'baseline.db'}",
                                 embedded_nlu)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'sanad.db'}"
    fake = FakeBotAPI()
    await fake.start()
    port = free_port()
    platform = Platform(f"http://127.0.0.1:{port}", scripts)
    # Chats stall at different points of the flow: odd chats on their 2nd update, even on 3rd.
    stall_from = {chat: 1 + chat % 2 for chat in scripts}
    stalling = True
    released = asyncio.Event()
    stalled: list[tuple[int, str]] = []  # (chat, text) of sends hanging at the kill

    async def pause(method: str, params: dict[str, Any], performed: bool) -> bool:
        chat = params.get("chat_id")
        if not (stalling and method == "sendMessage" and chat in stall_from
                and platform.position.get(chat, 0) >= stall_from[chat]):
            return True
        if in_flight == "never_reached_telegram" and not performed:
            stalled.append((chat, params["text"]))
            await released.wait()
            return False  # the killed process's request dies before Telegram performs it
        if in_flight == "reached_telegram" and performed:
            stalled.append((chat, params["text"]))
            await released.wait()  # performed, but the answer never reaches the dead process
        return True

    fake.pause = pause
    env = sanad_env(database_url, TELEGRAM_BOT_TOKEN=fake.token,
                    TELEGRAM_API_BASE_URL=fake.base_url, TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
                    SANAD_OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS), SANAD_CACHE_DIR=str(nlu_cache),
                    # The stalls key on the platform's progress: each webhook answers after its
                    # sends, so a stall catches the first message of a turn (the outbox re-sends
                    # a whole row: a stall mid-row would repeat its sent part).
                    SANAD_TELEGRAM_REPLY_GRACE="120")
    delivery: asyncio.Task[None] | None = None
    try:
        with process(["serve", "--host", "127.0.0.1", "--port", str(port)], env,
                     tmp_path / "serve-1.log") as first:
            await wait_healthy(port, first)
            delivery = asyncio.create_task(platform.run())
            await eventually(lambda: {c for c, _ in stalled} == set(scripts), 60,
                             "a reply of every chat to hang in sendMessage")
            first.kill9()
        at_kill = list(stalled)
        stalling = False
        released.set()
        (tmp_path / "serve-1.log").rename(tmp_path / "killed.log")

        with process(["serve", "--host", "127.0.0.1", "--port", str(port)], env,
                     tmp_path / "serve-2.log") as second:
            await wait_healthy(port, second)
            assert delivery is not None
            await asyncio.wait_for(delivery, 120)  # every update acknowledged with a 200
            want = sum(sum(c.values()) for c in expected.values())
            # the replies of the killed turns come from the outbox once their lease ran out
            await eventually(lambda: len(fake.calls_to("sendMessage")) >= want, 60,
                             "every reply to reach the chats")

            async def settled() -> bool:
                statuses, _, _ = await outbox_state(database_url)
                return set(statuses) == {"sent"}

            for _ in range(600):
                if await settled():
                    break
                await asyncio.sleep(0.1)
            statuses, keys, processed = await outbox_state(database_url)
            log = second.output()
    finally:
        if delivery is not None:
            delivery.cancel()
            await asyncio.gather(delivery, return_exceptions=True)
        await fake.stop()

    updates = sum(len(s) for s in scripts.values())
    assert statuses == Counter({"sent": updates}), statuses  # one reply row per update, sent
    assert keys == updates and processed == updates
    got = {chat: Counter(fake.sent_texts(chat)) for chat in scripts}
    lost = {chat: expected[chat] - got[chat] for chat in scripts if expected[chat] - got[chat]}
    repeated = {chat: got[chat] - expected[chat] for chat in scripts
                if got[chat] - expected[chat]}
    print(f"kill -9 ({in_flight}): {len(at_kill)} sends in flight at the kill, "
          f"{sum(sum(c.values()) for c in repeated.values())} duplicates, "
          f"{sum(sum(c.values()) for c in lost.values())} lost, posts {dict(platform.posts)}")
    assert not lost, f"replies lost after kill -9: {lost}"
    assert at_kill, "the kill must happen while replies are in flight"
    if in_flight == "never_reached_telegram":
        assert not repeated, f"duplicates after kill -9: {repeated}"
    else:
        # Only copies of what Telegram performed while the process died, at most once each.
        copies = Counter({(c, t): n for c, counter in repeated.items() for t, n in counter.items()})
        assert copies and all(key in at_kill for key in copies), (copies, at_kill)
        assert copies <= Counter(at_kill)
        assert sum(copies.values()) <= CHATS + 1  # one per chat being answered + the sender
    # Sessions survived: every chat switched to English before the kill or after the restart,
    # and its last greeting was answered in English, as in the undisturbed run.
    english_menu = UiCatalog.load().text("en", "menu.prompt")
    for chat in scripts:
        assert sum(english_menu in text for text in got[chat].elements()) >= 1
    assert "Traceback" not in log
    assert not any(str(chat) in log for chat in scripts)  # no chat id in the logs
