"""The campaign delivery loop of one channel: throttled, pausable, and safe to crash.

Each round it (1) *leases* a batch of due ``campaign`` outbox rows of its channel whose campaign
may send now (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent senders get disjoint
rows), (2) *reserves* one send slot per row from the channel's shared :class:`RateLimiter`,
(3) for each group of rows whose slots fall within the next ``tick``, *checks and marks* them in
one transaction — campaign still sending and inside its window, channel not paused by a 429,
recipient still subscribed and reachable — setting their ``CampaignDelivery`` to ``sending``
right before the platform call, and (4) delivers each at its slot, several in flight at once.
Results are written by a group-commit *flusher*: one transaction settles whatever finished
since the last one, both the outbox row and the ``CampaignDelivery`` row.

Exactly once: rows are leased, so two live senders never hold the same row; a sender that dies
leaves its leases to expire. The next one then finds two kinds of rows: still ``targeted``
(never handed to the platform) — sent normally — and ``sending`` (the platform call may have
happened but its result was never recorded) — *in doubt*: marked ``in_doubt`` and never sent
again, because a duplicate is worse than a missing awareness tip, and counted in the report.
Only what was in flight at the moment of a ``kill -9`` can end up in doubt: the calls under way
(at most ``concurrency``), the group checked in the last ``tick`` and results not yet committed
(a few milliseconds' worth). A cancelled or stopped sender waits for its calls, records them and
gives its undispatched rows back, so it leaves nothing in doubt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Outbound
from bot.outbox import LEASE
from bot.outbox import _open as open_payload
from bot.outreach import records
from bot.outreach.campaigns import SCHEDULE_COLUMNS, sendable
from bot.outreach.delivery import Deliverer, OnSent, Outcome, Sent, classify, retry_after
from bot.outreach.models import Campaign, CampaignDelivery
from bot.outreach.ratelimit import RateLimiter, clock_column, paused_until_column
from bot.outreach.records import Result, Row
from bot.outreach.stats import recent_handoffs
from bot.outreach.targeting import KIND
from bot.sendbudget import Priority, SendBudget
from bot.store import user_keys
from bot.store.crypto import DecryptionError
from bot.store.models import OutboxMessage, Subscription, User, UserKey
from bot.store.repository import Store, utcnow

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class SenderOptions:
    rate: float
    """Messages per second for this channel, across every process."""
    lease: timedelta = LEASE
    horizon: float = 0.5
    """Seconds of slots reserved per batch: long enough to amortise the lease transaction,
    short enough that a 429 or a pause strands few reservations."""
    max_batch: int = 500
    tick: float = 0.02
    """Sends whose slots fall within one tick share one check-and-mark transaction."""
    catch_up: float = 0.1
    """Seconds of slots a stalled sender may make up at once (a burst of ``rate * catch_up``);
    beyond that it keeps the rate and the stall is lost. 0.1 keeps Telegram's default 25/s
    under 28 in any second, with room for network jitter below its documented ceiling of 30
    (0.2 let jitter push 31 calls into one second: two 429s in bench/broadcast.py)."""
    concurrency: int = 64
    """Platform calls in flight at once (a call may take longer than a slot)."""
    max_attempts: int = 5
    max_backoff: float = 30.0
    idle: float = 0.5
    handoff_check: float = 30.0
    """Seconds between two checks of a campaign's ``max_handoffs_per_hour``."""
    drain: float = 30.0
    """On stop, how long to wait for calls in flight before giving them up (as in doubt)."""

    @property
    def batch(self) -> int:
        return max(1, min(self.max_batch, math.ceil(self.rate * self.horizon)))

    @property
    def group(self) -> int:
        """Most rows checked at once. A group holds the rows due within the next tick plus
        those the previous check made late, so groups grow with slow checks and the rate holds;
        the cap bounds what a pause can still let out (``tick + catch_up`` seconds of sends,
        normally a tick and one check's worth)."""
        return max(1, math.ceil(self.rate * (self.tick + self.catch_up)))


@dataclass
class SenderStats:
    """What this sender did (for the progress bar and the benchmark)."""

    sent: int = 0
    rate_limited: int = 0
    """429 answers (each paused the channel)."""
    errors: int = 0
    blocked: int = 0
    first_sent: float | None = None
    last_sent: float | None = None

    def achieved_rate(self) -> float:
        if self.sent < 2 or self.first_sent is None or self.last_sent is None:
            return 0.0
        return (self.sent - 1) / max(1e-9, self.last_sent - self.first_sent)


@dataclass
class _Run:
    """State of one ``run``: what to give back or wait for when it ends."""

    results: asyncio.Queue[Result | None]
    slots: list[tuple[float, Row]] = field(default_factory=list)
    """Leased rows with their reserved send times, not yet handed to a delivery task."""
    inflight: set[asyncio.Task[None]] = field(default_factory=set)
    refill: asyncio.Task[bool] | None = None


class CampaignSender:
    """Delivers the campaign rows of one channel (optionally of one campaign only)."""

    def __init__(self, store: Store, channel: str, deliverer: Deliverer,
                 options: SenderOptions, *, campaign_id: int | None = None,
                 limiter: RateLimiter | None = None, on_sent: OnSent | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 budget: SendBudget | None = None) -> None:
        self.store = store
        self.channel = channel
        self.deliverer = deliverer
        self.options = options
        self.campaign_id = campaign_id
        self.limiter = limiter or RateLimiter(store, clock=clock)
        self.on_sent = on_sent
        self.clock = clock
        self.budget = budget
        """The bot's shared send budget (bot.sendbudget). With it, each message waits for a
        send at ``CAMPAIGN`` priority (what conversations leave; ``options.rate`` stays a cap)
        instead of reserving database slots, and a flood wait pauses the budget for every
        process."""
        self.stats = SenderStats()
        self._backoff_until = 0.0
        self._paced = 0.0
        self._cap_checked: dict[int, float] = {}
        self._db = asyncio.Lock()
        """One transaction of this sender at a time: on SQLite they would only queue on the
        write lock's busy handler (which sleeps in steps of up to 100 ms)."""

    # --- the loop -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set (or the task is cancelled), then clean up."""
        run = _Run(asyncio.Queue())
        flusher = asyncio.create_task(self._flush_loop(run.results))
        try:
            while not stop.is_set():
                try:
                    busy = await self._step(stop, run)
                except Exception as exc:  # the loop must survive a database outage
                    log.warning("campaign sender %s: round failed (%s); retrying",
                                self.channel, type(exc).__name__)
                    with contextlib.suppress(Exception):  # else their leases expire
                        await self._give_back(run)
                    busy = False
                if not busy:
                    await _wait(stop, self.options.idle)
        finally:
            await self._shutdown(run, flusher)

    async def _step(self, stop: asyncio.Event, run: _Run) -> bool:
        """Lease ahead if the reserved slots run short, then send the next group of rows.
        False when there is nothing to do."""
        wait = self._backoff_until - self.clock()
        if wait > 0:
            await _wait(stop, wait)
            return True
        if run.refill is not None and run.refill.done():
            done, run.refill = run.refill, None
            done.result()  # surface its exception
        # Lease more when the reserved slots run short, but never hold more than a batch
        # that a lagging sender has not started: rows waiting longer than their lease would
        # be leased again (by us or another worker).
        if run.refill is None and (not run.slots or (
                run.slots[-1][0] - self.clock() < self.options.horizon
                and len(run.slots) < self.options.batch)):
            run.refill = asyncio.create_task(self._refill(run))
        if not run.slots:
            if run.refill is None:
                return False
            await asyncio.shield(run.refill)  # if we are cancelled it still lands in run.slots
            done, run.refill = run.refill, None
            return done.result()
        await self._dispatch_group(stop, run)
        return True

    async def _refill(self, run: _Run) -> bool:
        """Lease a batch and reserve its send slots right after the ones already held, so a
        busy sender's slots stay contiguous (no gap while it leases)."""
        rows = await self._lease()
        if not rows:
            return False
        if self.budget is not None:  # the budget paces each send; rows are due at once
            now = self.clock()
            run.slots.extend((now, row) for row in rows)
            return True
        async with self._db:
            reservation = await self.limiter.reserve(self.channel, len(rows), self.options.rate)
            if reservation.paused_until is not None:
                self._backoff_until = max(self._backoff_until, reservation.paused_until)
                async with self.store.session() as db:
                    await records.release(db, rows, delay=reservation.paused_until - self.clock())
                return True
        run.slots.extend(zip(reservation.slots, rows, strict=True))
        return True

    async def _dispatch_group(self, stop: asyncio.Event, run: _Run) -> None:
        """Check the rows due within the next tick — no more than can start at once — in one
        transaction, then hand each to a delivery task at its slot. A row stays in
        ``run.slots`` until its task owns it, so whatever interrupts this (stop, cancel, 429)
        can give the rest back."""
        tick = self.options.tick
        await self._sleep_until(run.slots[0][0] - tick)
        free = self.options.concurrency - len(run.inflight)
        if free <= 0:
            await asyncio.wait(set(run.inflight), return_when=asyncio.FIRST_COMPLETED)
            return
        due = next((i for i, (slot, _) in enumerate(run.slots) if slot > self.clock() + tick),
                   len(run.slots))
        size = max(1, min(due, free, self.options.group))
        if self.budget is not None:  # send times from the shared budget, for this group
            times = await self.budget.reserve(Priority.CAMPAIGN, size, stop)
            if not times:
                return
            size = len(times)
            run.slots[:size] = [(t, row) for t, (_, row) in zip(times, run.slots, strict=False)]
        # Shielded: a transaction cut off by a cancel could leave its connection (and SQLite's
        # write lock) behind; the shutdown waits for it on the ``_db`` lock instead.
        allowed, paused = await asyncio.shield(
            self._check([row for _, row in run.slots[:size]], run.results))
        permitted = {row.outbox_id for row in allowed}
        kept: list[tuple[float, Row]] = []
        for slot, row in run.slots[:size]:  # a row leased twice by us goes out once
            if row.outbox_id in permitted:
                permitted.discard(row.outbox_id)
                kept.append((slot, row))
        run.slots[:size] = kept
        permitted = {row.outbox_id for _, row in kept}
        if paused:
            self._backoff_until = max(self._backoff_until, self.clock() + paused)
            await self._give_back(run, delay=paused)
            return
        for _ in range(len(permitted)):
            # At its slot, but never faster than the rate after a stall: a late sender makes up
            # at most ``catch_up`` seconds of slots at once (its slots and the others' never
            # overlap, but a burst of a frozen process's whole backlog could trip the platform).
            # With a budget, ``rate`` is only a cap (the budget paces) and a late group is
            # not caught up at all: its sends keep their spacing, never bunch.
            await self._sleep_until(max(run.slots[0][0], self._paced))
            catch_up = 0.0 if self.budget is not None else self.options.catch_up
            self._paced = (max(self._paced, self.clock() - catch_up)
                           + 1.0 / self.options.rate)
            backoff = self._backoff_until - self.clock()
            if stop.is_set() or backoff > 0:
                await self._give_back(run, delay=max(0.0, backoff))
                return
            _, row = run.slots.pop(0)  # from here on the task owns the row
            task = asyncio.create_task(self._deliver(row, run.results))
            run.inflight.add(task)
            task.add_done_callback(run.inflight.discard)

    async def _deliver(self, row: Row, results: asyncio.Queue[Result | None]) -> None:
        pause = self._backoff_until - self.clock()
        if pause > 0:  # a 429 arrived after this task was started: not now
            resume = utcnow() + timedelta(seconds=pause)
            results.put_nowait(Result(row, Outcome.RATE_LIMITED, "rate limited", resume))
            return
        try:
            result = await self.deliverer.deliver(row.address, row.messages)
        except asyncio.CancelledError:
            results.put_nowait(Result(row, Outcome.INTERRUPTED, "interrupted"))
            raise
        except Exception as exc:
            results.put_nowait(await self._failed(row, exc))
            return
        now = self.clock()
        self.stats.sent += 1
        self.stats.first_sent = self.stats.first_sent or now
        self.stats.last_sent = now
        results.put_nowait(Result(row, Outcome.SENT))
        if self.on_sent is not None:
            try:
                await self.on_sent(Sent(row.outbox_id, row.user_id, row.campaign_id, result))
            except Exception as exc:
                log.warning("campaign sender %s: on_sent hook failed (%s)",
                            self.channel, type(exc).__name__)

    async def _failed(self, row: Row, exc: Exception) -> Result:
        outcome = classify(exc)
        error = type(exc).__name__[:64]
        if outcome is Outcome.RATE_LIMITED:
            seconds = retry_after(exc) or 1.0
            self.stats.rate_limited += 1
            self._backoff_until = max(self._backoff_until, self.clock() + seconds)
            if self.budget is not None:
                await self.budget.pause(seconds)
            try:
                async with self._db:
                    until = await self.limiter.back_off(self.channel, seconds)
                self._backoff_until = max(self._backoff_until, until)
            except Exception as db_exc:  # the local pause still holds for this process
                log.warning("campaign sender %s: could not share a flood wait (%s)",
                            self.channel, type(db_exc).__name__)
            log.warning("campaign sender %s: flood control, pausing the channel %.1fs",
                        self.channel, seconds)
            return Result(row, outcome, "rate limited", utcnow() + timedelta(seconds=seconds))
        if outcome is Outcome.BLOCKED:
            self.stats.blocked += 1
        else:
            self.stats.errors += 1
        return Result(row, outcome, getattr(exc, "reason", None) or error)

    # --- transactions ---------------------------------------------------------------------
    async def _lease(self) -> list[Row]:
        now = utcnow()
        async with self._db, self.store.session() as db:
            closed = await self._closed_campaigns(db, now)
            due = or_(
                and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
                and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now))
            query = (
                select(OutboxMessage.id, OutboxMessage.user_id, OutboxMessage.attempts,
                       OutboxMessage.payload_enc, User.address_enc, CampaignDelivery.id,
                       CampaignDelivery.status, CampaignDelivery.campaign_id, UserKey.key_enc)
                .join(CampaignDelivery, CampaignDelivery.outbox_id == OutboxMessage.id)
                .join(Campaign, Campaign.id == CampaignDelivery.campaign_id)
                .join(User, User.id == OutboxMessage.user_id)
                .outerjoin(UserKey, UserKey.user_id == OutboxMessage.user_id)
                .where(OutboxMessage.kind == KIND, OutboxMessage.channel == self.channel, due,
                       Campaign.status.in_(("sending", "done")))
                .order_by(OutboxMessage.id).limit(self.options.batch)
            )
            if closed:
                query = query.where(Campaign.id.not_in(closed))
            if self.campaign_id is not None:
                query = query.where(Campaign.id == self.campaign_id)
            if db.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=OutboxMessage)
            found = (await db.execute(query)).all()
            doubtful = [r for r in found if r[6] == "sending"]
            no_address = [r for r in found if r[6] != "sending" and r[4] is None]
            ring = user_keys.KeyRing(self.store.cipher)  # the address is under the user's key
            opened = {r[0]: self._open(r, ring) for r in found
                      if r[6] != "sending" and r[4] is not None}
            unreadable = [r for r in found if opened.get(r[0], True) is None]
            leased = [r for r in found if opened.get(r[0]) is not None]
            if doubtful:
                log.warning("campaign sender %s: %d message(s) in doubt after a crash; not "
                            "sending them again", self.channel, len(doubtful))
                await records.finish(db, [r[0] for r in doubtful], [r[5] for r in doubtful],
                                   outbox="failed", delivery="in_doubt", error="in doubt")
            if no_address:
                await records.finish(db, [r[0] for r in no_address], [r[5] for r in no_address],
                                   outbox="failed", delivery="failed", error="no address")
            if unreadable:  # else every round would fail on them, forever
                log.error("campaign sender %s: %d message(s) cannot be decrypted (a retired "
                          "key?); marked failed", self.channel, len(unreadable))
                await records.finish(db, [r[0] for r in unreadable], [r[5] for r in unreadable],
                                   outbox="failed", delivery="failed", error="undecryptable")
            if leased:
                await records.write(db,
                    update(OutboxMessage).where(OutboxMessage.id.in_([r[0] for r in leased]))
                    .values(status="sending", lease_until=now + self.options.lease,
                            attempts=OutboxMessage.attempts + 1))
        rows = []
        for outbox_id, user_id, attempts, _, _, delivery_id, _, campaign_id, _ in leased:
            address, messages = opened[outbox_id] or ("", [])
            rows.append(Row(outbox_id, delivery_id, campaign_id, user_id, attempts + 1,
                            address, messages))
        return rows

    def _open(self, row: Any, ring: user_keys.KeyRing) -> tuple[str, list[Outbound]] | None:
        """The recipient's address and the messages of a found row; None if they cannot be
        decrypted (sealed with a key that is no longer configured)."""
        try:
            cipher = ring.cipher(row[8])  # the user's data key (a campaign text: the master)
            return (cipher.decrypt_text(row[4], context=b"users.address"),
                    open_payload(cipher, row[3]))
        except DecryptionError:
            return None

    async def _closed_campaigns(self, db: AsyncSession, now: datetime) -> list[int]:
        """Sending campaigns that may not send now: outside their window, or just paused
        because too many recipients asked for a person (``max_handoffs_per_hour``)."""
        query = select(Campaign).where(Campaign.status == "sending")
        if self.campaign_id is not None:
            query = query.where(Campaign.id == self.campaign_id)
        closed = []
        for campaign in await db.scalars(query):
            capped = bool(campaign.max_handoffs_per_hour) and sendable(campaign, now) and (
                await self._over_cap(db, campaign, now))
            if capped or not sendable(campaign, now):
                closed.append(campaign.id)
        return closed

    async def _over_cap(self, db: AsyncSession, campaign: Campaign, now: datetime) -> bool:
        last = self._cap_checked.get(campaign.id)
        if last is not None and self.clock() - last < self.options.handoff_check:
            return False
        self._cap_checked[campaign.id] = self.clock()
        cap = campaign.max_handoffs_per_hour or 0
        handoffs = await recent_handoffs(db, campaign, now)
        if handoffs < cap:
            return False
        campaign.status, campaign.paused_at = "paused", now
        campaign.pause_reason = f"{handoffs} handoffs in the last hour (cap {cap})"
        log.warning("campaign %s paused: %s", campaign.name, campaign.pause_reason)
        return True

    async def _check(self, rows: Sequence[Row],
                     results: asyncio.Queue[Result | None]) -> tuple[list[Row], float]:
        """Right before sending a group: may each still go? Marks those that may as
        ``sending`` (from here on a crash leaves them in doubt, not re-sendable). Results
        finished meanwhile are settled in the same transaction (group commit)."""
        now = utcnow()
        finished = _drain(results)
        try:
            async with self._db, self.store.session() as db:
                if finished:
                    await self._settle(db, finished, now)
                return await self._check_in(db, rows, now)
        except BaseException:
            for result in finished:  # not recorded: the flusher tries again
                results.put_nowait(result)
            raise

    async def _check_in(self, db: AsyncSession, rows: Sequence[Row],
                        now: datetime) -> tuple[list[Row], float]:
        campaigns = (await db.execute(
            select(*SCHEDULE_COLUMNS, paused_until_column(self.channel), clock_column(db))
            .where(Campaign.id.in_({row.campaign_id for row in rows})))).all()
        paused = max((float(c[-2]) - float(c[-1]) for c in campaigns), default=0.0)
        if paused > 0:
            await records.release(db, rows, delay=paused)
            return [], paused
        open_ids = {c.id for c in campaigns if sendable(c, now)}
        reachable = set(await db.scalars(
            select(User.id).join(Subscription, Subscription.user_id == User.id)
            .where(User.id.in_({row.user_id for row in rows}),
                   User.unreachable.is_(False), User.contact_paused_at.is_(None))))
        closed = [r for r in rows if r.campaign_id not in open_ids]
        gone = [r for r in rows if r.campaign_id in open_ids and r.user_id not in reachable]
        allowed = [r for r in rows if r.campaign_id in open_ids and r.user_id in reachable]
        if closed:
            await records.release(db, closed)
        if gone:  # opted out, blocked us or hid the chat since targeting: never messaged
            await records.finish(db, [r.outbox_id for r in gone], [r.delivery_id for r in gone],
                               outbox="failed", delivery="skipped", error="opted out")
        if allowed:
            marked = await records.mark_sending(db, allowed, now)
            if len(marked) < len(allowed):
                log.warning("campaign sender %s: %d row(s) leased twice (a lease ran out); "
                            "dropped", self.channel, len(allowed) - len(marked))
            allowed = [r for r in allowed if r.delivery_id in marked]
        return allowed, 0.0

    async def _give_back(self, run: _Run, *, delay: float = 0.0) -> None:
        rows = [row for _, row in run.slots]
        run.slots = []
        if rows:
            await asyncio.shield(self._give_back_rows(rows, delay))

    async def _give_back_rows(self, rows: Sequence[Row], delay: float) -> None:
        async with self._db, self.store.session() as db:
            await records.release(db, rows, delay=delay)

    # --- settling results (group commit) --------------------------------------------------
    async def _flush_loop(self, results: asyncio.Queue[Result | None]) -> None:
        """Settle the results no check transaction picked up (the last ones, or all of them
        while the sender is between groups), many per transaction, until the end marker."""
        while (item := await results.get()) is not None:
            # Put back while waiting: a check in the meantime settles it with its own marks,
            # so what a kill leaves in doubt stays within ``concurrency`` rows.
            results.put_nowait(item)
            await asyncio.sleep(self.options.tick)  # most results ride with the next check
            async with self._db:
                batch = _drain(results)
                if batch:
                    await self._settle_retrying(batch)

    async def _settle(self, db: AsyncSession, batch: list[Result], now: datetime) -> None:
        await records.settle(db, batch, now, max_attempts=self.options.max_attempts,
                             max_backoff=self.options.max_backoff)

    async def _settle_retrying(self, batch: list[Result]) -> None:
        for attempt in range(6):
            try:
                async with self.store.session() as db:
                    await self._settle(db, batch, utcnow())
                return
            except Exception as exc:
                log.warning("campaign sender %s: recording %d result(s) failed (%s)",
                            self.channel, len(batch), type(exc).__name__)
                await asyncio.sleep(min(5.0, 0.1 * 2 ** attempt))
        log.error("campaign sender %s: %d result(s) not recorded; their rows will be in doubt",
                  self.channel, len(batch))

    # --- ending ---------------------------------------------------------------------------
    async def _shutdown(self, run: _Run, flusher: asyncio.Task[None]) -> None:
        """Wait for calls in flight (they are recorded), give back what was not sent."""
        if run.refill is not None:
            with contextlib.suppress(Exception):
                await run.refill  # its rows join run.slots, to be given back
        if run.inflight:
            _, late = await asyncio.wait(set(run.inflight), timeout=self.options.drain)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        try:
            await self._give_back(run)
        except Exception as exc:  # their leases expire; they are sent later
            log.warning("campaign sender %s: could not give back rows (%s)",
                        self.channel, type(exc).__name__)
        run.results.put_nowait(None)
        await flusher

    async def _sleep_until(self, moment: float) -> None:
        delay = moment - self.clock()
        if delay > 0.0005:
            await asyncio.sleep(delay)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))


def _drain(results: asyncio.Queue[Result | None]) -> list[Result]:
    """Every result queued now; the end marker, if seen, is queued again for the flusher."""
    drained = []
    ended = False
    while not results.empty():
        item = results.get_nowait()
        if item is None:
            ended = True
        else:
            drained.append(item)
    if ended:
        results.put_nowait(None)
    return drained

