"""What a campaign did: the delivery funnel and what recipients did afterwards.

Funnel figures are cumulative (``sent`` includes messages later ``delivered`` or ``read``). A
message's state is its ``CampaignDelivery`` status, moved on by the outbox row where another
part of the bot settled it: the WhatsApp channel rolls Meta's delivery reports (delivered, read,
failed) up into the outbox row, and the terminal's own outbox sender may deliver a campaign row.

Behaviour after delivery is attributed to the campaign when it happens within
``attribution_hours`` of the recipient's message (24 by default), counting people, not events:
``clicked`` (opened an awareness module the campaign's buttons point to; any module when it has
no buttons), ``screenings_started``, ``handoffs`` (asked for a person). ``opted_out`` counts
recipients who unsubscribed after the campaign started.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import HandoffRequested, ModuleOpened, ScreeningStarted, Unsubscribed
from bot.outreach.message_file import BUTTON_PREFIX, messages_from_json
from bot.outreach.models import Campaign, CampaignDelivery
from bot.store.models import EventRecord, OutboxMessage
from bot.store.repository import as_utc

CLICKED, SCREENING, HANDOFF = (ModuleOpened.__name__, ScreeningStarted.__name__,
                               HandoffRequested.__name__)
UNSUBSCRIBED = Unsubscribed.__name__

EFFECTIVE_STATUS = case(
    (and_(OutboxMessage.status.in_(("delivered", "read")),
          CampaignDelivery.status.in_(("sent", "delivered", "read"))), OutboxMessage.status),
    (and_(OutboxMessage.status == "sent", CampaignDelivery.status == "targeted"), "sent"),
    (and_(OutboxMessage.status == "failed",
          CampaignDelivery.status.in_(("sent", "targeted"))), "failed"),
    else_=CampaignDelivery.status,
)
SENT_AT = func.coalesce(CampaignDelivery.sent_at, OutboxMessage.sent_at)


@dataclass(frozen=True)
class Report:
    campaign: str
    status: str
    targeted: int
    sent: int
    delivered: int
    read: int
    failed: int
    blocked: int
    opted_out: int
    clicked: int
    screenings_started: int
    handoffs: int
    pending: int
    held: int
    skipped: int
    in_doubt: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """Cheap counts for the progress bar (index-only on ``campaign_id, status``)."""

    targeted: int
    sent: int
    failed: int
    blocked: int
    skipped: int
    in_doubt: int

    @property
    def settled(self) -> int:
        return self.sent + self.failed + self.blocked + self.skipped + self.in_doubt


async def status_counts(db: AsyncSession, campaign_id: int, *,
                        effective: bool = True) -> dict[str, int]:
    column = EFFECTIVE_STATUS if effective else CampaignDelivery.status
    query = (select(column, func.count()).select_from(CampaignDelivery)
             .where(CampaignDelivery.campaign_id == campaign_id).group_by(column))
    if effective:
        query = query.outerjoin(OutboxMessage, OutboxMessage.id == CampaignDelivery.outbox_id)
    return {str(status): int(count) for status, count in (await db.execute(query)).all()}


async def progress(db: AsyncSession, campaign_id: int) -> Progress:
    counts = await status_counts(db, campaign_id, effective=False)
    return Progress(
        targeted=sum(counts.values()),
        sent=sum(counts.get(s, 0) for s in ("sent", "delivered", "read")),
        failed=counts.get("failed", 0), blocked=counts.get("blocked", 0),
        skipped=counts.get("skipped", 0), in_doubt=counts.get("in_doubt", 0),
    )


async def report(db: AsyncSession, campaign: Campaign) -> Report:
    counts = await status_counts(db, campaign.id)
    after = await attributed_people(db, campaign, (CLICKED, SCREENING, HANDOFF))
    return Report(
        campaign=campaign.name, status=campaign.status,
        targeted=sum(counts.values()),
        sent=sum(counts.get(s, 0) for s in ("sent", "delivered", "read")),
        delivered=counts.get("delivered", 0) + counts.get("read", 0),
        read=counts.get("read", 0),
        failed=counts.get("failed", 0), blocked=counts.get("blocked", 0),
        opted_out=await opted_out(db, campaign),
        clicked=len(after[CLICKED]), screenings_started=len(after[SCREENING]),
        handoffs=len(after[HANDOFF]),
        pending=counts.get("targeted", 0) + counts.get("sending", 0),
        held=counts.get("held", 0), skipped=counts.get("skipped", 0),
        in_doubt=counts.get("in_doubt", 0),
    )


async def opted_out(db: AsyncSession, campaign: Campaign) -> int:
    if campaign.started_at is None:
        return 0
    return int(await db.scalar(
        select(func.count(func.distinct(CampaignDelivery.user_id)))
        .join(EventRecord, EventRecord.user_id == CampaignDelivery.user_id)
        .where(CampaignDelivery.campaign_id == campaign.id, EventRecord.name == UNSUBSCRIBED,
               EventRecord.created_at >= campaign.started_at)
    ) or 0)


async def attributed_people(db: AsyncSession, campaign: Campaign, names: tuple[str, ...], *,
                            since: datetime | None = None) -> dict[str, set[int]]:
    """Recipients with each event within the attribution window after their message."""
    found: dict[str, set[int]] = {name: set() for name in names}
    if campaign.started_at is None:
        return found
    window = timedelta(hours=campaign.attribution_hours)
    modules = {button.id.removeprefix(BUTTON_PREFIX)
               for message in messages_from_json(campaign.messages)
               for button in message.buttons}
    query = (
        select(EventRecord.user_id, EventRecord.name, EventRecord.data, EventRecord.created_at,
               SENT_AT)
        .join(CampaignDelivery, and_(CampaignDelivery.user_id == EventRecord.user_id,
                                     CampaignDelivery.campaign_id == campaign.id))
        .outerjoin(OutboxMessage, OutboxMessage.id == CampaignDelivery.outbox_id)
        .where(EventRecord.name.in_(names), SENT_AT.is_not(None),
               EventRecord.created_at >= SENT_AT,
               EventRecord.created_at >= (since or campaign.started_at))
    )
    for user_id, name, data, created_at, sent_at in (await db.execute(query)).all():
        if as_utc(created_at) > as_utc(sent_at) + window:
            continue
        if name == CLICKED and modules and (data or {}).get("module_id") not in modules:
            continue
        found[name].add(int(user_id))
    return found


async def recent_handoffs(db: AsyncSession, campaign: Campaign, now: datetime) -> int:
    """People who asked for a person in the last hour, within the attribution window of their
    campaign message (what ``max_handoffs_per_hour`` is compared with)."""
    people = await attributed_people(db, campaign, (HANDOFF,), since=now - timedelta(hours=1))
    return len(people[HANDOFF])
