"""Targeting: walk the opted-in users in batches by id and queue one message for each.

Keyset pagination (``users.id > cursor ORDER BY id LIMIT n``) never holds the audience in
memory, and the cursor is saved in the same transaction as the batch's outbox rows and
``CampaignDelivery`` rows: a crash loses a whole batch or nothing, and the next run continues
after the last committed recipient. Two workers targeting at once queue on the campaign row's
lock (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite); the outbox idempotency key
``campaign:<id>:<user>`` and the unique ``(campaign_id, user_id)`` make a second copy impossible
even so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbox import enqueue
from bot.outreach.message_file import messages_from_json, pick
from bot.outreach.models import Campaign, CampaignDelivery
from bot.outreach.segments import parse, to_clause
from bot.store.models import OutboxMessage, Subscription, User
from bot.store.repository import Store, utcnow

KIND = "campaign"
TARGETABLE = ("sending", "done")
BATCH = 200
"""Recipients per transaction: short enough not to stall senders on SQLite's write lock."""


class Recipient(NamedTuple):
    id: int
    channel: str
    language: str | None


def idempotency_key(campaign_id: int, user_id: int) -> str:
    return f"campaign:{campaign_id}:{user_id}"


async def target_batch(store: Store, campaign_id: int, *, batch: int = BATCH,
                       default_language: str = "ar", now: datetime | None = None) -> int:
    """Queue the next batch of recipients; returns how many were queued (0 once done)."""
    now = now or utcnow()
    async with store.session() as db:
        query = select(Campaign).where(Campaign.id == campaign_id)
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        campaign = await db.scalar(query)
        if campaign is None or campaign.targeting_done or campaign.status not in TARGETABLE:
            return 0
        clause = to_clause(parse(campaign.segment, {}), now=now,
                           default_language=default_language)
        rows = [Recipient(*row) for row in (await db.execute(
            select(User.id, User.channel, User.language)
            .join(Subscription, Subscription.user_id == User.id)
            .where(User.unreachable.is_(False), User.contact_paused_at.is_(None),
                   User.id > campaign.cursor, clause)
            .order_by(User.id).limit(batch)
        ))]
        queued = await _queue(db, store, campaign, rows, default_language, now)
        if rows:
            campaign.cursor = rows[-1].id
        finished = len(rows) < batch
        if finished:
            campaign.targeting_done = True
        audience = campaign.cursor > 0
    if finished and audience and store.engine.dialect.name == "postgresql":
        await refresh_statistics(store)
    return queued


async def refresh_statistics(store: Store) -> None:
    """Let PostgreSQL's planner see the rows just queued. Without fresh statistics it takes the
    new outbox and delivery rows for a handful and plans the senders' lease query as nested
    bitmap scans: 80-160 ms per lease at 3,000 recipients, enough to slow a broadcast to 70 % of
    its rate (bench/broadcast.py). Autovacuum would analyse them too, but only after a minute."""
    async with store.engine.connect() as conn:
        await conn.execute(text("ANALYZE outbox, campaign_deliveries"))
        await conn.commit()


async def target_all(store: Store, campaign_id: int, *, batch: int = BATCH,
                     default_language: str = "ar", stop: asyncio.Event | None = None) -> int:
    """Target every remaining recipient, batch after batch (the CLI's ``send``); ``stop``
    ends it between two batches (never inside a transaction)."""
    total = 0
    while stop is None or not stop.is_set():
        async with store.session() as db:
            state = (await db.execute(select(Campaign.targeting_done, Campaign.status)
                                      .where(Campaign.id == campaign_id))).first()
        if state is None or state[0] or state[1] not in TARGETABLE:
            return total
        total += await target_batch(store, campaign_id, batch=batch,
                                    default_language=default_language)
    return total


async def _queue(db: AsyncSession, store: Store, campaign: Campaign,
                 rows: Sequence[Recipient], default_language: str, now: datetime) -> int:
    if not rows:
        return 0
    user_ids = [r.id for r in rows]
    known = set(await db.scalars(select(CampaignDelivery.user_id).where(
        CampaignDelivery.campaign_id == campaign.id, CampaignDelivery.user_id.in_(user_ids))))
    messages = messages_from_json(campaign.messages)
    fresh = [r for r in rows if r.id not in known]
    chosen = {}
    with db.no_autoflush:  # one batched INSERT at the end, not one flush per enqueue()'s check
        for row in fresh:
            message = pick(messages, row.language or default_language)
            chosen[row.id] = message.lang
            await enqueue(db, store.cipher, user_id=row.id, channel=row.channel, kind=KIND,
                          messages=[message.outbound()],
                          idempotency_key=idempotency_key(campaign.id, row.id))
    await db.flush()
    keys = {idempotency_key(campaign.id, r.id): r for r in fresh}
    outbox_ids = dict((await db.execute(
        select(OutboxMessage.idempotency_key, OutboxMessage.id)
        .where(OutboxMessage.idempotency_key.in_(list(keys)))
    )).all())
    db.add_all(CampaignDelivery(
        campaign_id=campaign.id, user_id=row.id, outbox_id=outbox_ids.get(key),
        channel=row.channel, language=chosen[row.id], status="targeted", targeted_at=now,
    ) for key, row in keys.items())
    return len(fresh)
