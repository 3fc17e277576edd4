"""Intake and sending of the real Telegram channel (python-telegram-bot and aiohttp against the
fake Bot API): the webhook is answered once the turn is committed, the replies follow from the
outbox rows' leases, kept while they wait in the send budget, and an emergency queued behind
other turns runs next. On SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.app import Sanad
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH, TelegramChannel
from bot.messages import Inbound, Outbound, Turn
from bot.outbox import OutboxSender
from bot.sendbudget import Priority
from bot.store.models import OutboxMessage
from bot.store.repository import utcnow
from bot.web.app import create_app
from nlu import EmbeddedNLU
from tests.support import bot_core
from tests.telegram.conftest import FAST, SECRET, telegram_settings
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.updates import Updates

EMERGENCY = "أنا في خطر الآن"


class HeldBudget:
    """The send budget, held shut while ``open`` is clear: sends wait in it as they would
    behind a rush."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = 0

    async def acquire(self, priority: Priority | None = None) -> None:
        self.waiting += 1
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1

    async def reserve(self, priority: Priority, count: int, stop: asyncio.Event) -> list[float]:
        raise NotImplementedError

    async def pause(self, seconds: float) -> None:
        return None


class Recorder:
    """Another sender's deliverer: what it would have sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Outbound]]] = []

    async def deliver(self, address: str, messages: Any) -> None:
        self.sent.append((address, list(messages)))


@asynccontextmanager
async def channel_app(sanad: Sanad, **options: Any
                      ) -> AsyncIterator[tuple[TestClient[web.Request, web.Application],
                                               TelegramChannel, HeldBudget]]:
    channel = TelegramChannel(sanad, policy=FAST, **options)
    budget = HeldBudget()
    channel.sender.budget = budget
    client = TestClient(TestServer(create_app(sanad, channels=[channel.mount])))
    try:
        await client.start_server()
        yield client, channel, budget
    finally:
        budget.open.set()
        await client.close()


async def post(client: TestClient[web.Request, web.Application], update: dict[str, Any]) -> int:
    response = await client.post(WEBHOOK_PATH, data=orjson.dumps(update),
                                 headers={SECRET_HEADER: SECRET,
                                          "Content-Type": "application/json"})
    await response.read()
    return response.status


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    api = FakeBotAPI()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def sanad(database_url: str, embedded_nlu: EmbeddedNLU, fake: FakeBotAPI
                ) -> AsyncIterator[Sanad]:
    async with bot_core(telegram_settings(database_url, fake), embedded_nlu) as core:
        yield core


async def reply_rows(sanad: Sanad) -> list[tuple[int, str, int]]:
    async with sanad.store.session() as db:
        rows = await db.execute(select(OutboxMessage.id, OutboxMessage.status,
                                       OutboxMessage.attempts)
                                .where(OutboxMessage.kind == "reply").order_by(OutboxMessage.id))
        return [(int(i), str(s), int(a)) for i, s, a in rows]


async def expire_lease(sanad: Sanad, row_id: int, **claim: Any) -> None:
    """As if the lease had run out (and, with ``claim``, another process had taken the row)."""
    async with sanad.store.session() as db:
        await db.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
            lease_until=utcnow() - timedelta(seconds=1), **claim))


async def test_the_webhook_answers_once_committed_before_the_bot_api_is_called(
    sanad: Sanad, fake: FakeBotAPI
) -> None:
    async with channel_app(sanad, reply_grace=0) as (client, channel, budget):
        chat = Updates(chat_id=4242)
        budget.open.clear()
        assert await post(client, chat.message("مرحبا")) == 200
        assert fake.calls_to("sendMessage") == []  # answered before any reply went out
        ((row_id, status, attempts),) = await reply_rows(sanad)
        assert (status, attempts) == ("sending", 1)  # committed, leased to this process
        other = Recorder()  # the outbox drain of any process leaves the leased row alone
        assert await OutboxSender(sanad.store, "telegram", other).run_once() == 0
        budget.open.set()
        await channel.runtime.sends.settled()
        replies = fake.sent_texts(4242)
        assert replies
        assert await reply_rows(sanad) == [(row_id, "sent", 1)]
        assert await OutboxSender(sanad.store, "telegram", other).run_once() == 0
        assert other.sent == [] and fake.sent_texts(4242) == replies  # exactly once


async def test_a_reply_waiting_past_its_lease_keeps_it_and_is_sent_once(
    sanad: Sanad, fake: FakeBotAPI
) -> None:
    async with channel_app(sanad, reply_grace=0) as (client, channel, budget):
        budget.open.clear()
        assert await post(client, Updates(chat_id=4243).message("مرحبا")) == 200
        ((row_id, _, _),) = await reply_rows(sanad)
        await expire_lease(sanad, row_id)  # the wait in the budget outlasted the lease ...
        assert await channel.runtime.leases.renew() == 1  # ... but the keeper renewed it
        other = Recorder()
        assert await OutboxSender(sanad.store, "telegram", other).run_once() == 0
        budget.open.set()
        await channel.runtime.sends.settled()
        assert fake.sent_texts(4243) and other.sent == []
        assert await reply_rows(sanad) == [(row_id, "sent", 1)]


async def test_a_reply_whose_row_another_process_took_is_not_sent_again(
    sanad: Sanad, fake: FakeBotAPI
) -> None:
    async with channel_app(sanad, reply_grace=0) as (client, channel, budget):
        budget.open.clear()
        assert await post(client, Updates(chat_id=4244).message("مرحبا")) == 200
        ((row_id, _, _),) = await reply_rows(sanad)
        # The lease ran out before it could be renewed, and another process's outbox drain
        # took the row (its claim adds an attempt): the row is that process's to send now.
        future = utcnow() + timedelta(minutes=1)
        await expire_lease(sanad, row_id)
        async with sanad.store.session() as db:
            await db.execute(update(OutboxMessage).where(OutboxMessage.id == row_id)
                             .values(attempts=2, lease_until=future))
        assert await channel.runtime.leases.renew() == 0
        budget.open.set()
        await channel.runtime.sends.settled()
        assert fake.sent_texts(4244) == []  # not sent by the process that lost the row ...
        assert await reply_rows(sanad) == [(row_id, "sending", 2)]  # ... nor released by it


async def test_an_emergency_queued_behind_other_turns_runs_next(
    sanad: Sanad, fake: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    first_turn_may_end = asyncio.Event()
    real_turn = sanad.engine.handle_turn

    async def observed(inbound: Inbound, **kwargs: Any) -> Turn:
        started.append(inbound.text or "")
        if len(started) == 1:
            await first_turn_may_end.wait()
        return await real_turn(inbound, **kwargs)

    monkeypatch.setattr(sanad.engine, "handle_turn", observed)
    ids = itertools.count(1)

    def message(chat: int, text: str) -> dict[str, Any]:
        return Updates(chat_id=chat, _update_ids=ids).message(text)

    async with channel_app(sanad, turns_at_once=1) as (client, channel, _):
        gate = channel.runtime.gate
        posts = [asyncio.create_task(post(client, message(5000 + i, f"hi {i}")))
                 for i in range(5)]
        while gate.waiting() < 4:
            await asyncio.sleep(0.01)
        posts.append(asyncio.create_task(post(client, message(5999, EMERGENCY))))
        while gate.waiting() < 5:
            await asyncio.sleep(0.01)
        assert len(started) == 1
        first_turn_may_end.set()
        assert await asyncio.gather(*posts) == [200] * 6
        await channel.runtime.sends.settled()
    assert started[1] == EMERGENCY  # next after the turn that was running
    assert sorted(started[2:]) == sorted(t for t in started if t.startswith("hi "))[1:]
    assert all(fake.sent_texts(chat) for chat in (5000, 5001, 5002, 5003, 5004, 5999))
