"""``SANAD_OUTBOX_LEASE_SECONDS``: validated at start-up, and the lease every sender takes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import outbox
from bot.app import Sanad
from bot.config import ConfigError, Settings
from bot.messages import Inbound
from bot.outbox import OutboxSender
from bot.store.models import OutboxMessage
from bot.store.repository import as_utc

ENV = {"SANAD_SECRET_KEY": "a-secret-key-long-enough"}


def test_default_is_60_seconds() -> None:
    assert Settings.from_env(ENV).outbox_lease_seconds == 60
    assert Settings.from_env({**ENV, "SANAD_OUTBOX_LEASE_SECONDS": "5"}).outbox_lease_seconds == 5


@pytest.mark.parametrize("value", ["0", "-3", "soon", "1.5", "3601"])
def test_bad_values_name_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="SANAD_OUTBOX_LEASE_SECONDS"):
        Settings.from_env({**ENV, "SANAD_OUTBOX_LEASE_SECONDS": value})


@pytest.fixture
def lease_of_7s() -> Iterator[None]:
    outbox.configure(7)
    try:
        yield
    finally:
        outbox.configure(60)


class Nowhere:
    async def deliver(self, address: str, messages: object) -> None:
        raise ConnectionError("down")


async def test_turn_replies_and_the_sender_take_the_configured_lease(
    sanad_sqlite: Sanad, lease_of_7s: None,
) -> None:
    app = sanad_sqlite
    user = app.store.user_ref("terminal", "lease-1")
    await app.engine.handle_turn(Inbound(user=user, text="hello"), address="lease-1")
    async with app.store.session() as db:
        row = await db.scalar(select(OutboxMessage))
        assert row is not None and row.status == "sending" and row.lease_until is not None
        assert as_utc(row.lease_until) - as_utc(row.created_at) == timedelta(seconds=7)
        row.lease_until = row.created_at  # the process that took it died; the lease ran out
    sender = OutboxSender(app.store, "terminal", Nowhere())
    assert sender.lease == timedelta(seconds=7)
    leased = await sender._lease()
    assert [r.id for r in leased] == [row.id]
    async with app.store.session() as db:
        again = await db.get(OutboxMessage, row.id)
        assert again is not None and again.status == "sending" and again.attempts == 2
        assert again.lease_until is not None
        assert timedelta(seconds=6) < as_utc(again.lease_until) - as_utc(again.next_attempt_at)
