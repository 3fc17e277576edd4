"""Campaigns and their life: draft → scheduled → sending ⇄ paused → done.

Every change is one short transaction on the ``campaigns`` row; senders read the status before
each group of sends, so a pause takes effect at once in every process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outreach.message_file import MessageFile
from bot.outreach.models import Campaign, CampaignDelivery
from bot.outreach.segments import parse, to_clause
from bot.outreach.window import DEFAULT_TIMEZONE, DEFAULT_WINDOW, is_open, parse_window, zone
from bot.store.models import OutboxMessage, Subscription, User
from bot.store.repository import as_utc

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
WAITING = ("targeted", "sending", "held")
"""Delivery statuses of a recipient whose message has not reached a final state."""


class CampaignError(ValueError):
    """An operator asked for something the campaign cannot do (unknown, wrong status...)."""


async def create(
    db: AsyncSession, *, name: str, message_file: MessageFile, segment: str,
    vocabulary: Mapping[str, frozenset[str]], now: datetime, at: datetime | None = None,
    window: str | None = None, timezone: str = DEFAULT_TIMEZONE,
    max_handoffs_per_hour: int | None = None, attribution_hours: int = 24,
) -> Campaign:
    """Validate everything (segment, window, time zone) and store a draft or scheduled campaign."""
    if not _NAME.match(name):
        raise CampaignError(f"invalid campaign name {name!r}: letters, digits, '_', '-', '.'")
    if await db.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
        raise CampaignError(f"a campaign named {name!r} exists already")
    parse(segment, vocabulary)
    window = window or message_file.window or DEFAULT_WINDOW
    parse_window(window)
    zone(timezone)
    if at is not None:  # a bare time is the campaign's local time; stored in UTC, because
        # SQLite keeps no offset
        at = (at if at.tzinfo else at.replace(tzinfo=zone(timezone))).astimezone(UTC)
    campaign = Campaign(
        name=name, status="scheduled" if at else "draft", messages=message_file.to_json(),
        segment=segment.strip(), scheduled_at=at, window=window, timezone=timezone,
        ignore_window=False,
        max_handoffs_per_hour=max_handoffs_per_hour or message_file.max_handoffs_per_hour,
        attribution_hours=attribution_hours, cursor=0, targeting_done=False, created_at=now,
    )
    db.add(campaign)
    await db.flush()
    return campaign


async def get(db: AsyncSession, name: str, *, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.name == name)
    if lock and db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    campaign = await db.scalar(query)
    if campaign is None:
        raise CampaignError(f"no campaign named {name!r}")
    return campaign


async def list_all(db: AsyncSession) -> list[Campaign]:
    return list(await db.scalars(select(Campaign).order_by(Campaign.created_at, Campaign.id)))


async def start_now(db: AsyncSession, name: str, now: datetime) -> Campaign:
    """``campaign send``: an explicit operator action, so quiet hours do not apply."""
    campaign = await get(db, name, lock=True)
    if campaign.status == "paused":
        raise CampaignError(f"campaign {name!r} is paused: `sanad campaign resume {name}` first")
    if campaign.status == "done":
        raise CampaignError(f"campaign {name!r} is done already")
    campaign.status, campaign.ignore_window = "sending", True
    campaign.started_at = campaign.started_at or now
    return campaign


async def start_due(db: AsyncSession, now: datetime) -> list[str]:
    """The worker's part: scheduled campaigns whose time has come start sending (inside their
    window only; outside it they are ``sending`` but wait for the window to open)."""
    due = list(await db.scalars(select(Campaign).where(
        Campaign.status == "scheduled", Campaign.scheduled_at <= now)))
    for campaign in due:
        campaign.status = "sending"
        campaign.started_at = campaign.started_at or now
    return [c.name for c in due]


async def pause(db: AsyncSession, name: str, now: datetime, reason: str = "operator") -> Campaign:
    campaign = await get(db, name, lock=True)
    if campaign.status not in ("scheduled", "sending"):
        raise CampaignError(f"campaign {name!r} is {campaign.status}: only a scheduled or "
                            "sending campaign can be paused")
    campaign.status, campaign.paused_at, campaign.pause_reason = "paused", now, reason
    return campaign


async def resume(db: AsyncSession, name: str) -> Campaign:
    campaign = await get(db, name, lock=True)
    if campaign.status != "paused":
        raise CampaignError(f"campaign {name!r} is {campaign.status}, not paused")
    campaign.status = "sending" if campaign.started_at else "scheduled"
    campaign.pause_reason = None
    return campaign


class Schedule(Protocol):
    """What deciding "may it send now" reads (a ``Campaign`` or a row of its columns)."""

    status: str
    ignore_window: bool
    window: str | None
    timezone: str


SCHEDULE_COLUMNS = (Campaign.id, Campaign.status, Campaign.ignore_window, Campaign.window,
                    Campaign.timezone)


def sendable(campaign: Schedule, now: datetime) -> bool:
    """May this campaign's messages go out now? ``done`` campaigns only have late rows left
    (released after a WhatsApp hold), which go out whenever the user is back."""
    if campaign.status == "done":
        return True
    if campaign.status != "sending":
        return False
    return campaign.ignore_window or is_open(campaign.window, campaign.timezone, now)


async def waiting(db: AsyncSession, campaign_id: int, channel: str | None = None) -> int:
    """Recipients whose message still has to be dispatched (held ones wait for the user)."""
    query = (select(func.count()).select_from(CampaignDelivery)
             .join(OutboxMessage, OutboxMessage.id == CampaignDelivery.outbox_id)
             .where(CampaignDelivery.campaign_id == campaign_id,
                    CampaignDelivery.status.in_(("targeted", "sending")),
                    OutboxMessage.status.in_(("pending", "sending"))))
    if channel is not None:
        query = query.where(CampaignDelivery.channel == channel)
    return int(await db.scalar(query) or 0)


async def waiting_channels(db: AsyncSession, campaign_id: int) -> dict[str, int]:
    rows = await db.execute(
        select(CampaignDelivery.channel, func.count())
        .join(OutboxMessage, OutboxMessage.id == CampaignDelivery.outbox_id)
        .where(CampaignDelivery.campaign_id == campaign_id,
               CampaignDelivery.status.in_(("targeted", "sending")),
               OutboxMessage.status.in_(("pending", "sending")))
        .group_by(CampaignDelivery.channel))
    return {str(channel): int(count) for channel, count in rows.all()}


async def finish_if_complete(db: AsyncSession, campaign_id: int, now: datetime) -> bool:
    """Mark a sending campaign ``done`` once every recipient was targeted and dispatched."""
    campaign = await db.get(Campaign, campaign_id)
    if campaign is None or campaign.status != "sending" or not campaign.targeting_done:
        return False
    if await waiting(db, campaign_id):
        return False
    campaign.status, campaign.finished_at = "done", now
    return True


async def count_matching(db: AsyncSession, segment: str, now: datetime,
                         default_language: str) -> int:
    """How many opted-in, reachable users the segment selects now (a preview for ``create``)."""
    clause = to_clause(parse(segment, {}), now=now, default_language=default_language)
    return int(await db.scalar(
        select(func.count()).select_from(User)
        .join(Subscription, Subscription.user_id == User.id)
        .where(User.unreachable.is_(False), User.contact_paused_at.is_(None), clause)) or 0)


def local_time(campaign: Campaign, moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return as_utc(moment).astimezone(zone(campaign.timezone)).strftime("%Y-%m-%d %H:%M %Z")
