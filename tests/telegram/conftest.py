"""The real aiohttp app of ``sanad serve`` with the Telegram channel, against the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Sanad
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH, TelegramChannel
from bot.channels.telegram_sender import SendPolicy
from bot.config import Settings
from bot.web.app import create_app
from nlu import EmbeddedNLU
from tests.conftest import make_settings
from tests.support import bot_core, database_down  # noqa: F401 - re-exported for the tests
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.updates import Updates

SECRET = "test_secret-1"
FAST = SendPolicy(per_chat_rate=50.0, per_chat_burst=20, backoff=0.01, max_backoff=0.05)
"""Real limits would make a conversation test wait a second per message."""
_DEFAULT = object()


@dataclass
class Harness:
    client: TestClient[web.Request, web.Application]
    fake: FakeBotAPI
    channel: TelegramChannel
    sanad: Sanad
    updates: Updates = field(default_factory=Updates)

    async def post(self, update: dict[str, Any] | bytes, *, secret: Any = _DEFAULT) -> int:
        if isinstance(update, dict):
            self._show_fake(update)
        body = update if isinstance(update, bytes) else orjson.dumps(update)
        headers = {"Content-Type": "application/json"}
        token = SECRET if secret is _DEFAULT else secret
        if token is not None:
            headers[SECRET_HEADER] = token
        response = await self.client.post(WEBHOOK_PATH, data=body, headers=headers)
        answer = await response.read()
        # The webhook may answer before the replies are sent (under a rush): the tests read
        # what the chat shows once this update's sends are done.
        await self.channel.runtime.sends.settled()
        if 200 <= response.status < 300:  # as Telegram does: a method in the answer is run
            await self.fake.perform_webhook_answer(response.content_type, answer)
        return response.status

    def _show_fake(self, update: dict[str, Any]) -> None:
        """Telegram knows the user's message (and its date) before the bot does."""
        message = update.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("chat"), dict):
            return
        chat_id, message_id, date = (message["chat"].get("id"), message.get("message_id"),
                                     message.get("date"))
        if type(chat_id) is int and type(message_id) is int and type(date) is int:
            self.fake.note_message(chat_id, message_id, date)

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Params of successful sendMessage calls (to one chat)."""
        return [c.params for c in self.fake.calls_to("sendMessage")
                if chat_id is None or c.params["chat_id"] == chat_id]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [p["text"] for p in self.sent(chat_id)]


def telegram_settings(database_url: str, fake: FakeBotAPI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": fake.token, "telegram_api_base_url": fake.base_url,
        "telegram_webhook_secret": SECRET, **overrides,
    }
    return make_settings(database_url, **values)


@asynccontextmanager
async def running(sanad: Sanad, fake: FakeBotAPI, *, policy: SendPolicy = FAST,
                  polling: bool = False) -> AsyncIterator[Harness]:
    channel = TelegramChannel(sanad, policy=policy, polling=polling, poll_timeout=1)
    app = create_app(sanad, channels=[channel.mount])
    client = TestClient(TestServer(app))
    try:  # not `async with`: a start-up that fails would leave the client's session open
        await client.start_server()
        yield Harness(client, fake, channel, sanad)
    finally:
        await client.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    api = FakeBotAPI()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def tg(sqlite_url: str, embedded_nlu: EmbeddedNLU, fake: FakeBotAPI
             ) -> AsyncIterator[Harness]:
    """The webhook on SQLite."""
    async with bot_core(telegram_settings(sqlite_url, fake), embedded_nlu) as sanad, \
            running(sanad, fake) as harness:
        yield harness


@pytest.fixture
async def tg_any_db(database_url: str, embedded_nlu: EmbeddedNLU, fake: FakeBotAPI
                    ) -> AsyncIterator[Harness]:
    """The webhook on SQLite and on the real PostgreSQL."""
    async with bot_core(telegram_settings(database_url, fake), embedded_nlu) as sanad, \
            running(sanad, fake) as harness:
        yield harness


