"""The real aiohttp app of ``sanad serve`` with only the web chat channel mounted."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Sanad
from bot.channels.webchat import INBOX, TURN, WebChatChannel
from bot.metrics import Metrics
from bot.web.app import create_app


@dataclass
class Chat:
    """One browser tab's conversation, spoken over the JSON endpoint."""

    client: TestClient[web.Request, web.Application]
    channel: WebChatChannel
    sanad: Sanad
    metrics: Metrics
    token: str | None = None
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def next_id(self) -> str:
        return f"message-{next(self._ids):04d}"

    async def post(self, body: dict[str, Any], path: str = TURN) -> tuple[int, dict[str, Any]]:
        response = await self.client.post(path, json=body)
        return response.status, await response.json()

    async def say(self, text: str = "", *, button: str | None = None,
                  message_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"token": self.token, "id": message_id or self.next_id()}
        if button is not None:
            body["button"] = button
        else:
            body["text"] = text
        status, answer = await self.post(body)
        assert status == 200, answer
        self.token = answer["token"]
        return answer

    async def inbox(self) -> dict[str, Any]:
        status, answer = await self.post({"token": self.token}, INBOX)
        assert status == 200, answer
        return answer

    def counted(self, outcome: str) -> float:
        key = ("sanad_webchat_messages_total", (("outcome", outcome),))
        return self.metrics.counters.get(key, 0)


def texts(answer: dict[str, Any]) -> str:
    return "\n".join(m["text"] for m in answer["messages"])


def buttons(answer: dict[str, Any]) -> list[str]:
    return [b["id"] for m in answer["messages"] for b in m["buttons"]]


@pytest.fixture
async def chat(sanad: Sanad) -> AsyncIterator[Chat]:
    metrics = Metrics()
    channel = WebChatChannel(sanad)
    app = create_app(sanad, metrics, channels=[channel.mount], back_office=False)
    async with TestClient(TestServer(app)) as client:
        yield Chat(client, channel, sanad, metrics)
