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
Only calls in flight at the moment of a ``kill -9`` can end up in doubt; a cancelled or stopped
sender waits for its calls, records them and gives its undispatched rows back.
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

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Outbound
from bot.outbox import LEASE
from bot.outbox import _open as open_payload
from bot.outreach.campaigns import sendable
from bot.outreach.delivery import Deliverer, OnSent, Outcome, Sent, classify, retry_after
from bot.outreach.models import Campaign, CampaignDelivery
from bot.outreach.ratelimit import RateLimiter
from bot.outreach.stats import recent_handoffs
from bot.outreach.targeting import KIND
from bot.store.models import OutboxMessage, Subscription, User
from bot.store.repository import Store, as_utc, utcnow

log = logging.getLogger(__name__)

_ATTEMPT_BACK = case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0)
"""A lease counts an attempt; rows given back unsent (or held, or flood-limited) regain it."""


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


@dataclass(frozen=True, slots=True)
class _Row:
    outbox_id: int
    delivery_id: int
    campaign_id: int
    user_id: int
    attempts: int
    address: str
    messages: list[Outbound]


@dataclass(frozen=True, slots=True)
class _Result:
    row: _Row
    outcome: Outcome
    error: str | None = None
    resume_at: datetime | None = None


@dataclass
class _Run:
    """State of one ``run``: what to give back or wait for when it ends."""

    results: asyncio.Queue[_Result | None]
    slots: list[tuple[float, _Row]] = field(default_factory=list)
    inflight: set[asyncio.Task[None]] = field(default_factory=set)


class CampaignSender:
    """Delivers the campaign rows of one channel (optionally of one campaign only)."""

    def __init__(self, store: Store, channel: str, deliverer: Deliverer,
                 options: SenderOptions, *, campaign_id: int | None = None,
                 limiter: RateLimiter | None = None, on_sent: OnSent | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.channel = channel
        self.deliverer = deliverer
        self.options = options
        self.campaign_id = campaign_id
        self.limiter = limiter or RateLimiter(store, clock=clock)
        self.on_sent = on_sent
        self.clock = clock
        self.stats = SenderStats()
        self._backoff_until = 0.0
        self._cap_checked: dict[int, float] = {}
        self._slots = asyncio.Semaphore(options.concurrency)

    # --- the loop -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set (or the task is cancelled), then clean up."""
        run = _Run(asyncio.Queue())
        flusher = asyncio.create_task(self._flush_loop(run.results))
        try:
            while not stop.is_set():
                try:
                    worked = await self._round(stop, run)
                except Exception as exc:  # the loop must survive a database outage
                    log.warning("campaign sender %s: round failed (%s); retrying",
                                self.channel, type(exc).__name__)
                    await self._give_back(run)
                    worked = False
                if not worked:
                    await _wait(stop, self.options.idle)
        finally:
            await self._shutdown(run, flusher)

    async def _round(self, stop: asyncio.Event, run: _Run) -> bool:
        wait = self._backoff_until - self.clock()
        if wait > 0:
            await _wait(stop, wait)
            return True
        rows = await self._lease()
        if not rows:
            return False
        reservation = await self.limiter.reserve(self.channel, len(rows), self.options.rate)
        if reservation.paused_until is not None:
            self._backoff_until = max(self._backoff_until, reservation.paused_until)
            async with self.store.session() as db:
                await self._release(db, rows, delay=reservation.paused_until - self.clock())
            return True
        run.slots = list(zip(reservation.slots, rows, strict=True))
        await self._dispatch(stop, run)
        return True

    async def _dispatch(self, stop: asyncio.Event, run: _Run) -> None:
        tick = self.options.tick
        while run.slots:
            if stop.is_set():
                return  # the rest is given back by _shutdown
            await self._sleep_until(run.slots[0][0] - tick)
            horizon = self.clock() + tick
            size = next((i for i, (slot, _) in enumerate(run.slots) if slot > horizon),
                        len(run.slots)) or 1
            group = run.slots[:size]
            allowed, paused = await self._check([row for _, row in group])
            del run.slots[:size]
            if paused:
                await self._give_back(run, delay=paused)
                self._backoff_until = max(self._backoff_until, self.clock() + paused)
                return
            permitted = {row.outbox_id for row in allowed}
            for index, (slot, row) in enumerate(group):
                if row.outbox_id not in permitted:
                    continue
                await self._sleep_until(slot)
                if stop.is_set() or self.clock() < self._backoff_until:
                    rest = [r for _, r in group[index:] if r.outbox_id in permitted]
                    run.slots[:0] = [(slot, r) for r in rest]
                    await self._give_back(run, delay=max(0.0, self._backoff_until - self.clock()))
                    return
                await self._slots.acquire()
                task = asyncio.create_task(self._deliver(row, run.results))
                run.inflight.add(task)
                task.add_done_callback(run.inflight.discard)

    async def _deliver(self, row: _Row, results: asyncio.Queue[_Result | None]) -> None:
        try:
            try:
                result = await self.deliverer.deliver(row.address, row.messages)
            except asyncio.CancelledError:
                results.put_nowait(_Result(row, Outcome.INTERRUPTED, "interrupted"))
                raise
            except Exception as exc:
                results.put_nowait(await self._failed(row, exc))
                return
            now = self.clock()
            self.stats.sent += 1
            self.stats.first_sent = self.stats.first_sent or now
            self.stats.last_sent = now
            results.put_nowait(_Result(row, Outcome.SENT))
            if self.on_sent is not None:
                try:
                    await self.on_sent(Sent(row.outbox_id, row.user_id, row.campaign_id, result))
                except Exception as exc:
                    log.warning("campaign sender %s: on_sent hook failed (%s)",
                                self.channel, type(exc).__name__)
        finally:
            self._slots.release()

    async def _failed(self, row: _Row, exc: Exception) -> _Result:
        outcome = classify(exc)
        error = type(exc).__name__[:64]
        if outcome is Outcome.RATE_LIMITED:
            seconds = retry_after(exc) or 1.0
            self.stats.rate_limited += 1
            self._backoff_until = max(self._backoff_until, self.clock() + seconds)
            try:
                self._backoff_until = max(self._backoff_until,
                                          await self.limiter.back_off(self.channel, seconds))
            except Exception as db_exc:  # the local pause still holds for this process
                log.warning("campaign sender %s: could not share a flood wait (%s)",
                            self.channel, type(db_exc).__name__)
            log.warning("campaign sender %s: flood control, pausing the channel %.1fs",
                        self.channel, seconds)
            return _Result(row, outcome, "rate limited", utcnow() + timedelta(seconds=seconds))
        if outcome is Outcome.BLOCKED:
            self.stats.blocked += 1
        else:
            self.stats.errors += 1
        return _Result(row, outcome, getattr(exc, "reason", None) or error)

    # --- transactions ---------------------------------------------------------------------
    async def _lease(self) -> list[_Row]:
        now = utcnow()
        async with self.store.session() as db:
            closed = await self._closed_campaigns(db, now)
            due = (OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now) | (
                (OutboxMessage.status == "sending") & (OutboxMessage.lease_until < now))
            query = (
                select(OutboxMessage.id, OutboxMessage.user_id, OutboxMessage.attempts,
                       OutboxMessage.payload_enc, User.address_enc, CampaignDelivery.id,
                       CampaignDelivery.status, CampaignDelivery.campaign_id)
                .join(CampaignDelivery, CampaignDelivery.outbox_id == OutboxMessage.id)
                .join(Campaign, Campaign.id == CampaignDelivery.campaign_id)
                .join(User, User.id == OutboxMessage.user_id)
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
            leased = [r for r in found if r[6] != "sending" and r[4] is not None]
            if doubtful:
                log.warning("campaign sender %s: %d message(s) in doubt after a crash; not "
                            "sending them again", self.channel, len(doubtful))
                await self._finish(db, [r[0] for r in doubtful], [r[5] for r in doubtful],
                                   outbox="failed", delivery="in_doubt", error="in doubt")
            if no_address:
                await self._finish(db, [r[0] for r in no_address], [r[5] for r in no_address],
                                   outbox="failed", delivery="failed", error="no address")
            if leased:
                await db.execute(
                    update(OutboxMessage).where(OutboxMessage.id.in_([r[0] for r in leased]))
                    .values(status="sending", lease_until=now + self.options.lease,
                            attempts=OutboxMessage.attempts + 1))
        cipher = self.store.cipher
        return [_Row(r[0], r[5], r[7], r[1], r[2] + 1,
                     cipher.decrypt_text(r[4], context=b"users.address"),
                     open_payload(cipher, r[3])) for r in leased]

    async def _closed_campaigns(self, db: AsyncSession, now: datetime) -> list[int]:
        """Sending campaigns that may not send now: outside their window, or just paused
        because too many recipients asked for a person (``max_handoffs_per_hour``)."""
        query = select(Campaign).where(Campaign.status == "sending")
        if self.campaign_id is not None:
            query = query.where(Campaign.id == self.campaign_id)
        closed = []
        for campaign in await db.scalars(query):
            if not sendable(campaign, now):
                closed.append(campaign.id)
            elif campaign.max_handoffs_per_hour and await self._over_cap(db, campaign, now):
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

    async def _check(self, rows: Sequence[_Row]) -> tuple[list[_Row], float]:
        """Right before sending a group: may each still go? Marks those that may as
        ``sending`` (from here on a crash leaves them in doubt, not re-sendable)."""
        now = utcnow()
        async with self.store.session() as db:
            paused = await self.limiter.paused_for(db, self.channel)
            if paused > 0:
                await self._release(db, rows, delay=paused)
                return [], paused
            campaign_ids = {row.campaign_id for row in rows}
            campaigns = await db.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids)))
            open_ids = {c.id for c in campaigns if sendable(c, now)}
            reachable = set(await db.scalars(
                select(User.id).join(Subscription, Subscription.user_id == User.id)
                .where(User.id.in_({row.user_id for row in rows}),
                       User.unreachable.is_(False))))
            closed = [r for r in rows if r.campaign_id not in open_ids]
            gone = [r for r in rows if r.campaign_id in open_ids and r.user_id not in reachable]
            allowed = [r for r in rows if r.campaign_id in open_ids and r.user_id in reachable]
            if closed:
                await self._release(db, closed)
            if gone:  # opted out (or blocked us) since targeting: nobody is messaged unasked
                await self._finish(db, [r.outbox_id for r in gone], [r.delivery_id for r in gone],
                                   outbox="failed", delivery="skipped", error="opted out")
            if allowed:
                await db.execute(
                    update(CampaignDelivery)
                    .where(CampaignDelivery.id.in_([r.delivery_id for r in allowed]))
                    .values(status="sending", attempted_at=now))
        return allowed, 0.0

    async def _release(self, db: AsyncSession, rows: Sequence[_Row], *,
                       delay: float = 0.0) -> None:
        """Give rows back unsent: due again after ``delay`` seconds, attempt not counted."""
        if not rows:
            return
        await db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([r.outbox_id for r in rows]),
                   OutboxMessage.status == "sending")
            .values(status="pending", lease_until=None, attempts=_ATTEMPT_BACK,
                    next_attempt_at=utcnow() + timedelta(seconds=max(0.0, delay))))
        await db.execute(
            update(CampaignDelivery)
            .where(CampaignDelivery.id.in_([r.delivery_id for r in rows]),
                   CampaignDelivery.status == "sending")
            .values(status="targeted"))

    async def _give_back(self, run: _Run, *, delay: float = 0.0) -> None:
        rows = [row for _, row in run.slots]
        run.slots = []
        if rows:
            async with self.store.session() as db:
                await self._release(db, rows, delay=delay)

    @staticmethod
    async def _finish(db: AsyncSession, outbox_ids: Sequence[int], delivery_ids: Sequence[int],
                      *, outbox: str, delivery: str, error: str | None,
                      sent_at: datetime | None = None) -> None:
        values: dict[str, Any] = {"status": outbox, "lease_until": None, "last_error": error}
        if sent_at is not None:
            values["sent_at"] = sent_at
        await db.execute(update(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))
                         .values(**values))
        values = {"status": delivery, "last_error": error}
        if sent_at is not None:
            values["sent_at"] = sent_at
        await db.execute(update(CampaignDelivery).where(CampaignDelivery.id.in_(delivery_ids))
                         .values(**values))

    # --- settling results (group commit) --------------------------------------------------
    async def _flush_loop(self, results: asyncio.Queue[_Result | None]) -> None:
        finished = False
        while not finished:
            item = await results.get()
            batch = [] if item is None else [item]
            finished = item is None
            while not results.empty():
                more = results.get_nowait()
                if more is None:
                    finished = True
                else:
                    batch.append(more)
            if batch:
                await self._settle_retrying(batch)

    async def _settle_retrying(self, batch: list[_Result]) -> None:
        for attempt in range(6):
            try:
                await self._settle(batch)
                return
            except Exception as exc:
                log.warning("campaign sender %s: recording %d result(s) failed (%s)",
                            self.channel, len(batch), type(exc).__name__)
                await asyncio.sleep(min(5.0, 0.1 * 2 ** attempt))
        log.error("campaign sender %s: %d result(s) not recorded; their rows will be in doubt",
                  self.channel, len(batch))

    async def _settle(self, batch: list[_Result]) -> None:
        now = utcnow()
        by_outcome: dict[Outcome, list[_Result]] = {}
        for result in batch:
            by_outcome.setdefault(result.outcome, []).append(result)
        async with self.store.session() as db:
            for outcome, results in by_outcome.items():
                await self._settle_group(db, outcome, results, now)

    async def _settle_group(self, db: AsyncSession, outcome: Outcome, results: list[_Result],
                            now: datetime) -> None:
        outbox_ids = [r.row.outbox_id for r in results]
        delivery_ids = [r.row.delivery_id for r in results]
        if outcome is Outcome.SENT:
            await self._finish(db, outbox_ids, delivery_ids, outbox="sent", delivery="sent",
                               error=None, sent_at=now)
        elif outcome is Outcome.BLOCKED:
            await self._finish(db, outbox_ids, delivery_ids, outbox="failed",
                               delivery="blocked", error="refused")
            await db.execute(update(User).where(User.id.in_([r.row.user_id for r in results]))
                             .values(unreachable=True))
        elif outcome is Outcome.REFUSED:
            await self._finish(db, outbox_ids, delivery_ids, outbox="failed",
                               delivery="failed", error=results[0].error)
        elif outcome is Outcome.INTERRUPTED:
            await self._finish(db, outbox_ids, delivery_ids, outbox="failed",
                               delivery="in_doubt", error="in doubt")
        elif outcome is Outcome.HELD:
            await self._back_to(db, results, outbox="held", delivery="held", due=now)
        elif outcome is Outcome.RATE_LIMITED:
            due = max((r.resume_at or now) for r in results)
            await self._back_to(db, results, outbox="pending", delivery="targeted", due=due)
        else:
            await self._retry_or_fail(db, results, now)

    @staticmethod
    async def _back_to(db: AsyncSession, results: list[_Result], *, outbox: str, delivery: str,
                       due: datetime) -> None:
        """Not sent, through nobody's fault: the attempt does not count."""
        await db.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_([r.row.outbox_id for r in results]))
            .values(status=outbox, lease_until=None, attempts=_ATTEMPT_BACK,
                    next_attempt_at=due, last_error=results[0].error))
        await db.execute(
            update(CampaignDelivery)
            .where(CampaignDelivery.id.in_([r.row.delivery_id for r in results]))
            .values(status=delivery, last_error=results[0].error))

    async def _retry_or_fail(self, db: AsyncSession, results: list[_Result],
                             now: datetime) -> None:
        final = [r for r in results if r.row.attempts >= self.options.max_attempts]
        if final:
            await self._finish(db, [r.row.outbox_id for r in final],
                               [r.row.delivery_id for r in final], outbox="failed",
                               delivery="failed", error=final[0].error)
        for result in (r for r in results if r.row.attempts < self.options.max_attempts):
            backoff = min(self.options.max_backoff, 2.0 ** result.row.attempts)
            await db.execute(
                update(OutboxMessage).where(OutboxMessage.id == result.row.outbox_id)
                .values(status="pending", lease_until=None, last_error=result.error,
                        next_attempt_at=as_utc(now) + timedelta(seconds=backoff)))
            await db.execute(
                update(CampaignDelivery).where(CampaignDelivery.id == result.row.delivery_id)
                .values(status="targeted", last_error=result.error))

    # --- ending ---------------------------------------------------------------------------
    async def _shutdown(self, run: _Run, flusher: asyncio.Task[None]) -> None:
        """Wait for calls in flight (they are recorded), give back what was not sent."""
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
