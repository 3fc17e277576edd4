"""Live console updates: a bus that says "case N changed" (never what changed), and the
server-sent event streams that turn a change into fresh fragments for the queue and a case.

* The bus carries only case ids. On PostgreSQL it is ``LISTEN/NOTIFY`` on one channel, so a
  claim in one ``sanad serve`` process reaches consoles open on every other; on SQLite (one
  process) it is an in-process fan-out.
* Console actions publish after their transaction commits. Writers that do not publish (the
  bot's turn adding a user's message, the worker escalating) are caught by the
  :class:`Watcher`: while at least one console listens, one cheap query per interval per
  process (no text, no per-tab work) compares a fingerprint of the cases and their threads.
* A stream renders with the listener's own role check and audit (``handoff.reads``); what it
  sends is the same HTML the pages render. It never extends the session: a console left open
  on a walked-away screen still logs out when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.store.models import Case, CaseMessage
from bot.store.repository import Store

log = logging.getLogger(__name__)

CHANNEL = "sanad_cases"
"""The PostgreSQL notification channel; a payload is a case id, or ``*`` for "any case"."""
HEARTBEAT_SECONDS = 15.0
"""A comment line this often keeps proxies from closing a quiet stream, and re-checks the
session (an expired one ends the stream with an ``expired`` event)."""
WATCH_SECONDS = 2.0
LISTENER_BACKLOG = 64


@dataclass(frozen=True)
class Change:
    """Case ``case_id`` changed; ``None``: some case may have changed (reload what you show)."""

    case_id: int | None = None

    def payload(self) -> str:
        return "*" if self.case_id is None else str(self.case_id)

    @classmethod
    def parse(cls, payload: str) -> Change:
        return cls(int(payload)) if payload.isdigit() else cls(None)


class Listener:
    """One stream's inbox. Bounded: when a slow reader falls behind, its backlog collapses
    into one "anything may have changed" (it re-renders; nothing is lost)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Change] = asyncio.Queue(LISTENER_BACKLOG)

    def put(self, change: Change) -> None:
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            self.drain()
            self._queue.put_nowait(Change(None))

    def drain(self) -> list[Change]:
        changes = []
        while not self._queue.empty():
            changes.append(self._queue.get_nowait())
        return changes

    async def next(self, timeout: float) -> list[Change]:
        """The changes that arrived (waiting up to ``timeout``; ``[]`` when none did)."""
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        return [first, *self.drain()]


class Bus(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, change: Change) -> None:
        """Tell every listener (in every process, where the backend can) after a commit."""
    def deliver(self, change: Change) -> None:
        """Tell this process's listeners only (what the watcher saw here)."""
    def listen(self) -> contextlib.AbstractAsyncContextManager[Listener]: ...
    @property
    def listeners(self) -> int: ...


class LocalBus:
    """The in-process bus (SQLite: the console and the bot share one process)."""

    def __init__(self) -> None:
        self._listeners: set[Listener] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, change: Change) -> None:
        self.deliver(change)

    def deliver(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener.put(change)

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[Listener]:
        listener = Listener()
        self._listeners.add(listener)
        try:
            yield listener
        finally:
            self._listeners.discard(listener)

    @property
    def listeners(self) -> int:
        return len(self._listeners)


def asyncpg_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://...`` as the plain DSN asyncpg itself takes."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


class PostgresBus(LocalBus):
    """``LISTEN``/``NOTIFY`` on one dedicated connection (outside the pool). Our own
    notifications come back through ``LISTEN`` too, so a publish reaches local listeners the
    same way as remote ones. If the connection is lost, publishes fall back to this process
    and the watcher keeps every console correct until it is back."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self._dsn = asyncpg_dsn(database_url)
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        import asyncpg

        try:
            self._conn = await asyncpg.connect(self._dsn)
            await self._conn.add_listener(CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("live: LISTEN unavailable (%s); updates stay in this process",
                        type(exc).__name__)
            self._conn = None

    async def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.deliver(Change.parse(payload))

    async def publish(self, change: Change) -> None:
        conn = self._conn
        if conn is None or conn.is_closed():
            self.deliver(change)
            return
        try:
            async with self._lock:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, change.payload())
        except Exception as exc:  # a lost connection must not fail the caseworker's action
            log.warning("live: NOTIFY failed (%s)", type(exc).__name__)
            self.deliver(change)


def bus_for(database_url: str) -> Bus:
    return PostgresBus(database_url) if database_url.startswith("postgresql") else LocalBus()


async def fingerprint(store: Store) -> tuple[Any, ...]:
    """What moves when any case or thread changes, in two grouped reads and no text: the
    newest message id, and per status the count, newest id, priority sum and latest
    claim/close/escalation time. A reading transaction: it never holds SQLite's write lock."""
    async with store.reading() as db:
        newest = await db.scalar(select(func.max(CaseMessage.id)))
        by_status = (await db.execute(
            select(Case.status, func.count(), func.max(Case.id), func.sum(Case.priority_rank),
                   func.max(Case.claimed_at), func.max(Case.closed_at),
                   func.max(Case.escalated_at), func.count(Case.assignee))
            .group_by(Case.status).order_by(Case.status))).all()
    return (newest, *(tuple(row) for row in by_status))


Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Watcher:
    """Catches changes made by writers that do not publish; idle while nobody listens."""

    store: Store
    bus: Bus
    interval: float = WATCH_SECONDS
    sleep: Sleep = asyncio.sleep
    _last: tuple[Any, ...] | None = field(default=None, init=False)

    async def check(self) -> bool:
        """One look; a change is delivered to this process's listeners. True if it told them.

        The first look after a quiet spell has nothing to compare with, and a stream that
        opened just before it may have rendered an older state than this look sees: it tells
        the streams to look once (each skips what it already sent), so no change falls in the
        gap between a stream opening and the watcher's next tick."""
        if not self.bus.listeners:
            self._last = None  # nobody saw the old state: start afresh
            return False
        current = await fingerprint(self.store)
        moved = current != self._last
        self._last = current
        if moved:
            self.bus.deliver(Change(None))
        return moved

    async def run(self) -> None:
        while True:
            await self.sleep(self.interval)
            try:
                await self.check()
            except Exception as exc:  # the database is down for a moment: look again later
                log.warning("live: watcher check failed (%s)", type(exc).__name__)


@dataclass
class Live:
    bus: Bus
    watcher: Watcher
    heartbeat: float = HEARTBEAT_SECONDS


LIVE = web.AppKey("handoff_live", Live)


def setup(app: web.Application, store: Store, database_url: str, *,
          watch_seconds: float = WATCH_SECONDS, heartbeat: float = HEARTBEAT_SECONDS) -> Live:
    """Put the bus and the watcher on the app; they start and stop with it."""
    bus = bus_for(database_url)
    live = Live(bus, Watcher(store, bus, interval=watch_seconds), heartbeat)
    app[LIVE] = live

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await bus.start()
        task = asyncio.create_task(live.watcher.run(), name="handoff-live-watcher")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await bus.stop()

    app.cleanup_ctx.append(lifecycle)
    return live


def live_of(request: web.Request) -> Live:
    return request.app[LIVE]


async def publish(request: web.Request, case_id: int | None) -> None:
    """After a console action has committed: every console showing the case refreshes."""
    live = request.app.get(LIVE)
    if live is not None:
        await live.bus.publish(Change(case_id))


def sse_event(name: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event; JSON on one ``data:`` line (orjson never emits a newline)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


Update = Callable[[], Awaitable[tuple[str, Mapping[str, Any]] | None]]
"""Render what changed for this stream: an event, or None when the stream is up to date.
Raises :class:`Expired` when the session ended."""


class Expired(Exception):
    """The listener's session is over: the stream says so and ends."""


async def stream(request: web.Request, headers: Mapping[str, str], update: Update,
                 wanted: Callable[[Change], bool]) -> web.StreamResponse:
    """Serve ``update``'s events until the client goes or the session expires: once at once
    (the page may be stale already), then on every wanted change and every heartbeat."""
    live = live_of(request)
    response = web.StreamResponse(headers={
        **headers, "Content-Type": "text/event-stream; charset=utf-8",
        "X-Accel-Buffering": "no",  # nginx: do not hold events back
    })
    async with live.bus.listen() as listener:
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        changes: list[Change] = [Change(None)]
        with contextlib.suppress(ConnectionResetError):  # the page was closed or left
            while True:
                if not changes or any(wanted(c) for c in changes):
                    try:
                        event = await update()
                    except Expired:
                        await response.write(sse_event("expired", {}))
                        break
                    if event is not None:
                        await response.write(sse_event(*event))
                    elif not changes:
                        await response.write(b": ping\n\n")
                changes = await listener.next(live.heartbeat)
    return response
