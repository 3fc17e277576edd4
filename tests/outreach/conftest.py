"""Fixtures for outreach: a migrated store, opted-in users, fake deliverers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from bot.messages import Outbound
from bot.outbox import PermanentDeliveryError
from bot.outreach import campaigns
from bot.outreach.message_file import LanguageMessage, MessageFile
from bot.outreach.segments import default_vocabulary
from bot.store.crypto import FieldCipher, Pseudonymizer
from bot.store.db import create_engine, upgrade
from bot.store.models import Subscription, User
from bot.store.repository import Store, utcnow
from tests.conftest import SECRET


async def open_store(url: str) -> Store:
    engine = create_engine(url)
    await upgrade(engine)
    return Store(engine, FieldCipher(SECRET), Pseudonymizer(SECRET))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """On SQLite and on the real PostgreSQL."""
    opened = await open_store(database_url)
    yield opened
    await opened.engine.dispose()


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    opened = await open_store(sqlite_url)
    yield opened
    await opened.engine.dispose()


async def add_users(store: Store, count: int, *, channel: str = "telegram",
                    language: str | None = "ar", subscribed: bool = True,
                    topics: Sequence[str] = (), prefix: str = "u", **attrs: Any) -> list[int]:
    """``count`` users whose address is ``<prefix><n>``, opted in unless told otherwise."""
    now = utcnow()
    attrs.setdefault("last_active_at", now)
    rows = [{
        "key": store.pseudonyms.user_key(channel, f"{prefix}{n}"), "channel": channel,
        "address_enc": store.cipher.encrypt_text(f"{prefix}{n}", context=b"users.address"),
        "language": language, "language_locked": False, "unreachable": False,
        "created_at": now, **attrs,
    } for n in range(count)]
    async with store.session() as db:
        ids = list(await db.scalars(insert(User).returning(User.id), rows))
        if subscribed:
            await db.execute(insert(Subscription), [
                {"user_id": i, "topics": list(topics), "created_at": now} for i in ids])
    return sorted(ids)


def message_file(**texts: str) -> MessageFile:
    texts = texts or {"ar": "رسالة توعية", "en": "An awareness tip"}
    return MessageFile(tuple(LanguageMessage(lang, text) for lang, text in texts.items()))


async def new_campaign(store: Store, name: str = "c1", segment: str = "", *,
                       texts: dict[str, str] | None = None, file: MessageFile | None = None,
                       **options: Any) -> int:
    async with store.session() as db:
        campaign = await campaigns.create(
            db, name=name, message_file=file or message_file(**(texts or {})), segment=segment,
            vocabulary=default_vocabulary(), now=utcnow(), **options)
        return campaign.id


async def start(store: Store, name: str = "c1") -> None:
    async with store.session() as db:
        await campaigns.start_now(db, name, utcnow())


class RateLimited(Exception):
    """Like PTB's ``RetryAfter``: the sender only looks at ``retry_after``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"flood control, retry in {seconds}s")
        self.retry_after = timedelta(seconds=seconds)


@dataclass
class FakeDeliverer:
    """Records every accepted message with its time; can refuse, flood-limit or fail."""

    delay: float = 0.0
    blocked: set[str] = field(default_factory=set)
    flood_on_calls: set[int] = field(default_factory=set)
    flood_seconds: float = 0.2
    fail_once: set[str] = field(default_factory=set)
    clock: Any = time.monotonic
    calls: int = 0
    sent: list[tuple[str, str, float]] = field(default_factory=list)
    floods: list[float] = field(default_factory=list)

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> None:
        self.calls += 1
        call = self.calls
        if self.delay:
            await asyncio.sleep(self.delay)
        if call in self.flood_on_calls:
            self.floods.append(self.clock())
            raise RateLimited(self.flood_seconds)
        if address in self.blocked:
            raise PermanentDeliveryError()
        if address in self.fail_once:
            self.fail_once.discard(address)
            raise ConnectionError("network down")
        self.sent.extend((address, m.text, self.clock()) for m in messages)

    @property
    def addresses(self) -> list[str]:
        return [address for address, _, _ in self.sent]

    def achieved_rate(self) -> float:
        times = sorted(t for _, _, t in self.sent)
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
