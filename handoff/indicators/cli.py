"""``sanad indicators --date D [--json|--csv] [--dp [--epsilon E]]``: one day's indicators.

Without ``--dp`` the output is for the organisation itself (k = 5 suppression); with ``--dp``
it is the differentially private release meant to leave the organisation, which spends
privacy budget (see ``handoff.indicators.release``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import Settings
from bot.store.db import transaction
from bot.store.repository import utcnow
from handoff import audit
from handoff.indicators import export
from handoff.indicators.daily import DEFAULT_TZ, build_daily
from handoff.indicators.release import BudgetExceeded, release


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone: {text!r}") from None
    return text


async def cmd_indicators(args: argparse.Namespace, settings: Settings) -> int:
    epsilon = args.epsilon if args.epsilon is not None else settings.dp_epsilon
    if args.dp and not epsilon > 0:
        print("sanad indicators: --epsilon must be positive", file=sys.stderr)
        return 2
    async with transaction(settings.database_url) as db:
        figures = await build_daily(db, args.date, sla=export.sla_of(settings), now=utcnow(),
                                    tz=args.tz)
        if not args.dp:
            audit.record(db, "cli", "indicators.view", detail=args.date.isoformat())
            if args.csv:
                print(export.to_csv(figures), end="")
            else:
                print(json.dumps(export.to_dict(figures), ensure_ascii=False, indent=2))
            return 0
        try:
            published = await release(db, figures, epsilon=epsilon, budget=settings.dp_budget,
                                      released_by="cli", now=utcnow())
        except BudgetExceeded as exc:
            print(f"sanad indicators: {exc}", file=sys.stderr)
            return 1
    if args.csv:
        print(export.release_csv(published.figures, published.day.isoformat()), end="")
    else:
        print(json.dumps(published.to_dict(), ensure_ascii=False, indent=2))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``indicators`` to the ``sanad`` parser."""
    parser = commands.add_parser(
        "indicators", help="one day's referral-mechanism indicators (reached, screened, "
                           "handed off, referred, served)",
        description="Counts of people per governorate and channel, and of referrals per "
                    "partner, for one local day. Counts of 1-4 show as <5 and cells that "
                    "would reveal them as *. --dp prints a differentially private release "
                    "instead, for sharing outside the organisation; it spends privacy budget.")
    parser.add_argument("--date", type=_day, required=True, help="the day, YYYY-MM-DD")
    parser.add_argument("--tz", type=_zone, default=DEFAULT_TZ,
                        help=f"time zone whose day is counted (default {DEFAULT_TZ})")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="JSON output (the default)")
    out.add_argument("--csv", action="store_true", help="CSV output, one figure per line")
    parser.add_argument("--dp", action="store_true",
                        help="differentially private release (spends SANAD_DP_EPSILON from "
                             "the day's SANAD_DP_BUDGET)")
    parser.add_argument("--epsilon", type=float, default=None,
                        help="privacy loss of this release (default SANAD_DP_EPSILON)")
    parser.set_defaults(handler=cmd_indicators)
