"""Campaigns through the real Telegram deliverer: PTB on our aiohttp layer, the fake Bot API.

Counted at the fake: every opted-in user gets exactly one ``sendMessage``; users who opted out,
never opted in or blocked the bot get none; flood control (429 + ``retry_after``) pauses the
channel and is not tripped again.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bot.channels.campaigns import campaign_channels
from bot.config import Settings
from bot.outreach import cli
from bot.outreach.stats import report
from bot.store.models import PlatformMessage, Subscription
from bot.store.repository import Store
from tests.conftest import SECRET, make_settings
from tests.outreach.conftest import add_users, new_campaign
from tests.outreach.helpers import delivery_statuses
from tests.telegram.fake_bot_api import DEFAULT_TOKEN, FakeBotAPI

USERS = 5000
RATE = 2000.0
"""Fast enough for a test; the configured-rate figure (25/s) is in bench/broadcast.py."""
FIRST_CHAT = 700_000


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotAPI]:
    api = FakeBotAPI()
    await api.start()
    yield api
    await api.stop()


def telegram_settings(url: str, api: FakeBotAPI, **overrides: object) -> Settings:
    return make_settings(url, telegram_bot_token=DEFAULT_TOKEN,
                         telegram_api_base_url=api.base_url, **overrides)


def chat_counts(api: FakeBotAPI) -> Counter[int]:
    return Counter(int(c.params["chat_id"]) for c in api.calls_to("sendMessage"))


async def add_audience(store: Store, count: int) -> tuple[set[int], set[int]]:
    """``count`` opted-in chats, plus chats that must hear nothing: never opted in, opted out,
    blocked the bot (Telegram answers 403). Returns (opted in, all the others)."""
    await add_users(store, count, prefix=str(FIRST_CHAT // 10))  # chats 70000, 700001...
    opted_in = {int(f"{FIRST_CHAT // 10}{n}") for n in range(count)}
    await add_users(store, 3, prefix="91", subscribed=False)  # never opted in
    left = await add_users(store, 3, prefix="92")
    async with store.session() as db:
        await db.execute(delete(Subscription).where(Subscription.user_id.in_(left)))
    silent = {int(f"{p}{n}") for p in (91, 92) for n in range(3)}
    return opted_in, silent


async def test_5000_users_get_the_campaign_exactly_once_under_flood_control(
        store: Store, database_url: str, fake_api: FakeBotAPI) -> None:
    opted_in, silent = await add_audience(store, USERS)
    await add_users(store, 2, prefix="93")  # opted in, but they blocked the bot
    fake_api.blocked_chats.update({930, 931})
    # Telegram's flood control, scaled to the test's rate: the 429 we force first must be
    # honoured (the whole channel pauses), and the paced sender must never trip it itself.
    fake_api.max_rate = RATE * 1.5
    fake_api.fail_next(1, status=429, retry_after=1, methods=("sendMessage",))
    await new_campaign(store, "big")
    settings = telegram_settings(database_url, fake_api)

    async with campaign_channels(settings, store) as channels:
        code = await cli.send(store, "big", channels.deliverers, rate=RATE,
                              on_sent=channels.on_sent, options={"idle": 0.05})
    assert code == 0

    counts = chat_counts(fake_api)
    assert set(counts) == opted_in, "someone was missed, or messaged unasked"
    assert set(counts.values()) == {1}, "someone got the campaign twice"
    assert not silent & set(counts)
    refused = Counter(c.status for c in fake_api.calls_to("sendMessage", ok_only=False)
                      if c.status != 200)
    assert refused == {429: 1, 403: 2}, "flood control tripped beyond the forced first 429"
    assert await delivery_statuses(store, await _campaign_id(store)) == {
        "sent": USERS, "blocked": 2}
    async with store.session() as db:
        figures = await report(db, await cli.campaigns.get(db, "big"))
        remembered = await db.scalar(select(func.count()).select_from(PlatformMessage))
    assert (figures.sent, figures.blocked, figures.status) == (USERS, 2, "done")
    assert remembered == USERS  # every message id is kept for the quick exit


async def test_the_real_command_line_creates_sends_and_reports(
        sqlite_url: str, sqlite_store: Store, fake_api: FakeBotAPI, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``sanad campaign create|send|report --json`` through ``bot.cli.main`` (in a thread: the
    fake Bot API keeps serving in this event loop)."""
    from bot.cli import main

    opted_in, silent = await add_audience(sqlite_store, 40)
    for name, value in {"DATABASE_URL": sqlite_url, "SANAD_SECRET_KEY": SECRET.decode(),
                        "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
                        "TELEGRAM_API_BASE_URL": fake_api.base_url,
                        "SANAD_TELEGRAM_RATE": "200"}.items():
        monkeypatch.setenv(name, value)
    tip = tmp_path / "tip.yml"
    tip.write_text('ar: "قبل ما تسافر، اتأكد من العقد"\nen: "Check the contract first"\n'
                   "buttons: [aw:open:check_job_offer]\n", encoding="utf-8")

    assert await asyncio.to_thread(main, ["campaign", "create", "spring", "--message-file",
                                          str(tip)]) == 0
    assert await asyncio.to_thread(main, ["campaign", "send", "spring"]) == 0
    counts = chat_counts(fake_api)
    assert set(counts) == opted_in and set(counts.values()) == {1}
    assert not silent & set(counts)
    call = fake_api.calls_to("sendMessage")[0]
    assert call.params["text"].startswith("قبل ما تسافر")
    assert "check_job_offer" in str(call.params["reply_markup"])  # the module button

    capsys.readouterr()
    assert await asyncio.to_thread(main, ["campaign", "report", "spring", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["targeted"], figures["sent"], figures["failed"]) == (40, 40, 0)
    assert figures["status"] == "done"


async def _campaign_id(store: Store) -> int:
    async with store.session() as db:
        return (await cli.campaigns.get(db, "big")).id
