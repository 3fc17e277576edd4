"""How a campaign message's two records move together: its outbox row and its delivery row.

Every function runs inside the caller's transaction and changes many rows with one ``UPDATE``
per kind of change (by id), so settling a group of results costs a handful of statements.

    outbox row            CampaignDelivery      meaning
    pending → sending     targeted              leased by a sender (attempt counted)
    sending               sending               checked and handed to the platform
    sent                  sent                  the platform accepted it
    failed                blocked               the user blocked the bot (user unreachable)
    failed                failed                refused, or transient errors too many times
    failed                skipped               opted out / unreachable since targeting
    failed                in_doubt              sender died during the call: never re-sent
    held                  held                  wait until the user writes (WhatsApp window)
    pending               targeted              given back unsent, or retry later
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from bot.messages import Outbound
from bot.outreach.delivery import Outcome
from bot.outreach.models import CampaignDelivery
from bot.store.models import OutboxMessage, User
from bot.store.repository import as_utc, utcnow

ATTEMPT_BACK = case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0)
"""A lease counts an attempt; rows given back unsent (or held, or flood-limited) regain it."""


@dataclass(frozen=True, slots=True)
class Row:
    """A leased campaign message, ready to send."""

    outbox_id: int
    delivery_id: int
    campaign_id: int
    user_id: int
    attempts: int
    address: str
    messages: list[Outbound]


@dataclass(frozen=True, slots=True)
class Result:
    row: Row
    outcome: Outcome
    error: str | None = None
    resume_at: datetime | None = None


async def write(db: AsyncSession, statement: Executable) -> None:
    """An UPDATE by id: no ORM session to synchronise (we hold no objects of these rows)."""
    await db.execute(statement, execution_options={"synchronize_session": False})


async def finish(db: AsyncSession, outbox_ids: Sequence[int], delivery_ids: Sequence[int], *,
                 outbox: str, delivery: str, error: str | None,
                 sent_at: datetime | None = None) -> None:
    """A final state for both records."""
    values: dict[str, Any] = {"status": outbox, "lease_until": None, "last_error": error}
    if sent_at is not None:
        values["sent_at"] = sent_at
    await write(db, update(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))
                .values(**values))
    values = {"status": delivery, "last_error": error}
    if sent_at is not None:
        values["sent_at"] = sent_at
    await write(db, update(CampaignDelivery).where(CampaignDelivery.id.in_(delivery_ids))
                .values(**values))


async def mark_sending(db: AsyncSession, rows: Sequence[Row], now: datetime) -> set[int]:
    """About to call the platform: from here on a crash leaves these rows in doubt.

    Only rows still waiting (``targeted``, or ``held`` and released) are marked; their delivery
    ids are returned. A row that is already ``sending`` or settled was leased again after its
    lease ran out while it waited (a slow or stalled sender): the other copy owns it, and the
    caller must drop this one, so that nobody gets it twice.
    """
    result = await db.execute(
        update(CampaignDelivery)
        .where(CampaignDelivery.id.in_({r.delivery_id for r in rows}),
               CampaignDelivery.status.in_(("targeted", "held")))
        .values(status="sending", attempted_at=now).returning(CampaignDelivery.id),
        execution_options={"synchronize_session": False})
    return set(result.scalars())


async def release(db: AsyncSession, rows: Sequence[Row], *, delay: float = 0.0) -> None:
    """Give rows back unsent: due again after ``delay`` seconds, attempt not counted."""
    if not rows:
        return
    await write(db, update(OutboxMessage)
                .where(OutboxMessage.id.in_([r.outbox_id for r in rows]),
                       OutboxMessage.status == "sending")
                .values(status="pending", lease_until=None, attempts=ATTEMPT_BACK,
                        next_attempt_at=utcnow() + timedelta(seconds=max(0.0, delay))))
    await write(db, update(CampaignDelivery)
                .where(CampaignDelivery.id.in_([r.delivery_id for r in rows]),
                       CampaignDelivery.status == "sending")
                .values(status="targeted"))


async def settle(db: AsyncSession, results: Sequence[Result], now: datetime, *,
                 max_attempts: int, max_backoff: float) -> None:
    """Record what the platform said about each message."""
    by_outcome: dict[Outcome, list[Result]] = {}
    for result in results:
        by_outcome.setdefault(result.outcome, []).append(result)
    for outcome, group in by_outcome.items():
        outbox_ids = [r.row.outbox_id for r in group]
        delivery_ids = [r.row.delivery_id for r in group]
        if outcome is Outcome.SENT:
            await finish(db, outbox_ids, delivery_ids, outbox="sent", delivery="sent",
                         error=None, sent_at=now)
        elif outcome is Outcome.BLOCKED:
            await finish(db, outbox_ids, delivery_ids, outbox="failed", delivery="blocked",
                         error="refused")
            await write(db, update(User).where(User.id.in_([r.row.user_id for r in group]))
                        .values(unreachable=True))
        elif outcome is Outcome.REFUSED:
            await finish(db, outbox_ids, delivery_ids, outbox="failed", delivery="failed",
                         error=group[0].error)
        elif outcome is Outcome.INTERRUPTED:
            await finish(db, outbox_ids, delivery_ids, outbox="failed", delivery="in_doubt",
                         error="in doubt")
        elif outcome is Outcome.HELD:
            await _back_to(db, group, outbox="held", delivery="held", due=now)
        elif outcome is Outcome.RATE_LIMITED:
            due = max((r.resume_at or now) for r in group)
            await _back_to(db, group, outbox="pending", delivery="targeted", due=due)
        else:
            await _retry_or_fail(db, group, now, max_attempts, max_backoff)


async def _back_to(db: AsyncSession, results: Sequence[Result], *, outbox: str, delivery: str,
                   due: datetime) -> None:
    """Not sent, through nobody's fault: the attempt does not count."""
    await write(db, update(OutboxMessage)
                .where(OutboxMessage.id.in_([r.row.outbox_id for r in results]))
                .values(status=outbox, lease_until=None, attempts=ATTEMPT_BACK,
                        next_attempt_at=due, last_error=results[0].error))
    await write(db, update(CampaignDelivery)
                .where(CampaignDelivery.id.in_([r.row.delivery_id for r in results]))
                .values(status=delivery, last_error=results[0].error))


async def _retry_or_fail(db: AsyncSession, results: Sequence[Result], now: datetime,
                         max_attempts: int, max_backoff: float) -> None:
    final = [r for r in results if r.row.attempts >= max_attempts]
    if final:
        await finish(db, [r.row.outbox_id for r in final], [r.row.delivery_id for r in final],
                     outbox="failed", delivery="failed", error=final[0].error)
    for result in (r for r in results if r.row.attempts < max_attempts):
        backoff = min(max_backoff, 2.0 ** result.row.attempts)
        await write(db, update(OutboxMessage).where(OutboxMessage.id == result.row.outbox_id)
                    .values(status="pending", lease_until=None, last_error=result.error,
                            next_attempt_at=as_utc(now) + timedelta(seconds=backoff)))
        await write(db, update(CampaignDelivery)
                    .where(CampaignDelivery.id == result.row.delivery_id)
                    .values(status="targeted", last_error=result.error))
