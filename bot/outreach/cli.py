"""``sanad campaign create|list|show|send|pause|resume|report`` (see CONTRACT.md).

``register(commands)`` adds the commands to the ``sanad`` parser; each handler is
``async (args, settings) -> exit code``. Operator errors (unknown campaign, bad segment, bad
message file) print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.config import Settings
from bot.outreach import campaigns, stats
from bot.outreach.delivery import Deliverer, OnSent
from bot.outreach.message_file import MessageFileError, messages_from_json
from bot.outreach.message_file import load as load_message_file
from bot.outreach.models import Campaign
from bot.outreach.progress import ProgressBar
from bot.outreach.ratelimit import default_rate
from bot.outreach.segments import SegmentError, default_vocabulary, describe, parse
from bot.outreach.sender import CampaignSender, SenderOptions
from bot.outreach.targeting import target_all
from bot.outreach.window import DEFAULT_TIMEZONE, WindowError
from bot.sendbudget import SendBudget
from bot.sendbudget.config import channel_budgets
from bot.store.db import open_database
from bot.store.repository import Store, as_utc, utcnow

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace, Settings], Awaitable[int]]
POLL = 0.25
_OPERATOR_ERRORS = (campaigns.CampaignError, SegmentError, MessageFileError, WindowError)


@cache
def text() -> dict[str, str]:
    return dict(yaml.safe_load(Path(__file__).with_name("cli_text.yml").read_text("utf-8")))


def register(commands: Any) -> None:
    """Add ``campaign ...`` to the ``sanad`` subcommands (an argparse subparsers object)."""
    campaign = commands.add_parser("campaign", help="outreach campaigns to opted-in users")
    sub = campaign.add_subparsers(dest="campaign_command", required=True)

    create = sub.add_parser("create", help="create a campaign (draft, or scheduled with --at)")
    create.add_argument("name")
    create.add_argument("--message-file", required=True, type=Path,
                        help="YAML: ar/en/fr texts, optional buttons: [aw:open:<module>]")
    create.add_argument("--segment", default="",
                        help="e.g. 'language=ar and governorate in (cairo, giza)'")
    create.add_argument("--at", type=_when, help="ISO time to start (the worker sends it)")
    create.add_argument("--window", help="quiet-hours window for scheduled sends, "
                                         "default 09:00-21:00")
    create.add_argument("--timezone", default=DEFAULT_TIMEZONE)
    create.add_argument("--max-handoffs-per-hour", type=_positive_int,
                        help="pause when this many recipients ask for a person in an hour")
    create.set_defaults(handler=cmd_create)

    listing = sub.add_parser("list", help="all campaigns")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    show = sub.add_parser("show", help="one campaign's settings and progress")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)

    send = sub.add_parser("send", help="send now, in the foreground, with a progress bar")
    send.add_argument("name")
    send.add_argument("--rate", type=_positive_float,
                      help="messages per second per channel (telegram 25, whatsapp 60)")
    send.set_defaults(handler=cmd_send)

    for action, handler, helptext in (("pause", cmd_pause, "stop sending at once"),
                                      ("resume", cmd_resume, "continue a paused campaign")):
        parser = sub.add_parser(action, help=helptext)
        parser.add_argument("name")
        parser.set_defaults(handler=handler)

    report = sub.add_parser("report", help="delivery funnel and what recipients did next")
    report.add_argument("name")
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=cmd_report)


# --- argument types ---------------------------------------------------------------------------
def _when(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {value!r}") from None


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value!r}")
    return number


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return int(value)


# --- plumbing ---------------------------------------------------------------------------------
@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """A store on the migrated database, closed afterwards (one-shot commands)."""
    async with open_database(settings.database_url) as engine:
        yield Store.from_settings(settings, engine)


def _fail(exc: Exception) -> int:
    print(text()["error"].format(error=exc), file=sys.stderr)
    return 1


def _emit(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False))


# --- commands ---------------------------------------------------------------------------------
async def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import load_content

    content, _ = load_content(settings)
    ages = tuple(option.id for option in content.screening.age_options)
    now = utcnow()
    try:
        message_file = load_message_file(args.message_file, content)
        async with open_store(settings) as store, store.session() as db:
            campaign = await campaigns.create(
                db, name=args.name, message_file=message_file, segment=args.segment,
                vocabulary=default_vocabulary(ages), now=now, at=args.at, window=args.window,
                timezone=args.timezone, max_handoffs_per_hour=args.max_handoffs_per_hour)
            matching = await campaigns.count_matching(db, campaign.segment, now,
                                                      settings.default_language)
            print(text()["created"].format(name=campaign.name, status=campaign.status,
                                           matching=matching))
            if campaign.scheduled_at is not None:
                print(text()["scheduled_for"].format(
                    at=campaigns.local_time(campaign, campaign.scheduled_at),
                    window=campaign.window, timezone=campaign.timezone))
    except _OPERATOR_ERRORS as exc:
        return _fail(exc)
    return 0


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async with open_store(settings) as store, store.session() as db:
        rows = [(c, await stats.progress(db, c.id)) for c in await campaigns.list_all(db)]
    if args.json:
        _emit([{"name": c.name, "status": c.status, "targeted": p.targeted, "sent": p.sent,
                "created_at": _iso(c.created_at), "scheduled_at": _iso(c.scheduled_at)}
               for c, p in rows])
        return 0
    if not rows:
        print(text()["no_campaigns"])
        return 0
    print(text()["list_header"].format(name="NAME", status="STATUS", targeted="TARGETED",
                                       sent="SENT", created="CREATED"))
    for campaign, progress in rows:
        print(text()["list_row"].format(
            name=campaign.name, status=campaign.status, targeted=progress.targeted,
            sent=progress.sent, created=campaigns.local_time(campaign, campaign.created_at)))
    return 0


async def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with open_store(settings) as store, store.session() as db:
            campaign = await campaigns.get(db, args.name)
            progress = await stats.progress(db, campaign.id)
    except campaigns.CampaignError as exc:
        return _fail(exc)
    details = _details(campaign, progress)
    if args.json:
        _emit(details)
        return 0
    messages = messages_from_json(campaign.messages)
    print(text()["show"].format(
        **details, reason=f" ({campaign.pause_reason})" if campaign.pause_reason else "",
        languages=", ".join(m.lang for m in messages),
        buttons=", ".join(b.id for b in messages[0].buttons) or "-",
        schedule=campaigns.local_time(campaign, campaign.scheduled_at),
        ignored=text()["window_ignored"] if campaign.ignore_window else "",
        cap=campaign.max_handoffs_per_hour or "-",
        created=campaigns.local_time(campaign, campaign.created_at),
        started=campaigns.local_time(campaign, campaign.started_at),
        finished=campaigns.local_time(campaign, campaign.finished_at)))
    return 0


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def _details(campaign: Campaign, progress: stats.Progress) -> dict[str, Any]:
    return {
        "name": campaign.name, "status": campaign.status, "pause_reason": campaign.pause_reason,
        "segment": describe(parse(campaign.segment, {})), "messages": campaign.messages,
        "scheduled_at": _iso(campaign.scheduled_at), "window": campaign.window,
        "timezone": campaign.timezone, "ignore_window": campaign.ignore_window,
        "max_handoffs_per_hour": campaign.max_handoffs_per_hour,
        "attribution_hours": campaign.attribution_hours,
        "created_at": _iso(campaign.created_at), "started_at": _iso(campaign.started_at),
        "finished_at": _iso(campaign.finished_at),
        "targeted": progress.targeted, "sent": progress.sent, "failed": progress.failed,
        "blocked": progress.blocked, "skipped": progress.skipped,
        "in_doubt": progress.in_doubt,
    }


async def cmd_pause(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with open_store(settings) as store, store.session() as db:
            campaign = await campaigns.pause(db, args.name, utcnow())
    except campaigns.CampaignError as exc:
        return _fail(exc)
    print(text()["paused"].format(name=campaign.name))
    return 0


async def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with open_store(settings) as store, store.session() as db:
            campaign = await campaigns.resume(db, args.name)
    except campaigns.CampaignError as exc:
        return _fail(exc)
    print(text()["resumed"].format(name=campaign.name, status=campaign.status))
    return 0


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with open_store(settings) as store, store.session() as db:
            result = await stats.report(db, await campaigns.get(db, args.name))
    except campaigns.CampaignError as exc:
        return _fail(exc)
    if args.json:
        _emit(result.to_dict())
    else:
        print(text()["report"].format(**result.to_dict()))
    return 0


async def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels.campaigns import campaign_channels

    async with open_store(settings) as store, campaign_channels(settings, store) as channels:
        rates = {channel: args.rate or channels.rates.get(channel, default_rate(channel))
                 for channel in channels.deliverers}
        budgets = channel_budgets(settings, store, channels.deliverers)
        try:
            return await send(store, args.name, channels.deliverers, rates=rates,
                              on_sent=channels.on_sent,
                              default_language=settings.default_language, budgets=budgets)
        except campaigns.CampaignError as exc:
            return _fail(exc)
        finally:
            for budget in budgets.values():
                await budget.aclose()


async def send(store: Store, name: str, deliverers: Mapping[str, Deliverer], *,
               rate: float | None = None, rates: Mapping[str, float] | None = None,
               on_sent: Mapping[str, OnSent] | None = None, default_language: str = "ar",
               options: Mapping[str, Any] | None = None,
               budgets: Mapping[str, SendBudget] | None = None) -> int:
    """Start ``name`` now and send it in the foreground until it is done or paused (or only
    channels without a deliverer here are left); the live progress goes to stderr. ``rate``
    applies to every channel; else ``rates`` per channel, else the channel's default."""
    async with store.session() as db:
        campaign = await campaigns.start_now(db, name, utcnow())
    if not deliverers:
        print(text()["no_deliverers"], file=sys.stderr)
    stop = asyncio.Event()
    hooks = on_sent or {}
    senders = [CampaignSender(store, channel, deliverer,
                              SenderOptions(rate=rate or (rates or {}).get(channel)
                                            or default_rate(channel), **(options or {})),
                              campaign_id=campaign.id, on_sent=hooks.get(channel),
                              budget=(budgets or {}).get(channel))
               for channel, deliverer in deliverers.items()]
    targeting = asyncio.create_task(target_all(store, campaign.id, stop=stop,
                                               default_language=default_language))
    tasks = [asyncio.create_task(s.run(stop)) for s in senders]
    bar = ProgressBar(sys.stderr, name, text()["progress"])
    try:
        outcome = await _follow(store, campaign.id, set(deliverers), targeting, tasks, bar)
    finally:
        stop.set()  # not cancel(): a transaction cut off could keep SQLite's write lock
        await asyncio.gather(targeting, *tasks, return_exceptions=True)
    async with store.session() as db:
        bar.update(await stats.progress(db, campaign.id), force=True)
    bar.finish()
    return await _summarise(store, campaign.id, name, outcome, set(deliverers), bar.rate())


async def _follow(store: Store, campaign_id: int, channels: set[str], targeting: asyncio.Task[int],
                  tasks: list[asyncio.Task[None]], bar: ProgressBar) -> str:
    """Watch the campaign until it is ``done``, ``paused`` or ``stuck`` (only channels
    without a deliverer here have messages left)."""
    while True:
        await asyncio.sleep(POLL)
        for task in (targeting, *tasks):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        async with store.session() as db:
            campaign = await db.get(Campaign, campaign_id)
            if campaign is None:
                raise campaigns.CampaignError("the campaign was deleted")
            bar.update(await stats.progress(db, campaign_id))
            if campaign.status == "paused":
                return "paused"
            if not targeting.done():
                continue
            if await campaigns.finish_if_complete(db, campaign_id, utcnow()):
                return "done"
            left = await campaigns.waiting_channels(db, campaign_id)
            if left and not set(left) & channels:
                return "stuck"


async def _summarise(store: Store, campaign_id: int, name: str, outcome: str,
                     channels: set[str], rate: float) -> int:
    async with store.session() as db:
        campaign = await db.get(Campaign, campaign_id)
        progress = await stats.progress(db, campaign_id)
        left = await campaigns.waiting_channels(db, campaign_id)
    if outcome == "paused" and campaign is not None:
        print(text()["send_paused"].format(name=name, reason=campaign.pause_reason or "operator",
                                           settled=progress.settled,
                                           targeted=progress.targeted), file=sys.stderr)
    for channel, count in left.items():
        if channel not in channels:
            print(text()["send_waiting"].format(name=name, count=count, channel=channel),
                  file=sys.stderr)
    print(text()["send_done"].format(name=name, sent=progress.sent, targeted=progress.targeted,
                                     failed=progress.failed, blocked=progress.blocked,
                                     skipped=progress.skipped, rate=rate))
    return 0
