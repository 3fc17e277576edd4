"""A campaign sends through the bot's shared budget: at campaign priority, yielding to replies."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from bot.outreach.sender import CampaignSender
from bot.sendbudget import MemoryBackend, PrioritisedBudget, Priority
from bot.sendbudget.gcra import Limits
from bot.store.repository import Store
from tests.outreach.conftest import FakeDeliverer, add_users, new_campaign, open_store, start
from tests.outreach.helpers import delivery_statuses, fast, run_senders
from tests.sendbudget.simulation import max_in_window


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    opened = await open_store(sqlite_url)
    yield opened
    await opened.engine.dispose()


async def test_a_campaign_goes_out_once_each_through_the_budget(sqlite_store: Store) -> None:
    ids = await add_users(sqlite_store, 40)
    campaign_id = await new_campaign(sqlite_store)
    await start(sqlite_store)
    fake = FakeDeliverer()
    limits = Limits(rate=100.0)
    budget = PrioritisedBudget(MemoryBackend(limits), name="telegram", interval=limits.interval)
    sender = CampaignSender(sqlite_store, "telegram", fake, fast(100), budget=budget)

    await run_senders(sqlite_store, campaign_id, sender)
    await budget.aclose()

    assert sorted(Counter(fake.addresses).values()) == [1] * len(ids)
    assert await delivery_statuses(sqlite_store, campaign_id) == {"sent": 40}
    # The budget's rate; a group checked late keeps its spacing (no catching up).
    times = sorted(t for _, _, t in fake.sent)
    assert max_in_window(times, 0.2) <= 100 * 0.2 + 2
    assert times[-1] - times[0] >= (len(times) - 3) / 100


async def test_a_campaign_waits_while_replies_need_the_whole_budget(sqlite_store: Store) -> None:
    await add_users(sqlite_store, 20)
    campaign_id = await new_campaign(sqlite_store)
    await start(sqlite_store)
    fake = FakeDeliverer()
    limits = Limits(rate=50.0)
    budget = PrioritisedBudget(MemoryBackend(limits), name="telegram", interval=limits.interval)
    replies_done: list[float] = []
    loop = asyncio.get_running_loop()

    async def reply() -> None:
        await budget.acquire(Priority.FIRST_REPLY)
        replies_done.append(loop.time())

    # Fifty people waiting at once: one second of the whole budget.
    rush = asyncio.gather(*(reply() for _ in range(50)))
    await asyncio.sleep(0.05)
    sender = CampaignSender(sqlite_store, "telegram", fake, fast(1000), budget=budget)
    await run_senders(sqlite_store, campaign_id, sender)
    await rush
    await budget.aclose()

    assert len(fake.sent) == 20
    # Campaign slots come only after the replies' (at most one horizon of them was booked).
    assert min(t for _, _, t in fake.sent) >= max(replies_done) - limits.horizon
