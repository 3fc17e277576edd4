"""The channel runtime: what every channel does around a turn, written once.

A platform is a thin :class:`Adapter`: it reads its webhook into :class:`Job` s (an ``Inbound``
and the address to answer), sends a turn's ``Outbound`` messages its own way and maps its
failures onto a small vocabulary (:class:`Outcome`). The runtime owns the rest, the same for
every platform:

* **order**: one lock per user (or chat) around the turn (:meth:`ChannelRuntime.ordered`),
  and the chat's sends one after another in the order of its turns (:class:`SendChain`);
  different users proceed concurrently;
* **intake in priority order** (:class:`~bot.channels.turn_gate.TurnGate`): at most as many
  turns at once as the store's pool holds (``SANAD_TURNS_AT_ONCE``); the others wait, a
  message the safety rules flag first, then a chat's first message, then the rest;
* **answering before sending** (``answer_within``): a platform that only needs to know the
  message was taken (Telegram) is answered once the turn is committed — its replies are in
  the outbox, so they reach the user even if this process dies — and the sends go on in the
  background, their outbox leases kept while they wait in the send budget
  (:class:`~bot.outbox.LeaseKeeper`);
* **503 when the database is down**: nothing was stored or sent, so the platform (or the page)
  delivers the message again; de-duplication is the engine's, on ``Inbound.message_id``;
* **the apology**: a bug in a turn never blocks a user's queue; they get honest words and the
  emergency numbers, built without the database;
* **settling the outbox rows** the engine wrote with the turn: sent, failed for good (and the
  user marked unreachable), or left to the outbox sender to retry;
* **quick exit** (:attr:`Served.quick_exit`): the adapter hides what its platform can (Telegram
  deletes the chat, the web page clears itself); the engine has already paused contact, so
  nothing else reaches the person until they say it is safe;
* **metrics**: one counter per channel, by outcome.

Nothing here logs text, names or platform ids: :func:`where` names a file and line only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from bot.channels.turn_gate import SendChain, Triage, TurnGate, pool_capacity, rules_of
from bot.config import SUPPORTED_LANGUAGES
from bot.engine import apology
from bot.messages import Inbound, Outbound, QuickExit, Turn, UserRef
from bot.metrics import Metrics
from bot.outbox import LeaseKeeper, LeaseLost, mark_failed, mark_sent, release
from bot.store.db import DatabaseUnavailable
from bot.store.repository import KeyedLocks
from bot.web.keys import METRICS

if TYPE_CHECKING:
    from bot.app import Sanad

log = logging.getLogger(__name__)

DRAIN_SECONDS = 20.0
"""On stop, how long sends still in the background may take before they are cancelled (their
rows stay leased and the outbox sends them after the lease)."""


class Outcome(StrEnum):
    """How a turn's answers went: the small vocabulary an adapter maps its platform's errors
    onto (Telegram's "bot was blocked" and WhatsApp's unreachable codes are ``BLOCKED``, rate
    limits and outages ``FAILED``); what the runtime then does with the turn's outbox rows."""

    SENT = "sent"
    """Delivered, and the adapter recorded it (rows marked sent with its message ids)."""
    SENT_UNMARKED = "sent_unmarked"
    """Delivered; the runtime marks the rows sent."""
    BLOCKED = "blocked"
    """The user is unreachable: rows failed, the user marked unreachable."""
    FAILED = "failed"
    """Not delivered: the rows go back to the outbox sender."""
    QUEUED = "queued"
    """Partly delivered; the adapter left the rest to its outbox (already recorded)."""


_COUNTED_AS = {Outcome.SENT: "processed", Outcome.SENT_UNMARKED: "processed",
               Outcome.QUEUED: "send_failed"}


@dataclass(frozen=True, slots=True)
class Job:
    """One user message to process: what they did, where to answer, and a language to
    apologise in should the turn fail before the database could tell (the platform's hint)."""

    inbound: Inbound
    address: str
    language_hint: str | None = None
    language: str | None = None
    """A language the user chose outside the chat (a page's language switch): wins over
    detection, as ``sanad chat --lang`` does."""
    user_message_id: str | None = None
    """The platform's id of the user's own message: hidden with the chat on a quick exit
    where the platform can delete messages."""


@dataclass(frozen=True, slots=True)
class Served:
    """What the runtime did with a job: the HTTP status for the platform (200, or 503 to have
    it delivered again), the turn when one ran, and how its answers went."""

    status: int
    turn: Turn | None = None
    outcome: Outcome | None = None

    @property
    def quick_exit(self) -> bool:
        return self.turn is not None and any(isinstance(e, QuickExit) for e in self.turn.events)


class Adapter(Protocol):
    """A platform: sends a turn's answers (and an apology) its own way."""

    async def deliver_turn(self, job: Job, turn: Turn) -> Outcome:
        """Send ``turn.outbound`` to ``job.address`` (after hiding the chat on a quick exit
        where the platform can). Failures are an :class:`Outcome`, not an exception."""
        ...

    async def send_apology(self, job: Job, message: Outbound) -> None:
        """Send ``message`` (no database involved); a failure is logged by the runtime."""
        ...


class ChannelRuntime:
    """The shared half of a channel: ordering, turn, apology, settling, metrics."""

    def __init__(self, sanad: Sanad, channel: str, *, counter: str, counter_help: str,
                 metrics: Metrics | None = None, turns_at_once: int | None = None) -> None:
        self.sanad = sanad
        self.channel = channel
        self.metrics = metrics
        self._counter = counter
        self._counter_help = counter_help
        self._locks = KeyedLocks()
        self.gate = TurnGate(turns_at_once or turn_limit(sanad))
        self.triage = Triage(rules_of(sanad.engine.safety))
        self.sends = SendChain()
        self.leases = LeaseKeeper(sanad.store)
        self._stop = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    # --- starting and stopping (channels that send in the background) -------------------------
    async def start(self) -> None:
        """Keep the leases of rows whose sends wait (in the background)."""
        self._stop.clear()
        if self._renewer is None:
            self._renewer = asyncio.create_task(self.leases.run(self._stop),
                                                name=f"{self.channel}-leases")

    async def stop(self, drain: float = DRAIN_SECONDS) -> None:
        """Let the sends in the background finish (up to ``drain`` seconds), then cancel the
        rest: their rows stay leased, and the outbox sender delivers them after the lease."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.sends.settled(), timeout=drain)
        if self.sends.pending():
            log.warning("%s: %d chats' replies left to the outbox at stop", self.channel,
                        self.sends.pending())
            await self.sends.cancel()
        self._stop.set()
        if self._renewer is not None:
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None

    # --- joining the web app ---------------------------------------------------------------
    def attach(self, app: web.Application) -> None:
        """Count into the app's metrics unless given others."""
        if self.metrics is None:
            self.metrics = app.get(METRICS)

    # --- the turn ----------------------------------------------------------------------------
    @asynccontextmanager
    async def ordered(self, key: str) -> AsyncIterator[None]:
        """One user's (or chat's) messages, one at a time, in order, in this process."""
        async with self._locks.hold(key):
            yield

    async def serve(self, adapter: Adapter, job: Job, *,
                    answer_within: float | None = None) -> Served:
        """Run the turn, send its answers, settle its outbox rows and count the outcome.
        The caller holds :meth:`ordered` for the user.

        ``answer_within``: return at most that many seconds after the turn is committed, the
        sends going on in the background (``Served.outcome`` is then ``None`` unless they were
        done); ``None``: return once they are done (the web chat's page waits for its answer).
        """
        turn = await self.turn(adapter, job)
        if not isinstance(turn, Turn):
            return turn
        delivery = self.sends.schedule(job.address, lambda: self.deliver(adapter, job, turn))
        if answer_within is None:
            return Served(200, turn, await asyncio.shield(delivery))
        done, _ = await asyncio.wait({delivery}, timeout=max(0.0, answer_within))
        return Served(200, turn, delivery.result() if done else None)

    async def deliver(self, adapter: Adapter, job: Job, turn: Turn) -> Outcome:
        """Send a committed turn's answers (while its rows are surely ours) and settle them."""
        try:
            with self.leases.sending(turn.outbox_ids):
                outcome = await adapter.deliver_turn(job, turn)
        except LeaseLost:  # waited past the lease we could keep: whoever holds the rows sends
            log.warning("%s: a reply left to the outbox (its lease could not be kept)",
                        self.channel)
            self.count("left_to_outbox")
            return Outcome.QUEUED
        except Exception as exc:  # the turn is committed: a retry would only be a duplicate
            log.error("%s delivery failed: %s at %s", self.channel, type(exc).__name__,
                      where(exc))
            outcome = Outcome.FAILED
        await self.settle(job.inbound.user, turn, outcome)
        self.count(_COUNTED_AS.get(outcome, outcome))
        return outcome

    async def turn(self, adapter: Adapter, job: Job) -> Turn | Served:
        """The engine's turn, when the gate lets it run; or what was done instead: 503
        (database down), an apology (a bug), nothing (a duplicate)."""
        urgency = self.triage.urgency(job.address, job.inbound.text, scan=self.gate.full())
        try:
            async with self.gate.slot(urgency):
                began = time.monotonic()  # the turn's rows are leased from after this
                turn = await self.sanad.engine.handle_turn(job.inbound, address=job.address,
                                                           language=job.language)
        except DatabaseUnavailable as exc:
            log.warning("%s: message not processed, database unavailable (%s); answering 503 "
                        "so that it is delivered again", self.channel, exc.reason)
            self.count("database_unavailable")
            return Served(503)  # nothing stored, nothing sent
        except Exception as exc:
            # A bug must not block the user's queue at the platform: apologise and move on.
            log.error("%s turn failed: %s at %s", self.channel, type(exc).__name__, where(exc))
            self.count("failed")
            await self.apologise(adapter, job)
            return Served(200)
        if turn.duplicate:
            self.count("duplicate")
            return Served(200, turn)
        self.leases.hold(turn.outbox_ids, attempts=1, since=began)  # record_turn_replies'
        return turn

    def apology(self, language: str | None) -> Outbound:
        """Honest words and the emergency numbers, in ``language`` when we speak it."""
        lang = language if language in SUPPORTED_LANGUAGES else None
        return apology(self.sanad.ui, self.sanad.content,
                       lang or self.sanad.settings.default_language)

    async def apologise(self, adapter: Adapter, job: Job) -> None:
        try:
            await adapter.send_apology(job, self.apology(job.language or job.language_hint))
        except Exception as exc:  # nothing more can be done for this message
            log.warning("%s: apology not sent: %s", self.channel, type(exc).__name__)

    # --- after the turn ----------------------------------------------------------------------
    async def settle(self, user: UserRef, turn: Turn, outcome: Outcome) -> None:
        """Record the fast path's result on the turn's outbox rows; a failed send is retried
        by the outbox sender, so the committed answer still reaches the user. With the
        database down here, the rows' lease runs out and the sender takes over."""
        store = self.sanad.store
        try:
            if outcome is Outcome.SENT_UNMARKED:
                await mark_sent(store, turn.outbox_ids)
            elif outcome is Outcome.BLOCKED:
                await mark_failed(store, turn.outbox_ids, error="blocked")
                await store.mark_unreachable(user)
            elif outcome is Outcome.FAILED:
                await release(store, turn.outbox_ids, error="send failed")
        except DatabaseUnavailable:
            log.warning("%s: outbox not updated (database unavailable)", self.channel)

    # --- metrics ---------------------------------------------------------------------------
    def count(self, outcome: str, amount: int = 1) -> None:
        if self.metrics is not None and amount:
            self.metrics.inc(self._counter, self._counter_help, amount, outcome=str(outcome))


# --- small shared pieces -------------------------------------------------------------------
def turn_limit(sanad: Sanad) -> int:
    """Turns one channel runs at once: ``SANAD_TURNS_AT_ONCE``, else what the store's
    connection pool holds (more would only queue for a connection, and time out there)."""
    if sanad.settings.turns_at_once:
        return sanad.settings.turns_at_once
    return pool_capacity(sanad.store.engine)


def secret_ok(given: str | None, expected: str) -> bool:
    """A shared secret from a header, compared in constant time; a header with invalid UTF-8
    is just a wrong secret (surrogateescape), never a 500."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def where(exc: BaseException) -> str:
    """The innermost frame of a traceback: enough to find a bug, and no data (an exception's
    message may quote the user's words)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"


def quick_exit(events: Sequence[object]) -> bool:
    """Whether a turn's events hide the conversation."""
    return any(isinstance(e, QuickExit) for e in events)

