"""Saturation of the shared send budget (issue #24): who gets the platform's 30 messages/s.

    .venv/bin/python bench/saturation.py [--db sqlite|postgres] [--processes K]
        [--duration S] [--users N] [--emergencies E] [--budget database|memory|redis://...]

What runs, all on 127.0.0.1:

* a fake Bot API that enforces Telegram's limits (this file with ``--fake``; the fast fake of
  ``bench/_fake_telegram.py`` plus limits): ``sendMessage`` answers 429 with ``retry_after``
  when 30 messages were accepted in the last second overall, or when a chat's bucket (bursts
  of 5, then 1/s) is empty; it records every accepted message with its CLOCK_MONOTONIC time;
* ``sanad worker`` sending a campaign to ``--subscribers`` people (more than it can reach in
  the run), and K ``sanad serve`` processes (the real CLI, production send policy), each on a
  port of its own: the load generator sends a chat's updates to one of them, as a load
  balancer that keeps a chat on one process would (per-chat limits stay per process);
* the load generator: after ``--warmup`` seconds of the campaign alone, N users write at once
  (within one second): N - E of them a greeting (answered with two messages), E of them an
  emergency message at random moments of the first ``--duration`` seconds. It waits until
  every webhook is answered, then ``--tail`` seconds of the campaign alone again.

Printed (one JSON object): ``emergency_reply_p99_s`` and ``first_reply_p99_s`` (webhook POST
to the first ``sendMessage`` of the chat at the fake), ``http_429`` (answered by the fake),
``lost`` and ``duplicated`` (each chat's messages against what a calibration user of the same
kind received; campaign chats must get one message each), ``campaign_share_of_leftover``
(campaign messages over what conversations left of the budget's rate from the rush to the end;
also against the platform's 30/s), the most messages in any one second, and the run's times.
``--db postgres`` resets the schema of ``$SANAD_BENCH_PG_URL`` (default: the local ``test_h1``
database).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench._fake_telegram import FakeState, HTTPProtocol, serve_protocol  # noqa: E402

PLATFORM_LIMIT = 30
"""Messages per second Telegram accepts from one bot."""
CHAT_BURST = 5.0
CHAT_RATE = 1.0
TOKEN = "123:abc"
SECRET = "bench-webhook-secret_0123456789"
SECRET_KEY = "bench-secret-key-0123456789abcdef"
PG_URL = os.environ.get("SANAD_BENCH_PG_URL",
                        "postgresql+asyncpg://postgres@127.0.0.1:5432/test_h1")
WRITERS_FROM = 1_000_000
SUBSCRIBERS_FROM = 5_000_000
CALIBRATION_CHATS = (900_001, 900_002)
GREETING = "مرحبا"
EMERGENCY = "أنا في خطر الآن"
_TOO_MANY = orjson.dumps({"ok": False, "error_code": 429,
                          "description": "Too Many Requests: retry after 1",
                          "parameters": {"retry_after": 1}})


# --- the fake Bot API with Telegram's limits -------------------------------------------------
class LimitedState(FakeState):
    """``FakeState`` that refuses what Telegram would: 429 above 30 messages in any second
    overall, or when a chat's bucket is empty. Refused calls are counted, not recorded."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.accepted: deque[float] = deque()
        self.chats: dict[int, tuple[float, float]] = {}
        self.refused = {"global": 0, "chat": 0}

    def answer(self, path: str, body: bytes) -> tuple[int, bytes]:
        if path == "/_bench/stats":
            return 200, orjson.dumps(self.refused)
        if path.endswith("/sendMessage"):
            now = time.monotonic()
            try:
                chat = int(orjson.loads(body).get("chat_id", 0))
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                chat = 0
            while self.accepted and now - self.accepted[0] >= 1.0:
                self.accepted.popleft()
            if len(self.accepted) >= PLATFORM_LIMIT:
                self.refused["global"] += 1
                return 429, _TOO_MANY
            tokens, last = self.chats.get(chat, (CHAT_BURST, now))
            tokens = min(CHAT_BURST, tokens + (now - last) * CHAT_RATE)
            if tokens < 1.0:
                self.chats[chat] = (tokens, now)
                self.refused["chat"] += 1
                return 429, _TOO_MANY
            self.chats[chat] = (tokens - 1.0, now)
            self.accepted.append(now)
        return super().answer(path, body)


class LimitedProtocol(HTTPProtocol):
    def _reply(self, status: int, payload: bytes, *, close: bool) -> None:
        if status != 429:
            super()._reply(status, payload, close=close)
            return
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json"
                             b"\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)


async def serve_fake(port: int) -> None:
    state = LimitedState(TOKEN)
    await serve_protocol(lambda: LimitedProtocol(state), port, backlog=4096)


# --- the run -----------------------------------------------------------------------------------
async def get(port: int, path: str) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        return orjson.loads(await reader.readexactly(length))
    finally:
        writer.close()


def update(update_id: int, chat: int, text: str) -> bytes:
    return orjson.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": text,
        "chat": {"id": chat, "type": "private", "first_name": "U"},
        "from": {"id": chat, "is_bot": False, "first_name": "U", "language_code": "ar"}}})


async def post(port: int, body: bytes, timeout: float) -> int:
    """One webhook call on a connection of its own; the HTTP status (-1: no answer)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"POST /telegram/webhook HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\nConnection: close\r\n"
                             b"X-Telegram-Bot-Api-Secret-Token: " + SECRET.encode() +
                             b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                head = await reader.readuntil(b"\r\n\r\n")
                return int(head[9:12])
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        return -1


async def read_line(proc: asyncio.subprocess.Process, what: str) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not line:
        raise RuntimeError(f"{what} exited")
    return line.decode().strip()


async def wait_healthy(port: int, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 480  # a busy machine starts slowly
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError("sanad serve exited")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            if head.startswith(b"HTTP/1.1 200"):
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("sanad serve did not become healthy")


async def drain(proc: asyncio.subprocess.Process, sink: deque[str],
                copy: Path | None = None) -> None:
    if proc.stderr is None:
        return
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(copy.open("a")) if copy else None
        async for line in proc.stderr:
            text = line.decode(errors="replace").rstrip()
            sink.append(text)
            if out is not None:
                print(text, file=out, flush=True)


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def prepare_database(args: argparse.Namespace, workdir: Path) -> str:
    if args.db == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(PG_URL)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return PG_URL


async def run_cli(env: dict[str, str], workdir: Path, *argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *argv, cwd=workdir, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 300)
    if proc.returncode != 0:
        raise RuntimeError(f"sanad {' '.join(argv)} failed: {err.decode()[-2000:]}")


async def prepare_campaign(env: dict[str, str], subscribers: int) -> None:
    """Subscribers (chat ids of their own) and a campaign started now, for the worker."""
    from bench.broadcast import add_subscribers
    from bot.config import Settings
    from bot.outreach import campaigns
    from bot.outreach.message_file import LanguageMessage, MessageFile
    from bot.outreach.segments import default_vocabulary
    from bot.store.db import create_engine
    from bot.store.repository import Store, utcnow

    settings = Settings.from_env(env)
    engine = create_engine(settings.database_url)
    store = Store.from_settings(settings, engine)
    now = utcnow()
    async with store.session() as db:
        await add_subscribers(db, store, SUBSCRIBERS_FROM, subscribers, now)
        await campaigns.create(
            db, name="saturation", segment="", vocabulary=default_vocabulary(), now=now,
            message_file=MessageFile((LanguageMessage("ar", "رسالة توعية"),)))
    async with store.session() as db:
        await campaigns.start_now(db, "saturation", utcnow())
    await engine.dispose()


async def wait_for_replies(fake_port: int, want: dict[int, int], patience: float) -> float:
    """Poll the fake until every chat has its replies or nothing new arrived for
    ``patience`` seconds; when that was (monotonic)."""
    total = sum(want.values())
    last, progress = -1, time.monotonic()
    while True:
        records = await get(fake_port, "/_bench/records")
        got = Counter(int(r[2]) for r in records if r[1] == "sendMessage" and int(r[2]) in want)
        done = sum(min(n, want[chat]) for chat, n in got.items())
        if done >= total:
            return time.monotonic()
        if done != last:
            last, progress = done, time.monotonic()
        elif time.monotonic() - progress > patience:
            return time.monotonic()
        await asyncio.sleep(2.0)


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered) + 0.5) - 1))], 3)


def max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    load_before = [round(x, 2) for x in os.getloadavg()]
    rng = random.Random(args.seed)
    webhook_times: list[float] = []
    logs: deque[str] = deque(maxlen=40)
    procs: list[asyncio.subprocess.Process] = []
    with tempfile.TemporaryDirectory(prefix="saturation-") as tmp:
        workdir = Path(tmp)
        fake = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--fake",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        procs.append(fake)
        try:
            fake_port = int((await read_line(fake, "the fake Bot API")).split()[1])
            url = await prepare_database(args, workdir)
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("TELEGRAM_", "WHATSAPP_", "SANAD_", "DATABASE_URL"))}
            env.update({
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{fake_port}/bot",
                "TELEGRAM_WEBHOOK_SECRET": SECRET, "SANAD_SECRET_KEY": SECRET_KEY,
                "SANAD_KEY_FILE": str(workdir / "key"), "DATABASE_URL": url,
                "PYTHONPATH": str(ROOT), "SANAD_SEND_BUDGET_URL": args.budget,
                # Campaigns are capped by the budget, not by their own slower rate.
                "SANAD_TELEGRAM_RATE": str(PLATFORM_LIMIT),
                # The production lease: a reply queued behind thousands keeps it (renewed
                # while it waits), so the outbox never sends it a second time.
                "SANAD_OUTBOX_LEASE_SECONDS": str(args.lease),
            })
            if args.turns_at_once:
                env["SANAD_TURNS_AT_ONCE"] = str(args.turns_at_once)
            if os.environ.get("SANAD_CACHE_DIR"):
                env["SANAD_CACHE_DIR"] = os.environ["SANAD_CACHE_DIR"]
            await run_cli(env, workdir, "db", "upgrade")
            await prepare_campaign(env, args.subscribers)
            ports = [free_port() for _ in range(args.processes)]
            for port in ports:
                procs.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port",
                    str(port), cwd=workdir, env=env, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE))
            for port, proc in zip(ports, procs[1:], strict=True):
                try:
                    await wait_healthy(port, proc)
                except RuntimeError:
                    assert proc.stderr is not None
                    with contextlib.suppress(TimeoutError):
                        tail = await asyncio.wait_for(proc.stderr.read(4000), 5)
                        print(tail.decode(errors="replace"), file=sys.stderr)
                    raise
            copies = [Path(args.logs) / f"serve-{i}.log" if args.logs else None
                      for i in range(len(ports))]
            drains = [asyncio.create_task(drain(proc, logs, copy))
                      for proc, copy in zip(procs[1:], copies, strict=True)]
            # Calibration: what one greeting and one emergency get, before the campaign starts.
            update_ids = iter(range(1, 10**9))
            calibration = {}
            for chat, text in zip(CALIBRATION_CHATS, (GREETING, EMERGENCY), strict=True):
                status = await post(ports[0], update(next(update_ids), chat, text), 120)
                if status != 200:
                    raise RuntimeError(f"calibration webhook answered {status}")
            await asyncio.sleep(5.0)  # the webhook may answer before the replies are sent
            records = await get(fake_port, "/_bench/records")
            for chat in CALIBRATION_CHATS:
                calibration[chat] = sum(1 for r in records
                                        if r[1] == "sendMessage" and r[2] == chat)
            expected = {"greeting": calibration[CALIBRATION_CHATS[0]],
                        "emergency": calibration[CALIBRATION_CHATS[1]]}
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *(["-v"] if args.logs else []), "worker",
                cwd=workdir, env=env, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
            procs.append(worker)
            drains.append(asyncio.create_task(drain(
                worker, logs, Path(args.logs) / "worker.log" if args.logs else None)))
            await asyncio.sleep(args.warmup)

            # The rush.
            writers = list(range(WRITERS_FROM, WRITERS_FROM + args.users))
            in_danger = set(rng.sample(writers, args.emergencies))
            t0 = time.monotonic()
            posts: dict[int, tuple[str, float]] = {}
            statuses: Counter[int] = Counter()

            async def write(chat: int, text: str, kind: str, at: float) -> None:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                port = ports[chat % len(ports)]
                posts[chat] = (kind, time.monotonic())
                statuses[await post(port, update(next(update_ids), chat, text),
                                    args.request_timeout)] += 1
                webhook_times.append(time.monotonic() - posts[chat][1])

            tasks = [asyncio.create_task(write(
                chat, EMERGENCY if chat in in_danger else GREETING,
                "emergency" if chat in in_danger else "greeting",
                t0 + (rng.uniform(0, args.duration) if chat in in_danger
                      else rng.uniform(0, 1.0)))) for chat in writers]
            await asyncio.gather(*tasks)
            answered = time.monotonic()
            # The webhook is answered once the turn is committed: replies may still wait in
            # the send budget. Wait for them (or for --settle seconds without progress).
            want = {chat: expected[kind] for chat, (kind, _) in posts.items()}
            replied = await wait_for_replies(fake_port, want, args.settle)
            await asyncio.sleep(max(0.0, t0 + args.duration - time.monotonic()) + args.tail)
            t_end = time.monotonic()
            records = await get(fake_port, "/_bench/records")
            refused = await get(fake_port, "/_bench/stats")
        finally:
            for proc in reversed(procs):
                await stop(proc)

    sends = [r for r in records if r[1] == "sendMessage"]
    by_chat: dict[int, list[float]] = defaultdict(list)
    for r in sends:
        by_chat[int(r[2])].append(float(r[0]))
    first = {"greeting": [], "emergency": []}  # type: dict[str, list[float]]
    lost = duplicated = 0
    for chat, (kind, at) in posts.items():
        got = sorted(t for t in by_chat.get(chat, []) if t >= at)
        if got:
            first[kind].append(got[0] - at)
        lost += max(0, expected[kind] - len(got))
        duplicated += max(0, len(got) - expected[kind])
    campaign_times = sorted(t for chat, times in by_chat.items() if chat >= SUBSCRIBERS_FROM
                            for t in times)
    campaign_per_chat = Counter(int(r[2]) for r in sends if int(r[2]) >= SUBSCRIBERS_FROM)
    duplicated += sum(n - 1 for n in campaign_per_chat.values() if n > 1)
    conversation_in_window = sum(1 for chat in posts for t in by_chat.get(chat, [])
                                 if t0 <= t <= t_end)
    campaign_in_window = sum(1 for t in campaign_times if t0 <= t <= t_end)
    window = t_end - t0
    budget_rate = PLATFORM_LIMIT * 0.9
    leftover = budget_rate * window - conversation_in_window
    all_times = sorted(float(r[0]) for r in sends)
    return {
        "db": args.db, "processes": args.processes, "workers": 1, "budget": args.budget,
        "users": args.users, "emergencies": args.emergencies,
        "emergency_reply_p99_s": p99(first["emergency"]),
        "emergency_reply_max_s": round(max(first["emergency"], default=0.0), 3),
        "emergency_reply_p50_s": (round(sorted(first["emergency"])[len(first["emergency"]) // 2],
                                        3) if first["emergency"] else None),
        "emergencies_answered": len(first["emergency"]),
        "first_reply_p99_s": p99(first["greeting"]),
        "first_reply_p50_s": (round(sorted(first["greeting"])[len(first["greeting"]) // 2], 3)
                              if first["greeting"] else None),
        "http_429": refused["global"] + refused["chat"], "http_429_by_kind": refused,
        "lost": lost, "duplicated": duplicated,
        "webhook_statuses": {str(k): v for k, v in statuses.items()},
        "campaign_share_of_leftover": round(campaign_in_window / leftover, 3)
        if leftover > 0 else None,
        "campaign_share_of_platform_leftover": round(
            campaign_in_window / (PLATFORM_LIMIT * window - conversation_in_window), 3),
        "campaign_sent_in_window": campaign_in_window,
        "campaign_sent_total": len(campaign_times),
        "campaign_first_send_s": (round(campaign_times[0] - t0, 1) if campaign_times
                                  else None),
        "conversation_sent_in_window": conversation_in_window,
        "window_s": round(window, 1), "rush_answered_after_s": round(answered - t0, 1),
        "replies_done_after_s": round(replied - t0, 1),
        "webhook_p99_s": p99(webhook_times), "webhook_max_s": round(max(webhook_times,
                                                                          default=0.0), 3),
        "max_messages_in_any_second": max_in_window(all_times, 1.0),
        "expected_per_turn": expected,
        "load_average_before": load_before,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "log_tail": [line for line in logs if "WARNING" in line or "ERROR" in line][-5:],
    }


async def ask_latency(asks: int) -> dict[str, Any]:
    """Round trip of one budget ask (``take``) on each shared store: the figure behind the
    choice of the default (``--asks N``; PostgreSQL at ``$SANAD_BENCH_PG_URL``, Redis db 1)."""
    from bot.config import Settings
    from bot.sendbudget.config import BudgetConfig
    from bot.sendbudget.database import DatabaseBackend
    from bot.sendbudget.redis_backend import RedisBackend
    from bot.store.db import create_engine, upgrade
    from bot.store.repository import Store

    limits = BudgetConfig().limits_for("telegram")
    out: dict[str, Any] = {}

    async def timed(name: str, take: Any) -> None:
        times = []
        for n in range(asks):
            began = time.perf_counter()
            await take(f"p{n % 3}", n % 5, 8, None)
            times.append(time.perf_counter() - began)
        times.sort()
        out[name] = {"p50_ms": round(times[len(times) // 2] * 1000, 2),
                     "p99_ms": round(times[int(len(times) * 0.99)] * 1000, 2)}

    with tempfile.TemporaryDirectory() as tmp:
        for name, url in (("sqlite", f"sqlite+aiosqlite:///{tmp}/asks.db"),
                          ("postgres", PG_URL)):
            if name == "postgres":
                await prepare_database(argparse.Namespace(db="postgres"), Path(tmp))
            engine = create_engine(url)
            await upgrade(engine)
            store = Store.from_settings(Settings.from_env(
                {"DATABASE_URL": url, "SANAD_SECRET_KEY": SECRET_KEY}), engine)
            await timed(f"database_{name}",
                        DatabaseBackend(store, "telegram:asks", limits).take)
            await engine.dispose()
    from redis.asyncio import from_url

    client = from_url(os.environ.get("SANAD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"))
    await timed("redis", RedisBackend(client, "telegram:asks", limits,
                                      prefix="sanad:bench:A:").take)
    await client.delete("sanad:bench:A:telegram:asks", "sanad:bench:A:telegram:asks:demand")
    await client.aclose()
    out["asks"] = asks
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out


def _raise_priority() -> None:
    """The fake stamps each message when it reads it: on a busy machine a starved fake would
    read a backlog at once and see a burst the bot never sent. It is light; give it the CPU
    first (when allowed)."""
    with contextlib.suppress(OSError):
        os.nice(-10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--processes", type=int, default=2, help="sanad serve processes")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds over which the emergencies arrive")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--emergencies", type=int, default=20)
    parser.add_argument("--subscribers", type=int, default=8000)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--tail", type=float, default=5.0)
    parser.add_argument("--budget", default="database",
                        help="SANAD_SEND_BUDGET_URL of every process")
    parser.add_argument("--lease", type=int, default=60,
                        help="SANAD_OUTBOX_LEASE_SECONDS (the default: the keeper renews it)")
    parser.add_argument("--turns-at-once", type=int, default=0,
                        help="SANAD_TURNS_AT_ONCE of the serve processes (0: their default)")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="after the rush, seconds without a new reply before giving up")
    parser.add_argument("--request-timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--logs", help="copy the processes' logs into this directory")
    parser.add_argument("--asks", type=int, default=0,
                        help="instead: time N budget asks on each shared store")
    args = parser.parse_args()
    if args.fake:
        _raise_priority()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_fake(0))
        return
    if args.asks:
        print(json.dumps(asyncio.run(ask_latency(args.asks))))
        return
    print(json.dumps(asyncio.run(measure(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
