"""Campaigns through the real WhatsApp deliverer (the channel's Graph client) and the fake Graph
API: inside the 24-hour window the message goes out; outside it the row is held (no approved
campaign template is configured) until the user writes; a rate-limit code pauses the channel;
131026 marks the user blocked."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.channels.campaigns import campaign_channels
from bot.channels.whatsapp_store import release_held
from bot.outreach import cli
from bot.outreach.sender import CampaignSender, SenderOptions
from bot.store.models import User
from bot.store.repository import Store, utcnow
from tests.outreach.conftest import add_users, new_campaign
from tests.outreach.helpers import delivery_statuses
from tests.whatsapp.conftest import whatsapp_settings
from tests.whatsapp.fake_graph_api import FakeGraphAPI


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    api = FakeGraphAPI()
    await api.start()
    yield api
    await api.stop()


async def test_window_hold_rate_limit_and_blocked(sqlite_store: Store, sqlite_url: str,
                                                  graph: FakeGraphAPI) -> None:
    store = sqlite_store
    recent = utcnow() - timedelta(hours=1)
    await add_users(store, 6, channel="whatsapp", prefix="2010000", last_inbound_at=recent)
    await add_users(store, 2, channel="whatsapp", prefix="2020000",
                    last_inbound_at=utcnow() - timedelta(days=3))
    graph.fail_next(1, code=130429)  # throughput: the channel pauses, nothing is lost
    graph.fail_next(1, code=131026)  # not on WhatsApp / blocked: blocked, never retried
    await new_campaign(store, "wa")
    settings = whatsapp_settings(sqlite_url, graph)

    async with campaign_channels(settings, store) as channels:
        assert set(channels.deliverers) == {"whatsapp"}
        assert await cli.send(store, "wa", channels.deliverers, rate=200,
                              on_sent=channels.on_sent, options={"idle": 0.05}) == 0
        async with store.session() as db:
            campaign_id = (await cli.campaigns.get(db, "wa")).id
        statuses = await delivery_statuses(store, campaign_id)
        assert statuses == {"sent": 5, "blocked": 1, "held": 2}
        sent_to = Counter(m["to"] for m in graph.messages())
        assert set(sent_to.values()) == {1} and len(sent_to) == 5
        assert not any(to.startswith("2020000") for to in sent_to)  # outside the window
        assert not graph.ok(kind="template")  # no campaign template configured: no notice

        # One of them writes: the channel releases the held row, and a sender delivers it.
        late = "20200000"
        key = store.pseudonyms.user_key("whatsapp", late)
        async with store.session() as db:
            await db.execute(update(User).where(User.key == key).values(last_inbound_at=utcnow()))
            (await cli.campaigns.get(db, "wa")).status = "sending"  # the worker's view
        assert await release_held(store, key) == 1
        stop = asyncio.Event()
        sender = CampaignSender(store, "whatsapp", channels.deliverers["whatsapp"],
                                SenderOptions(rate=200, idle=0.05),
                                on_sent=channels.on_sent["whatsapp"])
        task = asyncio.create_task(sender.run(stop))
        try:
            await graph.wait_for(lambda: late in {m["to"] for m in graph.messages()})
        finally:
            stop.set()
            await task
    statuses = await delivery_statuses(store, campaign_id)
    assert statuses == {"sent": 6, "blocked": 1, "held": 1}
    assert Counter(m["to"] for m in graph.messages())[late] == 1
