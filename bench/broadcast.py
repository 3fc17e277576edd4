"""Campaign broadcast through the real Telegram deliverer: achieved vs configured rate, 429s,
duplicates.

Creates N opted-in users and one campaign, then sends it as ``sanad campaign send`` does
(``bot.outreach.cli.send``) with the deliverer ``sanad worker`` uses (``bot.channels.campaigns``:
PTB's ``Bot`` on our aiohttp request layer) against the fake Telegram Bot API of the tests on
127.0.0.1, which enforces Telegram's flood control (429 + ``retry_after`` above ``--limit``
messages in any second). Counts are taken at the fake. Prints one JSON object.

    .venv/bin/python bench/broadcast.py [--recipients 1000] [--rate 25] [--limit 30]
        [--db sqlite|postgres]

``--db postgres`` creates (once) and empties a ``sanad_bench`` database on the server of
$SANAD_TEST_PG_URL (default the local test server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bot.channels.campaigns import campaign_channels
from bot.config import Settings
from bot.outreach import campaigns, cli
from bot.outreach.message_file import LanguageMessage, MessageFile
from bot.outreach.segments import default_vocabulary
from bot.store.crypto import FieldCipher, Pseudonymizer
from bot.store.db import create_engine, upgrade
from bot.store.models import Subscription, User
from bot.store.repository import Store, utcnow
from tests.telegram.fake_bot_api import DEFAULT_TOKEN, FakeBotAPI

SECRET = b"bench-secret-key-that-is-long-enough"
PG_URL = os.environ.get("SANAD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BENCH_DB = "sanad_bench"
FIRST_CHAT = 500_000


async def bench_database() -> str:
    """A database of its own on the test server, emptied: never anybody else's data."""
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                   {"name": BENCH_DB})
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    await admin.dispose()
    url = PG_URL.rsplit("/", 1)[0] + f"/{BENCH_DB}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return url


async def add_subscribers(db: AsyncSession, store: Store, first_chat: int, count: int,
                          now: datetime) -> None:
    """``count`` Arabic Telegram users (chat ids from ``first_chat``), each subscribed to tips,
    inserted 1,000 at a time (also used by bench/saturation.py)."""
    for start in range(0, count, 1000):
        chats = range(first_chat + start, first_chat + min(count, start + 1000))
        rows = [{"key": store.pseudonyms.user_key("telegram", chat), "channel": "telegram",
                 "language": "ar", "language_locked": False, "unreachable": False,
                 "address_enc": store.cipher.encrypt_text(str(chat), context=b"users.address"),
                 "created_at": now, "last_active_at": now} for chat in chats]
        ids = list(await db.scalars(insert(User).returning(User.id), rows))
        await db.execute(insert(Subscription), [
            {"user_id": i, "topics": [], "created_at": now} for i in ids])


async def prepare(store: Store, recipients: int) -> None:
    now = utcnow()
    async with store.session() as db:
        await add_subscribers(db, store, FIRST_CHAT, recipients, now)
        await campaigns.create(
            db, name="bench", segment="", vocabulary=default_vocabulary(), now=now,
            message_file=MessageFile((LanguageMessage("ar", "رسالة توعية " * 10),)))


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = (await bench_database() if args.db == "postgres"
               else f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        engine = create_engine(url)
        await upgrade(engine)
        store = Store(engine, FieldCipher(SECRET), Pseudonymizer(SECRET))
        api = FakeBotAPI(max_rate=args.limit)
        await api.start()
        try:
            await prepare(store, args.recipients)
            settings = replace(Settings(database_url=url, secret_key=SECRET),
                               telegram_bot_token=DEFAULT_TOKEN,
                               telegram_api_base_url=api.base_url, telegram_rate=args.rate)
            cpu = time.process_time()
            began = time.monotonic()
            async with campaign_channels(settings, store) as channels:
                quiet = io.StringIO()  # the progress bar and summary
                with contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):
                    await cli.send(store, "bench", channels.deliverers, rate=args.rate,
                                   on_sent=channels.on_sent)
            wall = time.monotonic() - began
            cpu = time.process_time() - cpu
        finally:
            await api.stop()
            await engine.dispose()
    accepted = api.calls_to("sendMessage")
    times = sorted(c.at for c in accepted)
    per_chat = Counter(c.params["chat_id"] for c in accepted)
    achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return {
        "db": args.db, "recipients": args.recipients, "configured_rate": args.rate,
        "platform_limit": args.limit, "achieved_rate": round(achieved, 2),
        "achieved_of_configured": round(achieved / args.rate, 3),
        "delivered": len(per_chat),
        "http_429": sum(1 for c in api.calls_to("sendMessage", ok_only=False)
                        if c.status == 429),
        "duplicates": sum(n - 1 for n in per_chat.values()),
        "missing": args.recipients - len(per_chat),
        "max_in_any_second": _max_in_window(times, 1.0),
        "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _max_in_window(times: list[float], window: float) -> int:
    best, low = 0, 0
    for high, moment in enumerate(times):
        while times[low] <= moment - window:
            low += 1
        best = max(best, high - low + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=25.0, help="configured msg/s")
    parser.add_argument("--limit", type=float, default=30.0,
                        help="the fake's flood control: msg/s before it answers 429")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    print(json.dumps(asyncio.run(measure(parser.parse_args()))))


if __name__ == "__main__":
    main()
