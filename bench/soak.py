"""Soak: steady load through the real Telegram webhook of ``sanad serve`` while faults happen.

Not run by CI. A real ``python -m bot serve`` child talks to an in-process fake Bot API that
injects faults: 5xx answers, 429 with ``retry_after``, timeouts (a ``sendMessage`` that hangs past
the client's read timeout and is never performed) and brief database trouble (SQLite: another
process holds the write lock for a few seconds; PostgreSQL: the server drops the bot's
connections). Simulated users each post their conversation, one update at a time, redelivering
an update until it gets a 200, as Telegram does.

Every minute: the child's RSS and the p50/p99 webhook latency (POST to 200, which includes the
turn and its sendMessage calls). At the end: updates sent and acknowledged, replies expected
(decrypted from the outbox) and received by the fake, lost (must be 0), duplicated (must be 0),
faults injected by kind; one JSON object on stdout.

    .venv/bin/python bench/soak.py                      # 10 minutes on SQLite
    .venv/bin/python bench/soak.py --minutes 2 --db postgres --users 60 --rate 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH  # noqa: E402
from bot.channels.telegram_render import render  # noqa: E402
from bot.outbox import _open  # noqa: E402
from bot.store.crypto import FieldCipher, Pseudonymizer  # noqa: E402
from tests.telegram.fake_bot_api import FakeBotAPI  # noqa: E402
from tests.telegram.updates import Updates  # noqa: E402

SECRET_KEY = "soak-secret-key-that-is-long-enough"
WEBHOOK_SECRET = "soak_secret"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TIMEOUT_HANG = 6.0
"""Longer than the bot's Bot API read timeout (5 s)."""
TEXTS = ["مرحبا", "hello", "/menu", "عايز أعرف حقوقي في الشغل", "what are my rights at work",
         "bonjour", "/help", "شكرا"]
BUTTONS = ["menu:learn", "menu:language", "lang:ar", "lang:en", "menu:services"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


class Soak:
    def __init__(self, args: argparse.Namespace, database_url: str, sqlite_path: Path | None,
                 pg_name: str | None) -> None:
        self.args = args
        self.database_url = database_url
        self.sqlite_path = sqlite_path
        self.pg_name = pg_name
        self.fake = FakeBotAPI(pause=self._pause)
        self.faults: Counter[str] = Counter()
        self.hang_next = 0
        self.latencies: list[float] = []
        self.minutes: list[dict[str, Any]] = []
        self.sent = 0
        self.acknowledged = 0
        self.redeliveries: Counter[str] = Counter()
        self.stop = asyncio.Event()
        self.port = free_port()

    async def _pause(self, method: str, params: dict[str, Any], performed: bool) -> bool:
        if method == "sendMessage" and not performed and self.hang_next > 0:
            self.hang_next -= 1
            self.faults["timeout"] += 1
            await asyncio.sleep(TIMEOUT_HANG)
            return False  # never performed: the client gave up and sends it again
        return True

    # --- the child ----------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SANAD_", "TELEGRAM_", "WHATSAPP_", "DATABASE_URL"))}
        env.update({
            "DATABASE_URL": self.database_url, "SANAD_SECRET_KEY": SECRET_KEY,
            "TELEGRAM_BOT_TOKEN": self.fake.token, "TELEGRAM_API_BASE_URL": self.fake.base_url,
            "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "SANAD_OUTBOX_LEASE_SECONDS": "30",
            "SANAD_FLOOD_RATE": "1000", "SANAD_FLOOD_BURST": "1000", "PYTHONUNBUFFERED": "1",
        })
        return env

    # --- load -----------------------------------------------------------------------------
    async def user(self, http: aiohttp.ClientSession, chat: int, pause: float) -> None:
        rng = random.Random(chat)
        updates = Updates(chat_id=chat, language_code=rng.choice(["ar", "en", "fr"]),
                          _update_ids=itertools.count(chat * 100_000))
        headers = {"Content-Type": "application/json", SECRET_HEADER: WEBHOOK_SECRET}
        await asyncio.sleep(rng.uniform(0, pause))
        while not self.stop.is_set():
            if rng.random() < 0.3:
                update = updates.callback(rng.choice(BUTTONS), message_id=1)
            else:
                update = updates.message(rng.choice(TEXTS))
            body = orjson.dumps(update)
            self.sent += 1
            started = time.monotonic()
            while True:  # Telegram delivers the same update until it gets a 200
                try:
                    async with http.post(f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}",
                                         data=body, headers=headers) as response:
                        await response.read()
                        if response.status == 200:
                            break
                        self.redeliveries[str(response.status)] += 1
                except (TimeoutError, aiohttp.ClientError) as exc:
                    self.redeliveries[type(exc).__name__] += 1
                await asyncio.sleep(0.5)
            self.latencies.append(time.monotonic() - started)
            self.acknowledged += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), rng.expovariate(1 / pause))

    async def inject(self) -> None:
        rng = random.Random(7)
        kinds = ["5xx", "429", "timeout", "db"]
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), rng.uniform(2, 6))
            if self.stop.is_set():
                return
            kind = rng.choice(kinds)
            if kind == "5xx":
                status = rng.choice([500, 502, 503])
                self.fake.fail_next(1, status=status, methods=("sendMessage",))
                self.faults[f"http_{status}"] += 1
            elif kind == "429":
                self.fake.fail_next(1, status=429, retry_after=1, methods=("sendMessage",))
                self.faults["http_429"] += 1
            elif kind == "timeout":
                self.hang_next += 1  # counted when it happens
            else:
                await self.database_trouble(rng.uniform(1.0, 3.0))

    async def database_trouble(self, seconds: float) -> None:
        path = self.sqlite_path
        if path is not None:
            def hold() -> None:
                conn = sqlite3.connect(path, timeout=30, isolation_level=None)
                try:
                    conn.execute("BEGIN EXCLUSIVE")
                    time.sleep(seconds)
                    conn.execute("COMMIT")
                finally:
                    conn.close()
            self.faults["db_write_lock"] += 1
            await asyncio.to_thread(hold)
            return
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN)
        try:
            dropped = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()", self.pg_name)
        finally:
            await conn.close()
        self.faults["db_connections_dropped"] += 1
        self.faults["db_backends_terminated"] += int(dropped or 0)

    async def sample(self, pid: int) -> None:
        start = time.monotonic()
        last = 0
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 60)
            window, last = self.latencies[last:], len(self.latencies)
            self.minutes.append({
                "minute": round((time.monotonic() - start) / 60, 1), "rss_mb": rss_mb(pid),
                "updates": len(window), "p50_ms": percentile(window, 0.5),
                "p99_ms": percentile(window, 0.99),
            })
            print(orjson.dumps(self.minutes[-1]).decode(), file=sys.stderr, flush=True)

    # --- the end --------------------------------------------------------------------------
    async def expected_replies(self, chats: list[int]) -> dict[int, Counter[str]]:
        """Every reply row the bot committed, decrypted and rendered as sendMessage texts."""
        from sqlalchemy import select

        from bot.store.db import create_engine
        from bot.store.models import OutboxMessage, User

        keys = {Pseudonymizer(SECRET_KEY.encode()).user_key("telegram", c): c for c in chats}
        cipher = FieldCipher(SECRET_KEY.encode())
        engine = create_engine(self.database_url)
        expected: dict[int, Counter[str]] = {c: Counter() for c in chats}
        self.unsent: Counter[str] = Counter()
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(
                    select(User.key, OutboxMessage.payload_enc, OutboxMessage.status)
                    .join(User, User.id == OutboxMessage.user_id))).all()
        finally:
            await engine.dispose()
        for key, payload, status in rows:
            if status != "sent":
                self.unsent[status] += 1
            for outbound in _open(cipher, payload):
                expected[keys[key]].update(chunk.text for chunk in render(outbound))
        return expected

    async def settle(self, timeout: float = 120) -> None:
        """Wait until the outbox has nothing pending (released sends go out after a pause)."""
        from sqlalchemy import func, select

        from bot.store.db import create_engine
        from bot.store.models import OutboxMessage

        engine = create_engine(self.database_url)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                async with engine.connect() as conn:
                    open_rows = await conn.scalar(
                        select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.status.in_(("pending", "sending"))))
                if not open_rows:
                    return
                await asyncio.sleep(1)
        finally:
            await engine.dispose()

    async def run(self) -> dict[str, Any]:
        await self.fake.start()
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the child writes it until the end
            prefix="soak-serve-", suffix=".log", delete=False)
        child = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port",
             str(self.port)], cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            await self.wait_ready(child)
            chats = list(range(880_001, 880_001 + self.args.users))
            pause = self.args.users / self.args.rate
            started = time.monotonic()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
                tasks = [asyncio.create_task(self.user(http, c, pause)) for c in chats]
                tasks += [asyncio.create_task(self.inject()),
                          asyncio.create_task(self.sample(child.pid))]
                await asyncio.sleep(self.args.minutes * 60)
                self.stop.set()
                await asyncio.gather(*tasks)
            elapsed = time.monotonic() - started
            await self.settle()
            expected = await self.expected_replies(chats)
            got = {c: Counter(self.fake.sent_texts(c)) for c in chats}
            lost = sum(sum((expected[c] - got[c]).values()) for c in chats)
            duplicated = sum(sum((got[c] - expected[c]).values()) for c in chats)
            fired = Counter(f"http_{c.status}_answered" for c in self.fake.calls
                            if c.status != 200)
            output = log.name
            errors = sum("Traceback" in line or " ERROR " in line
                         for line in Path(output).read_text(errors="replace").splitlines())
            return {
                "minutes": round(elapsed / 60, 2), "database": self.args.db,
                "users": self.args.users, "target_rate_per_s": self.args.rate,
                "updates_sent": self.sent, "updates_acknowledged": self.acknowledged,
                "webhook_redeliveries": dict(self.redeliveries),
                "replies_expected": sum(sum(c.values()) for c in expected.values()),
                "replies_received": len(self.fake.calls_to("sendMessage")),
                "answered_updates": self.acknowledged, "outbox_not_sent": dict(self.unsent),
                "lost": lost, "duplicated": duplicated,
                "faults_injected": dict(self.faults), "fault_answers_fired": dict(fired),
                "latency_ms_overall": {"p50": percentile(self.latencies, 0.5),
                                       "p99": percentile(self.latencies, 0.99)},
                "per_minute": self.minutes, "serve_error_lines": errors, "serve_log": output,
            }
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
            await self.fake.stop()

    async def wait_ready(self, child: subprocess.Popen[bytes]) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(900):
                if child.poll() is not None:
                    raise SystemExit("sanad serve exited during start-up")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise SystemExit("sanad serve did not become ready")


async def pg_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.db == "sqlite":
        workdir = Path(tempfile.mkdtemp(prefix="sanad-soak-"))
        path = workdir / "soak.db"
        return await Soak(args, f"sqlite+aiosqlite:///{path}", path, None).run()
    name = "sanad_soak"
    await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await pg_admin(f'CREATE DATABASE "{name}"')
    try:
        url = "postgresql+asyncpg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name
        return await Soak(args, url, None, name).run()
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0, help="updates per second, overall")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    sys.exit(0 if result["lost"] == 0 and result["duplicated"] == 0 else 1)


if __name__ == "__main__":
    main()
