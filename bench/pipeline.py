"""End-to-end Telegram pipeline benchmark: webhook POST in, ``sendMessage`` out. Prints JSON.

    .venv/bin/python bench/pipeline.py [--db sqlite|postgres] [--processes K] [--users N]
        [--concurrency C] [--rate R] [--duration S | --messages M] [--mode pipeline|memory]
        [--profile /tmp/profile.txt] [--bot-cpu-limit CORES]

What runs, all on 127.0.0.1:

* a fast fake Bot API (``bench/_fake_telegram.py``) in its own process, so that its CPU is not
  charged to the bot; it records every call with its CLOCK_MONOTONIC time;
* K bot processes listening on one port with ``SO_REUSEPORT``. By default each is this file in
  ``--serve-worker`` mode: exactly what ``cmd_serve`` does (``build(settings)``, the Telegram
  channel, ``create_app`` with the back office, ``web.TCPSite(..., reuse_port=True)``) but with
  the Telegram send policy lifted (below). ``--server cli`` runs the real
  ``sanad serve --reuse-port`` instead (production send policy);
* this process, the load generator: N distinct users (distinct chat ids), C of them at a time,
  each playing a realistic conversation (greeting, menu taps as callback queries, awareness
  next/next, screening answers tapped or typed, free text in ar/en/fr/Arabizi, a request for a
  person). A user sends its next message once the webhook answered (which the channel does
  after the replies were sent). ``--rate R`` paces the whole population at R messages/s
  (latency at a given load); without it the loop is closed (maximum throughput).

The Telegram send policy (1 message/s per chat, 30/s per process) would cap throughput at 30
sends/s and put per-chat sleeps into the latency, and the engine's flood guard holds a user to
about 1 message/s after a burst: 200 simulated users making 500 messages/s are faster than
people type, so the benchmark lifts both (``SendPolicy`` of the channel, ``SANAD_FLOOD_RATE``/
``SANAD_FLOOD_BURST``) unless ``--limits production`` is given (``--server cli`` always has
the send policy).

Measured (after one calibration user per script and a warm-up, both checked, not counted):
answered messages/s; latency from the webhook POST to the turn's last ``sendMessage`` at the
fake (p50/p95/p99), and of the webhook answer itself; CPU seconds of the bot processes per
1,000 messages (/proc/<pid>/stat); peak RSS (VmHWM) and RSS after the run; correctness: each
turn's replies are matched by chat id and time window (a chat's turns never overlap) against
what the calibration user of the same script received — count, first characters and buttons —
so a lost, duplicated or misrouted reply is caught, as is a missing answerCallbackQuery (made
at the fake, or named in the webhook's 200 answer, which the load generator performs the way
Telegram does: it counts it).

``--bot-cpu-limit CORES`` caps each bot process at CORES of CPU (a cgroup quota,
``bench/_cpu_limit.py``): on a machine with fewer cores than the bots, PostgreSQL and the load
generator need, K capped processes show what K cores of their own would give.

``--mode memory``: 20,000 distinct users (default) each play the first 3 messages of a script,
then the RSS of the bot process is reported (target ≤ 250 MB).

``--profile PATH`` records the first bot process with py-spy during the measured phase (PATH
ending in .svg: a flame graph; anything else: collapsed stacks) and adds the top functions by
self and by inclusive share of samples to the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a file, bench/ is on sys.path and bench/nlu.py would shadow the nlu package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench._cpu_limit import CpuLimits  # noqa: E402
from tests.telegram.updates import Updates  # noqa: E402

TOKEN = "123:abc"
SECRET = "bench-webhook-secret_0123456789"
SECRET_KEY = "bench-secret-key-0123456789abcdef"
WEBHOOK = "/telegram/webhook"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_DB = f"sanad_pipeline_{os.getpid()}"
"""One database per run: two benchmarks sharing a name would drop each other's tables."""
REQUEST_TIMEOUT = 30.0
TARGETS = {"turns_per_s": 500, "p99_ms": 60, "rss_mb_after_20000_users": 250,
           "two_process_speedup": 1.6}
CLK_TCK = os.sysconf("SC_CLK_TCK")

# --- conversations -------------------------------------------------------------------------
# A step is ("text", words) or ("tap", callback data). Taps must be among the buttons of the
# previous turn's replies: the calibration checks it.
Step = tuple[str, str]


def _screening_answers(typed: dict[int, str], tap: str = "sc:ans:no") -> list[Step]:
    return [("text", typed[i]) if i in typed else ("tap", tap) for i in range(13)]


SCRIPTS: dict[str, tuple[str, int, list[Step]]] = {
    # name: (Telegram language_code, weight, steps)
    "ar_learn": ("ar", 25, [
        ("text", "السلام عليكم يا سند"),
        ("tap", "menu:learn"),
        ("tap", "aw:open:check_job_offer"),
        ("tap", "aw:next:check_job_offer:1"),
        ("tap", "aw:next:check_job_offer:2"),
        ("text", "ازاي اعرف ان عرض الشغل ده نصب؟"),  # a follow-up question: answered
        ("tap", "aw:next:check_job_offer:2"),  # "continue reading": back where they were
        ("tap", "aw:topics"),
        ("tap", "menu"),
        ("text", "شكرا يا سند"),
    ]),
    "en_screening": ("en", 20, [
        ("text", "hello"),
        ("tap", "menu:check"),
        ("tap", "sc:consent:yes"),
        ("tap", "sc:age:25_plus"),
        *_screening_answers({0: "yes", 3: "no", 7: "nope", 10: "no"}),
        ("tap", "menu"),
    ]),
    "ar_screening_typed": ("ar", 15, [
        ("text", "مرحبا"),
        ("text", "عايز اعمل الاختبار"),
        ("text", "ايوه"),
        ("text", "30"),
        *_screening_answers({i: ("لا" if i % 3 else "لأ") for i in range(13)}),
        ("tap", "menu"),
    ]),
    "fr_free_text": ("fr", 15, [
        ("text", "bonjour"),
        ("text", "je veux connaître mes droits au travail"),
        ("tap", "aw:next:know_your_rights:1"),
        ("tap", "aw:next:know_your_rights:2"),
        ("text", "c'est quoi la traite des personnes ?"),
        ("tap", "aw:topics"),
        ("text", "merci beaucoup"),
    ]),
    "arabizi": ("ar", 20, [
        ("text", "salam 3alykom ya sanad"),
        ("text", "eh howa el etgar bel bashar bezabt"),
        ("tap", "aw:next:what_is_trafficking:1"),
        ("text", "ayez a3raf 7o2o2y fel shoghl"),
        ("text", "3ayez a3mel el test"),
        ("tap", "sc:consent:no"),
        ("text", "shokraaan ya basha"),
    ]),
    "en_human": ("en", 5, [
        ("text", "hi"),
        ("text", "is this job offer a scam?"),
        ("text", "I want to talk to a person"),
        ("text", "my boss has not paid my salary for three months"),
        ("tap", "ho:end"),
    ]),
}
MEMORY_STEPS = 2
"""--mode memory: each user plays the first messages of a script (greeting, then a tap or
free text), enough to create the user everywhere per-user state lives."""
WARMUP_STEPS = 3


def script_cycle() -> Iterator[str]:
    """Script names in proportion to their weights, interleaved."""
    names = [n for n, (_, w, _) in SCRIPTS.items() for _ in range(w)]
    # interleave: spread each script over the cycle instead of runs of the same one
    order = sorted(range(len(names)), key=lambda i: (i * 7919) % len(names))
    return itertools.cycle([names[i] for i in order])


@dataclass
class User:
    chat_id: int
    script: str
    steps: list[Step]
    builder: Updates
    phase: str


@dataclass
class TurnRecord:
    chat_id: int
    script: str
    index: int
    kind: str
    phase: str
    update_id: int
    t_post: float
    t_resp: float
    status: int
    answered_callback: str = ""
    """The callback query the webhook's 200 answer answered (``answerCallbackQuery`` in the
    body: Telegram performs it), or empty."""


@dataclass
class Population:
    users: list[User]
    update_ids: itertools.count[int]

    @classmethod
    def make(cls, count: int, first_chat: int, phase: str, update_ids: itertools.count[int],
             steps: int | None = None, scripts: list[str] | None = None) -> Population:
        names = scripts or list(itertools.islice(script_cycle(), count))
        users = []
        for i in range(count):
            name = names[i % len(names)]
            lang, _, script = SCRIPTS[name]
            chat = first_chat + i
            builder = Updates(chat_id=chat, language_code=lang, _update_ids=update_ids)
            users.append(User(chat, name, script[:steps] if steps else list(script), builder,
                              phase))
        return cls(users, update_ids)


def update_body(user: User, step: Step) -> tuple[int, bytes]:
    kind, value = step
    update = user.builder.message(value) if kind == "text" else user.builder.callback(value)
    return update["update_id"], orjson.dumps(update)


# --- HTTP client (load generator) ----------------------------------------------------------
class Connection:
    """One keep-alive HTTP/1.1 connection to the bot; one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.head = (f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     f"Content-Type: application/json\r\n"
                     f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n").encode()

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """The HTTP status and body, or -1 on a network failure or timeout."""
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(
                        "127.0.0.1", self.port)
                assert self.reader is not None
                self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                head = await self.reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                close = False
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                answer = await self.reader.readexactly(length) if length else b""
                if close:
                    self.close()
                return status, answer
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            self.close()
            return -1, b""

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pacer:
    """Spaces sends ``1/rate`` apart over all users (no catch-up burst after a stall)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        at = max(self.next, now)
        self.next = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


@dataclass
class Budget:
    """When to stop starting new messages: a deadline and/or a count."""

    deadline: float | None = None
    messages: int | None = None
    started: int = 0

    def take(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        if self.messages is not None and self.started >= self.messages:
            return False
        self.started += 1
        return True


async def play(population: Population, port: int, concurrency: int, pacer: Pacer,
               budget: Budget, records: list[TurnRecord]) -> None:
    """C workers; each takes the next user and plays its conversation to the end."""
    queue = iter(population.users)
    stopped = False

    async def worker() -> None:
        nonlocal stopped
        conn = Connection(port)
        try:
            while not stopped:
                user = next(queue, None)
                if user is None:
                    return
                for index, step in enumerate(user.steps):
                    await pacer.wait()
                    if stopped or not budget.take():
                        stopped = True
                        return
                    update_id, body = update_body(user, step)
                    t_post = time.monotonic()
                    status, answer = await conn.post(body)
                    records.append(TurnRecord(user.chat_id, user.script, index, step[0],
                                              user.phase, update_id, t_post, time.monotonic(),
                                              status, callback_answered(status, answer)))
                    if status != 200:
                        break  # the conversation cannot go on sensibly
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))


def callback_answered(status: int, answer: bytes) -> str:
    """What Telegram would do with the webhook's answer: the ``answerCallbackQuery`` it
    names (its query id), if any."""
    if status != 200 or not answer.startswith(b"{"):
        return ""
    method = orjson.loads(answer)
    if method.get("method") != "answerCallbackQuery":
        return ""
    return str(method.get("callback_query_id", ""))


# --- processes -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_fields(path: str) -> tuple[float, float]:
    """(user, system) CPU seconds from a /proc/.../stat file."""
    with open(path) as f:
        stat = f.read()
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    user, system = _cpu_fields(f"/proc/{pid}/stat")
    return user + system


def cpu_by_thread(pid: int) -> dict[int, tuple[float, float]]:
    """(user, system) CPU seconds of each thread; the main thread's id is the pid."""
    out = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            out[int(task)] = _cpu_fields(f"/proc/{pid}/task/{task}/stat")
    return out


def cpu_split(pids: list[int], before: list[dict[int, tuple[float, float]]]
              ) -> dict[str, float]:
    """CPU seconds since ``before``: user and system time, main thread and other threads
    (aiosqlite runs each SQLite connection in a thread of its own)."""
    user = system = main = 0.0
    for pid, start in zip(pids, before, strict=True):
        for tid, (u, s) in cpu_by_thread(pid).items():
            u0, s0 = start.get(tid, (0.0, 0.0))
            user += u - u0
            system += s - s0
            if tid == pid:
                main += (u - u0) + (s - s0)
    total = user + system
    return {"user_s": round(user, 2), "system_s": round(system, 2),
            "main_thread_pct": round(100 * main / total, 1) if total else 0.0}


def memory_mb(pid: int) -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return {"rss_mb": out.get("VmRSS", 0.0), "peak_rss_mb": out.get("VmHWM", 0.0)}


async def read_line(proc: asyncio.subprocess.Process, timeout: float, what: str) -> str:
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    except TimeoutError:
        raise RuntimeError(f"{what} did not start within {timeout:.0f} s") from None
    if not line:
        err = b""
        if proc.stderr is not None:
            with contextlib.suppress(TimeoutError):
                err = await asyncio.wait_for(proc.stderr.read(), 2)
        raise RuntimeError(f"{what} exited: {err.decode(errors='replace')[-2000:]}")
    return line.decode().strip()


async def stop_process(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        await asyncio.wait_for(proc.wait(), 15)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class Fake:
    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(_HERE / "_fake_telegram.py"), "--port", "0", "--token", TOKEN,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        self.port = int((await read_line(self.proc, 30, "the fake Bot API")).split()[1])

    async def _get(self, path: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            return await reader.readexactly(length)
        finally:
            writer.close()

    async def records(self) -> list[list[Any]]:
        return orjson.loads(await self._get("/_bench/records"))

    async def reset(self) -> None:
        await self._get("/_bench/reset")


def bot_env(args: argparse.Namespace, fake_port: int, database_url: str,
            workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "WHATSAPP_", "SANAD_", "DATABASE_URL"))}
    env.update({
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{fake_port}/bot",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "SANAD_SECRET_KEY": SECRET_KEY,
        "SANAD_KEY_FILE": str(workdir / "key"),
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        "SANAD_EVENT_LOOP": args.loop,
    })
    if args.limits == "off":
        # The flood guard lets a user send ~1 message/s after a burst of 10; the simulated
        # users (200 of them making 500 messages/s) are faster than people type.
        env.update({"SANAD_FLOOD_RATE": "1000000", "SANAD_FLOOD_BURST": "1000000"})
    if os.environ.get("SANAD_CACHE_DIR"):
        env["SANAD_CACHE_DIR"] = os.environ["SANAD_CACHE_DIR"]
    return env


async def start_bots(args: argparse.Namespace, env: dict[str, str], port: int,
                     workdir: Path) -> list[asyncio.subprocess.Process]:
    procs = []
    for _ in range(args.processes):
        if args.server == "cli":
            cmd = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1",
                   "--port", str(port), "--reuse-port"]
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-worker",
                   "--port", str(port), "--limits", args.limits]
        procs.append(await asyncio.create_subprocess_exec(
            *cmd, cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        ))
    if args.server == "cli":
        for i, proc in enumerate(procs):
            await wait_listening(proc, f"sanad serve {i}")
        await wait_healthy(port, procs[0])
    else:
        for i, proc in enumerate(procs):
            line = await read_line(proc, 120, f"bot process {i}")
            if not line.startswith("ready"):
                raise RuntimeError(f"bot process {i}: unexpected {line!r}")
    return procs


async def wait_listening(proc: asyncio.subprocess.Process, what: str) -> None:
    """Read ``sanad serve``'s log until it says it listens (each process of K)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = await asyncio.wait_for(proc.stderr.readline(), deadline - time.monotonic())
        except TimeoutError:
            break
        if not line:
            raise RuntimeError(f"{what} exited")
        if b"listening on" in line:
            return
    raise RuntimeError(f"{what} did not start within 120 s")


async def wait_healthy(port: int, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError("sanad serve exited")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            if head.startswith(b"HTTP/1.1 200"):
                return
        except (OSError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("sanad serve did not become healthy")


async def drain_stderr(proc: asyncio.subprocess.Process, sink: list[str]) -> None:
    """Keep the pipe from filling up; keep the last lines for the report."""
    if proc.stderr is None:
        return
    async for line in proc.stderr:
        sink.append(line.decode(errors="replace").rstrip())
        del sink[:-20]


# --- database ------------------------------------------------------------------------------
async def pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_backends(database: str) -> list[int]:
    """Server processes serving ``database`` (to charge PostgreSQL's CPU to the run)."""
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


def postgres_server_cpu() -> float:
    """CPU seconds of every PostgreSQL server process on the machine, the ones that ended
    included (the postmaster's ``cutime``/``cstime``): the whole server's work, background
    writers too; unlike the bench database's backends, not a lower bound."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            if not stat[stat.find("(") + 1:stat.rfind(")")].startswith("postgres"):
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            total += sum(int(x) for x in fields[11:13]) / CLK_TCK
            if fields[1] == "1" or not _is_postgres(int(fields[1])):  # the postmaster
                total += sum(int(x) for x in fields[13:15]) / CLK_TCK
    return total


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().startswith("postgres")
    except OSError:
        return False


def cpu_of(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[pid] = cpu_seconds(pid)
    return out


async def prepare_database(args: argparse.Namespace, workdir: Path) -> str:
    if args.db == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await pg_admin(f'DROP DATABASE IF EXISTS "{args.pg_db}" WITH (FORCE)')
    await pg_admin(f'CREATE DATABASE "{args.pg_db}"')
    base = PG_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{args.pg_db}"


async def migrate(env: dict[str, str], workdir: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "db", "upgrade", cwd=workdir, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    if proc.returncode != 0:
        raise RuntimeError(f"sanad db upgrade failed: {err.decode(errors='replace')[-2000:]}")


# --- checking and summarising --------------------------------------------------------------
Reply = tuple[str, str]  # (first characters of the text, buttons)


@dataclass
class Expected:
    replies: dict[tuple[str, int], list[Reply]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def assign(turns: list[TurnRecord], fake_records: list[list[Any]]
           ) -> tuple[dict[int, list[list[Any]]], int]:
    """The Bot API calls of each turn (by position in ``turns``), and how many calls belong to
    no turn. A ``sendMessage`` belongs to the turn of its chat whose window (webhook POST to
    its answer) holds it: a chat's turns never overlap. An ``answerCallbackQuery`` names its
    query, ``cb<update_id>``, and must fall in that update's window too."""
    per_turn: dict[int, list[list[Any]]] = defaultdict(list)
    turns_of_chat: dict[int, list[int]] = defaultdict(list)
    by_query: dict[str, int] = {}

    def end(i: int) -> float:
        # A turn whose webhook failed (timeout) ends its user's conversation: a reply that
        # comes later is late, not stray.
        return turns[i].t_resp + _SLACK if turns[i].status == 200 else float("inf")

    for i, turn in enumerate(turns):
        turns_of_chat[turn.chat_id].append(i)
        if turn.kind == "tap":
            by_query[f"cb{turn.update_id}"] = i
    sent: dict[int, list[list[Any]]] = defaultdict(list)
    stray = 0
    for rec in fake_records:
        if rec[1] == "sendMessage":
            sent[rec[2]].append(rec)
        elif rec[1] == "answerCallbackQuery":
            i = by_query.get(rec[3], -1)
            if i >= 0 and turns[i].t_post - _SLACK <= rec[0] <= end(i):
                per_turn[i].append(rec)
            else:
                stray += 1
    for chat, recs in sent.items():
        recs.sort(key=lambda r: r[0])
        order = sorted(turns_of_chat.get(chat, []), key=lambda i: turns[i].t_post)
        k = 0
        for rec in recs:
            while k < len(order) and rec[0] > end(order[k]):
                k += 1
            if k < len(order) and rec[0] >= turns[order[k]].t_post - _SLACK:
                per_turn[order[k]].append(rec)
            else:
                stray += 1
    for calls in per_turn.values():
        calls.sort(key=lambda r: r[0])
    return per_turn, stray


_SLACK = 1e-4
"""Seconds of tolerance on a turn's window (both clocks are CLOCK_MONOTONIC)."""


def calibrate(turns: list[TurnRecord], fake_records: list[list[Any]],
              steps_of: dict[str, list[Step]]) -> Expected:
    expected = Expected()
    per_turn, stray = assign(turns, fake_records)
    if stray:
        expected.problems.append(f"calibration: {stray} Bot API calls outside any turn")
    previous_buttons: dict[str, set[str]] = {}
    for i, turn in enumerate(turns):
        replies = [(r[3], r[4]) for r in per_turn.get(i, []) if r[1] == "sendMessage"]
        expected.replies[(turn.script, turn.index)] = replies
        step = steps_of[turn.script][turn.index]
        if turn.status != 200:
            expected.problems.append(f"{turn.script}[{turn.index}]: webhook {turn.status}")
        if not replies:
            expected.problems.append(f"{turn.script}[{turn.index}] {step}: no reply")
        offered = previous_buttons.get(turn.script)
        if step[0] == "tap" and offered is not None and step[1] not in offered:
            expected.problems.append(f"{turn.script}[{turn.index}]: taps {step[1]!r}, "
                                     f"not among the buttons offered: {sorted(offered)}")
        previous_buttons[turn.script] = {b for _, buttons in replies
                                         for b in buttons.split("|") if b}
    return expected


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]

    return {"p50": round(pct(50) * 1000, 2), "p95": round(pct(95) * 1000, 2),
            "p99": round(pct(99) * 1000, 2), "max": round(ordered[-1] * 1000, 2),
            "mean": round(statistics.fmean(ordered) * 1000, 2)}


def check(turns: list[TurnRecord], fake_records: list[list[Any]], expected: Expected
          ) -> tuple[dict[str, Any], list[float], list[float], int]:
    """Correctness counters, end-to-end latencies and first-reply latencies (measured turns
    only), and the number of replies sent in the measured phase."""
    per_turn, stray = assign(turns, fake_records)
    counts: Counter[str] = Counter()
    e2e: list[float] = []
    first: list[float] = []
    replies_measured = 0
    examples: list[str] = []
    for i, turn in enumerate(turns):
        calls = per_turn.get(i, [])
        sent = [r for r in calls if r[1] == "sendMessage"]
        answers = sum(1 for r in calls if r[1] == "answerCallbackQuery")
        answers += turn.answered_callback == f"cb{turn.update_id}"
        want = expected.replies.get((turn.script, turn.index))
        counts["turns"] += 1
        if turn.status != 200:
            counts[f"webhook_{turn.status}" if turn.status > 0 else "network_errors"] += 1
        if want is None:
            counts["unchecked"] += 1
        else:
            got = [(r[3], r[4]) for r in sent]
            if len(got) < len(want):
                counts["lost_replies"] += len(want) - len(got)
            elif len(got) > len(want):
                counts["duplicate_replies"] += len(got) - len(want)
            elif got != want:
                counts["mismatched_turns"] += 1
            if got != want and len(examples) < 5:
                examples.append(f"chat {turn.chat_id} {turn.script}[{turn.index}]: "
                                f"{len(got)} replies, expected {len(want)}")
        want_answers = 1 if turn.kind == "tap" else 0
        if answers < want_answers:
            counts["callback_answers_missing"] += 1
        elif answers > want_answers:
            counts["callback_answers_extra"] += answers - want_answers
        if turn.status != 200:
            counts["late_replies"] += sum(1 for r in sent if r[0] > turn.t_resp)
        if turn.phase == "measured" and sent and turn.status == 200:
            replies_measured += len(sent)
            e2e.append(sent[-1][0] - turn.t_post)
            first.append(sent[0][0] - turn.t_post)
    problems = sum(v for k, v in counts.items() if k not in ("turns",))
    result: dict[str, Any] = {"turns_checked": counts["turns"],
                              "ok": problems == 0 and stray == 0,
                              "lost_replies": counts["lost_replies"],
                              "duplicate_replies": counts["duplicate_replies"],
                              "mismatched_turns": counts["mismatched_turns"],
                              "stray_calls": stray}
    result.update({k: v for k, v in counts.items() if k not in result and k != "turns"})
    if examples:
        result["examples"] = examples
    return result, e2e, first, replies_measured


def profile_summary(path: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by self and inclusive share of py-spy's samples (collapsed stacks)."""
    self_counts: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            incl[frame] += count
        leaf = frames[-1]
        where = leaf[leaf.rfind("(") + 1:].split(":")[0] if "(" in leaf else leaf
        by_file[_package(where)] += count
    if not total:
        return {"samples": 0}

    def share(counter: Counter[str], n: int) -> list[list[Any]]:
        return [[name, round(100 * c / total, 1)] for name, c in counter.most_common(n)]

    return {"samples": total, "self_pct": share(self_counts, top),
            "inclusive_pct": share(incl, top * 2), "self_by_package_pct": share(by_file, 12)}


def _package(filename: str) -> str:
    """py-spy names files relative to their sys.path entry: the package is the first part."""
    parts = [p for p in filename.replace("\\", "/").split("/") if p]
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    if not parts:
        return filename
    if parts[0] in ("bot", "nlu", "handoff") and len(parts) > 1:
        return "/".join(parts[:2])  # the product: by module
    return parts[0].removesuffix(".py")


# --- the run -------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="sanad-pipeline-"))
    fake = Fake()
    bots: list[asyncio.subprocess.Process] = []
    stderr_tails: list[list[str]] = []
    drains: list[asyncio.Task[None]] = []
    profiler: subprocess.Popen[bytes] | None = None
    load_before = os.getloadavg()
    machine_split: dict[str, float] | None = None
    cpu_caps = CpuLimits(args.bot_cpu_limit) if args.bot_cpu_limit else None
    out: dict[str, Any] = {
        "benchmark": "pipeline", "mode": args.mode, "date": dt.date.today().isoformat(),
        "db": args.db, "processes": args.processes, "server": args.server,
        "limits": args.limits, "event_loop": args.loop, "users": args.users,
        "concurrency": args.concurrency, "rate": args.rate or "closed loop",
    }
    try:
        database_url = await prepare_database(args, workdir)
        await fake.start()
        env = bot_env(args, fake.port, database_url, workdir)
        await migrate(env, workdir)
        port = free_port()
        bots = await start_bots(args, env, port, workdir)
        if cpu_caps is not None:
            for proc in bots:
                cpu_caps.cap(proc.pid)
        for proc in bots:
            stderr_tails.append([])
            drains.append(asyncio.create_task(drain_stderr(proc, stderr_tails[-1])))
        startup_rss = [memory_mb(p.pid)["rss_mb"] for p in bots]

        update_ids = itertools.count(1)
        # 1. calibration: one user per script, one message at a time
        calib_pop = Population.make(len(SCRIPTS), 1_000, "calibration", update_ids,
                                    scripts=list(SCRIPTS))
        calib_turns: list[TurnRecord] = []
        for user in calib_pop.users:
            await play(Population([user], update_ids), port, 1, Pacer(0), Budget(),
                       calib_turns)
        await asyncio.sleep(0.2)
        steps_of = {n: s for n, (_, _, s) in SCRIPTS.items()}
        expected = calibrate(calib_turns, await fake.records(), steps_of)
        if args.show_calibration:
            for turn in calib_turns:
                print(f"{turn.script}[{turn.index}] {steps_of[turn.script][turn.index]}",
                      file=sys.stderr)
                for text, buttons in expected.replies[(turn.script, turn.index)]:
                    print(f"    -> {text!r} [{buttons}]", file=sys.stderr)
        await fake.reset()

        steps = args.memory_steps if args.mode == "memory" else None
        turns: list[TurnRecord] = []
        # 2. warm-up: checked, not measured
        if args.warmup:
            warm = Population.make(args.warmup, 2_000_000, "warmup", update_ids,
                                   steps=WARMUP_STEPS)
            await play(warm, port, args.concurrency, Pacer(0), Budget(), turns)
        # 3. measured
        population = Population.make(args.users, 10_000_000, "measured", update_ids,
                                     steps=steps)
        budget = Budget(messages=args.messages)
        limit = args.duration if args.duration else args.timeout
        cpu0 = [cpu_seconds(p.pid) for p in bots]
        threads0 = [cpu_by_thread(p.pid) for p in bots]
        fake_cpu0 = cpu_seconds(fake.proc.pid) if fake.proc else 0.0
        pg_cpu0 = cpu_of(await pg_backends(args.pg_db)) if args.db == "postgres" else {}
        pg_server0 = postgres_server_cpu() if args.db == "postgres" else 0.0
        own_cpu0 = time.process_time()
        machine0 = machine_cpu()
        if args.profile:
            profiler = start_profiler(args.profile, bots[0].pid)
        t0 = time.monotonic()
        budget.deadline = t0 + limit
        first_measured = len(turns)
        await play(population, port, args.concurrency, Pacer(args.rate), budget, turns)
        wall = time.monotonic() - t0
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            await asyncio.to_thread(profiler.wait, 60)
        cpu = [cpu_seconds(p.pid) - c for p, c in zip(bots, cpu0, strict=True)]
        split = cpu_split([p.pid for p in bots], threads0)
        fake_cpu = (cpu_seconds(fake.proc.pid) if fake.proc else 0.0) - fake_cpu0
        pg_cpu = pg_server = None
        if args.db == "postgres":
            pg_now = cpu_of(await pg_backends(args.pg_db))
            pg_cpu = sum(c - pg_cpu0.get(pid, 0.0) for pid, c in pg_now.items())
            pg_server = postgres_server_cpu() - pg_server0
        own_cpu = time.process_time() - own_cpu0
        machine_split = machine_cpu_split(machine0, machine_cpu())
        memory = [memory_mb(p.pid) for p in bots]
        if cpu_caps is not None:
            out["bot_cpu_limit"] = {"cores_per_process": cpu_caps.cores,
                                    "throttled_s": cpu_caps.throttled_s()}
        await asyncio.sleep(0.2)

        measured = turns[first_measured:]
        correctness, e2e, first, replies = check(turns, await fake.records(), expected)
        correctness["script_problems"] = expected.problems
        answered = sum(1 for t in measured if t.status == 200)
        webhook = [t.t_resp - t.t_post for t in measured if t.status == 200]
        out.update({
            "measured": {"messages": len(measured), "answered": answered,
                         "replies_sent": replies, "seconds": round(wall, 2),
                         "messages_per_s": round(answered / wall, 1) if wall else 0.0,
                         "replies_per_s": round(replies / wall, 1) if wall else 0.0,
                         "stopped_by": _stopped_by(args, budget, population, measured)},
            "latency_ms": {"to_last_reply": percentiles(e2e),
                           "to_first_reply": percentiles(first),
                           "webhook_answer": percentiles(webhook)},
            "cpu": {"bot_s_per_1000_messages": round(1000 * sum(cpu) / answered, 2)
                    if answered else None,
                    "bot_cores_busy": round(sum(cpu) / wall, 2) if wall else None,
                    "bot_s_per_process": [round(c, 2) for c in cpu],
                    "bot_split": split,
                    "fake_bot_api_cores_busy": round(fake_cpu / wall, 2) if wall else None,
                    # PostgreSQL's backends for the bench database still connected at the end
                    # (a backend that closed during the run is missed): a lower bound
                    "postgres_s_per_1000_messages": round(1000 * pg_cpu / answered, 2)
                    if pg_cpu is not None and answered else None,
                    "postgres_server_cores_busy": round(pg_server / wall, 2)
                    if pg_server is not None and wall else None,
                    "load_generator_cores_busy": round(own_cpu / wall, 2) if wall else None},
            "memory": {"startup_rss_mb": startup_rss,
                       "rss_mb_after": [m["rss_mb"] for m in memory],
                       "peak_rss_mb": [m["peak_rss_mb"] for m in memory],
                       "peak_rss_mb_total": round(sum(m["peak_rss_mb"] for m in memory), 1)},
            "correctness": correctness,
        })
        if args.mode == "memory":
            out["memory"]["distinct_users"] = len({t.chat_id for t in measured})
        out["targets"] = targets(args, out)
        if args.profile:
            out["profile"] = {"path": str(args.profile)}
            if not str(args.profile).endswith(".svg"):
                out["profile"].update(profile_summary(Path(args.profile)))
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        for proc in bots:
            await stop_process(proc, signal.SIGINT if args.server == "cli" else signal.SIGTERM)
        if cpu_caps is not None:
            cpu_caps.remove()
        for task in drains:
            task.cancel()
        if fake.proc is not None:
            await stop_process(fake.proc)
        if args.db == "postgres":
            with contextlib.suppress(Exception):
                await pg_admin(f'DROP DATABASE IF EXISTS "{args.pg_db}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    errors = [line for tail in stderr_tails for line in tail if line]
    if errors:
        out["bot_stderr_tail"] = errors[-10:]
    out["code"] = git_state()
    out["machine"] = {"nproc": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                      "cpu_during_run": machine_split,
                      "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                      "python": sys.version.split()[0]}
    return out


def machine_cpu() -> list[int]:
    """The machine's CPU time so far, in ticks: /proc/stat's first line (user, nice, system,
    idle, iowait, irq, softirq, steal)."""
    with open("/proc/stat") as stat:
        return [int(x) for x in stat.readline().split()[1:9]]


def machine_cpu_split(before: list[int], after: list[int]) -> dict[str, float]:
    """Shares of all the machine's cores during the run: what ran, what idled and what the
    hypervisor took (``steal``: another VM had the core)."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta) or 1
    user, nice, system, idle, iowait, irq, softirq, steal = delta
    return {"busy_pct": round(100 * (user + nice + system + irq + softirq) / total, 1),
            "idle_pct": round(100 * (idle + iowait) / total, 1),
            "steal_pct": round(100 * steal / total, 1)}


def git_state() -> str:
    """The commit measured, ``+dirty`` when the working tree has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


def _stopped_by(args: argparse.Namespace, budget: Budget, population: Population,
                measured: list[TurnRecord]) -> str:
    if budget.messages is not None and budget.started >= budget.messages:
        return "messages"
    if len(measured) >= sum(len(u.steps) for u in population.users):
        return "all users done"
    return "duration" if args.duration else "timeout"


def targets(args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if args.mode == "memory":
        rss = max(out["memory"]["rss_mb_after"])
        result["rss_mb_after_20000_users"] = {"target": TARGETS["rss_mb_after_20000_users"],
                                              "value": rss,
                                              "met": rss <= TARGETS["rss_mb_after_20000_users"]}
        return result
    rate = out["measured"]["messages_per_s"]
    p99 = out["latency_ms"]["to_last_reply"].get("p99")
    result["messages_per_s"] = {"target": TARGETS["turns_per_s"], "value": rate,
                                "met": rate >= TARGETS["turns_per_s"]}
    result["p99_ms"] = {"target": TARGETS["p99_ms"], "value": p99,
                        "met": p99 is not None and p99 <= TARGETS["p99_ms"]}
    return result


def start_profiler(path: str, pid: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    fmt = "flamegraph" if path.endswith(".svg") else "raw"
    # --gil: only the thread holding the GIL, i.e. Python CPU (the main thread does ~90%)
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "100", "--gil",
                             "--format", fmt, "--output", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # let it attach
    return proc


# --- the bot process (--serve-worker) ------------------------------------------------------
async def serve_worker(port: int, limits: str) -> None:
    """``sanad serve`` with ``reuse_port=True`` (and optionally without the send limits)."""
    import logging

    from aiohttp import web

    from bot.app import build
    from bot.channels.telegram import TelegramChannel
    from bot.channels.telegram_sender import SendPolicy
    from bot.cli import configure_logging
    from bot.config import Settings
    from bot.heap import freeze_startup_heap
    from bot.web.app import create_app

    configure_logging(logging.WARNING)
    settings = Settings.from_env()
    sanad = await build(settings)
    policy = None
    if limits == "off":
        policy = SendPolicy(per_chat_rate=1e9, per_chat_burst=10**9, global_rate=1e9,
                            global_burst=10**9)
    channel = TelegramChannel(sanad, policy=policy)
    runner = web.AppRunner(create_app(sanad, channels=[channel.mount]), access_log=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
        freeze_startup_heap()  # as cmd_serve does
        print(f"ready {os.getpid()}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        await sanad.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("pipeline", "memory"), default="pipeline")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-db", default=PG_DB,
                        help=f"database created (and dropped) on {PG_URL} "
                             "(default sanad_pipeline_<pid>)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--users", type=int, default=None,
                        help="distinct users (default 2,000; 20,000 with --mode memory)")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="messages/s over all users (default: as fast as answered)")
    parser.add_argument("--duration", type=float, help="stop starting messages after S s")
    parser.add_argument("--messages", type=int, help="stop after M measured messages")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up users, checked but not measured (default 100)")
    parser.add_argument("--server", choices=("runner", "cli"), default="runner",
                        help="runner: this file's serve runner without send limits; "
                             "cli: `sanad serve --reuse-port`")
    parser.add_argument("--limits", "--telegram-limits", dest="limits",
                        choices=("off", "production"), default="off",
                        help="off (default): lift the Telegram send limits (1/s per chat, "
                             "30/s per process) and the per-user flood guard")
    parser.add_argument("--timeout", type=float, default=None,
                        help="hard limit of the measured phase in seconds "
                             "(default 900; 3600 with --mode memory)")
    parser.add_argument("--profile", help="py-spy output (.svg flame graph, else raw stacks)")
    parser.add_argument("--memory-steps", type=int, default=MEMORY_STEPS,
                        help=f"--mode memory: messages per user (default {MEMORY_STEPS})")
    parser.add_argument("--show-calibration", action="store_true",
                        help="print each script's messages and replies to stderr")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="the bots' event loop (SANAD_EVENT_LOOP; default: auto, i.e. "
                             "uvloop where installed)")
    parser.add_argument("--bot-cpu-limit", type=float, default=0.0, metavar="CORES",
                        help="cap each bot process at CORES of CPU (a cgroup quota; root): "
                             "scale-out on a machine with fewer cores than processes need")
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_worker:
        with contextlib.suppress(KeyboardInterrupt):
            from bot import eventloop

            eventloop.run(serve_worker(args.port, args.limits),
                          choice=os.environ.get("SANAD_EVENT_LOOP", "auto"))
        return 0
    if args.server == "cli":
        args.limits = "production"
    if args.users is None:
        args.users = 20_000 if args.mode == "memory" else 2_000
    if args.warmup is None:
        args.warmup = min(100, args.users)
    if args.timeout is None:
        args.timeout = 3600.0 if args.mode == "memory" else 900.0
    out = asyncio.run(run(args))
    print(json.dumps(out, ensure_ascii=False))
    return 0 if out.get("correctness", {}).get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())
