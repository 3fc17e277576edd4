"""The real aiohttp app of ``sanad serve`` with the WhatsApp channel, against the fake Graph API."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.app import Sanad
from bot.channels.whatsapp import SIGNATURE_HEADER, WEBHOOK_PATH, WhatsAppChannel
from bot.channels.whatsapp_api import SendPolicy
from bot.config import Settings
from bot.messages import Inbound
from bot.store.db import create_engine, upgrade
from bot.store.models import OutboxMessage, User
from bot.store.repository import utcnow
from bot.web.app import create_app
from handoff import relay
from handoff.queue import list_cases
from nlu import EmbeddedNLU
from tests.conftest import make_settings
from tests.support import bot_core, database_down  # noqa: F401 - re-exported for the tests
from tests.whatsapp.fake_graph_api import FakeGraphAPI
from tests.whatsapp.payloads import Meta, sign

APP_SECRET = "test-app-secret-0123456789"
VERIFY_TOKEN = "verify-me-please"
FAST = SendPolicy(attempts=4, backoff=0.01, rate_limit_backoff=0.01, max_backoff=0.05,
                  timeout=5.0)
"""Real backoffs would make a rate-limit test wait seconds."""
_SIGNED = object()


@dataclass
class Harness:
    client: TestClient[web.Request, web.Application]
    fake: FakeGraphAPI
    channel: WhatsAppChannel
    sanad: Sanad
    meta: Meta = field(default_factory=Meta)

    async def post(self, payload: dict[str, Any] | bytes, *, signature: Any = _SIGNED) -> int:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        headers = {"Content-Type": "application/json"}
        header = sign(body, APP_SECRET) if signature is _SIGNED else signature
        if header is not None:
            headers[SIGNATURE_HEADER] = header
        response = await self.client.post(WEBHOOK_PATH, data=body, headers=headers)
        await response.read()
        return response.status

    async def say(self, text: str, wa_id: str | None = None, **sender: Any) -> int:
        """A text from the user (``bsuid=``, ``bsuid_only=True``: see ``Meta.base``)."""
        return await self.post(self.meta.messages(self.meta.text(text, wa_id, **sender)))

    async def tap(self, button_id: str, *, row: bool = False, wa_id: str | None = None,
                  **sender: Any) -> int:
        reply = self.meta.list_reply if row else self.meta.button_reply
        return await self.post(self.meta.messages(reply(button_id, wa_id=wa_id, **sender)))

    def last(self, wa_id: str | None = None) -> dict[str, Any]:
        return self.fake.messages(wa_id or self.meta.wa_id)[-1]

    def ui(self, lang: str, key: str) -> str:
        return self.sanad.ui.text(lang, key)

    # --- the back office and the database ---------------------------------------------------
    def user_key(self, wa_id: str | None = None) -> str:
        """The key of the user whose phone number (or BSUID) this is."""
        return self.sanad.store.user_ref("whatsapp", wa_id or self.meta.wa_id).key

    async def subscribe(self, wa_id: str | None = None, **sender: Any) -> None:
        """The whole opt-in in the chat: all topics, Arabic, no governorate, no age band."""
        async def say(text: str) -> None:
            await self.say(text, wa_id, **sender)

        async def tap(button: str, row: bool = False) -> None:
            await self.tap(button, row=row, wa_id=wa_id, **sender)

        await say("ابعتلي نصايح")
        await tap("sub:yes")
        await tap("sub:topic:all", row=True)
        await tap("sub:lang:ar")
        await tap("sub:gov:skip", row=True)
        await tap("sub:age:skip", row=True)

    async def user(self, wa_id: str | None = None) -> User:
        async with self.sanad.store.session() as db:
            found = await db.scalar(select(User).where(User.key == self.user_key(wa_id)))
        assert found is not None
        return found

    async def outbox(self, kind: str | None = "caseworker") -> list[OutboxMessage]:
        """Outbox rows (by default only caseworker replies: every turn writes one too)."""
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind is not None:
            query = query.where(OutboxMessage.kind == kind)
        async with self.sanad.store.session() as db:
            return list(await db.scalars(query))

    async def open_case(self, wa_id: str | None = None, **sender: Any) -> int:
        """The user asks for a person (menu → talk to someone) and says why."""
        await self.say("مرحبا", wa_id, **sender)
        await self.tap("menu:human", row=True, wa_id=wa_id, **sender)
        await self.say("محتاج أتكلم مع حد بخصوص عقد الشغل", wa_id, **sender)
        async with self.sanad.store.session() as db:
            return (await list_cases(db))[-1].id

    async def caseworker_says(self, case_id: int, text: str) -> None:
        async with self.sanad.store.session() as db:
            await relay.reply(db, cipher=self.sanad.store.cipher, ui=self.sanad.ui,
                              case_id=case_id, author="mona", text=text)

    async def age_window(self, hours: float, wa_id: str | None = None) -> None:
        """Pretend the user last wrote ``hours`` ago."""
        async with self.sanad.store.session() as db:
            await db.execute(update(User).where(User.key == self.user_key(wa_id)).values(
                last_inbound_at=utcnow() - timedelta(hours=hours)))

    async def deliver_outbox(self) -> int:
        """One outbox round, due rows only (as the background sender would)."""
        async with self.sanad.store.session() as db:  # skip backoff waits of earlier failures
            await db.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                             .values(next_attempt_at=utcnow()))
        return await self.channel.outbox.run_once()

    async def engine_turn(self, text: str, wa_id: str | None = None) -> None:
        """A turn straight through the engine (no webhook), e.g. to set up state."""
        ref = self.sanad.store.user_ref("whatsapp", wa_id or self.meta.wa_id)
        await self.sanad.engine.handle_turn(Inbound(user=ref, text=text),
                                            address=wa_id or self.meta.wa_id)


def whatsapp_settings(database_url: str, fake: FakeGraphAPI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "whatsapp_token": fake.token, "whatsapp_phone_number_id": fake.phone_number_id,
        "whatsapp_app_secret": APP_SECRET, "whatsapp_verify_token": VERIFY_TOKEN,
        "whatsapp_api_base_url": fake.base_url, **overrides,
    }
    return make_settings(database_url, **values)




@asynccontextmanager
async def running(sanad: Sanad, fake: FakeGraphAPI, *, deliver_outbox: bool = False,
                  policy: SendPolicy = FAST, **options: Any) -> AsyncIterator[Harness]:
    """The app with the channel mounted; by default the test drives the outbox itself."""
    channel = WhatsAppChannel(sanad, policy=policy, deliver_outbox=deliver_outbox,
                              outbox_interval=0.2, **options)
    app = create_app(sanad, channels=[channel.mount], back_office=False)
    async with TestClient(TestServer(app)) as client:
        fake.report_to(str(client.make_url(WEBHOOK_PATH)), APP_SECRET)
        yield Harness(client, fake, channel, sanad)
        await fake.settle()


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraphAPI]:
    api = FakeGraphAPI()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test: migrating costs half a second."""
    path = tmp_path_factory.mktemp("whatsapp-template") / "sanad.db"

    async def migrate() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture
def wa_sqlite_url(migrated_sqlite: Path, tmp_path: Path) -> str:
    target = tmp_path / "sanad.db"
    shutil.copyfile(migrated_sqlite, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
async def wa(wa_sqlite_url: str, embedded_nlu: EmbeddedNLU, fake: FakeGraphAPI
             ) -> AsyncIterator[Harness]:
    """The webhook on SQLite."""
    async with bot_core(whatsapp_settings(wa_sqlite_url, fake), embedded_nlu) as sanad, \
            running(sanad, fake) as harness:
        yield harness


@pytest.fixture
async def wa_any_db(database_url: str, embedded_nlu: EmbeddedNLU, fake: FakeGraphAPI
                    ) -> AsyncIterator[Harness]:
    """The webhook on SQLite and on the real PostgreSQL."""
    async with bot_core(whatsapp_settings(database_url, fake), embedded_nlu) as sanad, \
            running(sanad, fake) as harness:
        yield harness




UNLIMITED = {"flood_rate": 10_000.0, "flood_burst": 10_000}
"""Flood control off: corpus and fuzz tests send hundreds of bodies from a few senders."""


@pytest.fixture
async def wa_open(wa_sqlite_url: str, embedded_nlu: Any, fake: FakeGraphAPI
                  ) -> AsyncIterator[Harness]:
    """A harness on SQLite without flood control."""
    settings = whatsapp_settings(wa_sqlite_url, fake, **UNLIMITED)
    async with bot_core(settings, embedded_nlu) as sanad, running(sanad, fake) as harness:
        yield harness
