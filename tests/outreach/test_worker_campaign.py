"""``sanad worker`` sends campaigns: as real processes, killed with SIGKILL halfway and restarted,
and two at once on PostgreSQL. Every message is counted at the fake Bot API, per chat."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.outreach import campaigns
from bot.outreach.models import CampaignDelivery
from bot.outreach.sender import SenderOptions
from bot.outreach.stats import report
from bot.store.repository import Store
from tests.conftest import SECRET, reset_postgres
from tests.outreach.conftest import add_users, new_campaign, open_store, start
from tests.outreach.helpers import delivery_statuses
from tests.telegram.fake_bot_api import DEFAULT_TOKEN, FakeBotAPI

ROOT = Path(__file__).resolve().parents[2]
USERS = 5000
RATE = 500
"""Messages/s for the test (production: 25). Two workers that did not share it would send
twice this, beyond the fake's flood limit of 1.5 times it. At 1,000/s the two workers, the fake
and PostgreSQL saturated this 2-core machine: a stalled fake then took a queue of requests in
one burst and counted more than 1,500 in a second (a failure in CI, not of the senders)."""
PREFIX = "70"
DEADLINE = 120.0


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotAPI]:
    api = FakeBotAPI(max_rate=RATE * 1.5)  # flood control, scaled to the test's rate
    await api.start()
    yield api
    await api.stop()


def start_worker(url: str, api: FakeBotAPI, tmp_path: Path,
                 cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url,
           "SANAD_SECRET_KEY": SECRET.decode(), "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
           "TELEGRAM_API_BASE_URL": api.base_url, "SANAD_TELEGRAM_RATE": str(RATE),
           # the bot's shared send budget (bot.sendbudget), scaled like the fake's limit
           "SANAD_TELEGRAM_SEND_LIMIT": str(RATE * 1.2),
           "SANAD_OUTBOX_LEASE_SECONDS": "2", "SANAD_CACHE_DIR": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE)


def sent_per_chat(api: FakeBotAPI) -> Counter[str]:
    return Counter(str(c.params["chat_id"]) for c in api.calls_to("sendMessage"))


async def campaign_ready(store: Store) -> tuple[int, list[int]]:
    users = await add_users(store, USERS, prefix=PREFIX)
    campaign_id = await new_campaign(store, "big")
    await start(store, "big")  # the worker targets and sends it
    return campaign_id, users


async def wait_until(condition: object, processes: list[subprocess.Popen[bytes]],
                     what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await condition():  # type: ignore[operator]
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"a worker died by itself: {process.stderr.read()!r}"
                                     if process.stderr else "a worker died by itself")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def done(store: Store, campaign_id: int) -> bool:
    async with store.session() as db:
        campaign = await db.get(campaigns.Campaign, campaign_id)
        return campaign is not None and campaign.status == "done"


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then a clean exit (the worker records what is in flight)."""
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()


async def test_a_killed_worker_restarts_without_sending_anything_twice(
        sqlite_url: str, sqlite_store: Store, fake_api: FakeBotAPI, tmp_path: Path,
        nlu_cache: Path) -> None:
    campaign_id, users = await campaign_ready(sqlite_store)
    first = start_worker(sqlite_url, fake_api, tmp_path, nlu_cache)
    try:
        async def halfway() -> bool:
            return len(fake_api.calls_to("sendMessage")) >= USERS // 2
        await wait_until(halfway, [first], "half of the campaign")
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    at_kill = len(fake_api.calls_to("sendMessage"))
    assert at_kill < USERS

    second = start_worker(sqlite_url, fake_api, tmp_path, nlu_cache)
    try:
        await wait_until(lambda: done(sqlite_store, campaign_id), [second], "the campaign")
    finally:
        stop(second)

    counts = sent_per_chat(fake_api)
    assert set(counts.values()) == {1}, "somebody got the campaign twice"
    statuses = await delivery_statuses(sqlite_store, campaign_id)
    assert set(statuses) <= {"sent", "in_doubt"}
    assert statuses["in_doubt"] <= SenderOptions.concurrency
    async with sqlite_store.session() as db:
        doubtful = set(await db.scalars(
            select(CampaignDelivery.user_id).where(CampaignDelivery.campaign_id == campaign_id,
                                                   CampaignDelivery.status == "in_doubt")))
        figures = await report(db, await campaigns.get(db, "big"))
    address = {user_id: f"{PREFIX}{n}" for n, user_id in enumerate(users)}
    sure = {address[u] for u in users if u not in doubtful}
    assert sure <= set(counts), "a user who is not in doubt got nothing"
    assert (figures.in_doubt, figures.sent) == (len(doubtful), statuses["sent"])
    missing = USERS - len(counts)
    print(f"killed at {at_kill} sent: {len(doubtful)} in doubt, {missing} of them never "
          "reached Telegram")


async def test_two_workers_on_postgres_share_the_campaign(
        postgres_url: str, fake_api: FakeBotAPI, tmp_path: Path, nlu_cache: Path) -> None:
    await reset_postgres(postgres_url)
    store = await open_store(postgres_url)
    try:
        campaign_id, _ = await campaign_ready(store)
        workers = [start_worker(postgres_url, fake_api, tmp_path, nlu_cache) for _ in range(2)]
        try:
            await wait_until(lambda: done(store, campaign_id), workers, "the campaign")
        finally:
            for worker in workers:
                stop(worker)
        counts = sent_per_chat(fake_api)
        assert set(counts) == {f"{PREFIX}{n}" for n in range(USERS)}
        assert set(counts.values()) == {1}, "somebody got the campaign twice"
        assert await delivery_statuses(store, campaign_id) == {"sent": USERS}
        refused = [c for c in fake_api.calls_to("sendMessage", ok_only=False) if c.status != 200]
        assert not refused, "the two workers together broke the shared rate"
    finally:
        await store.engine.dispose()
