"""One day's indicators: who was reached, screened, identified, handed to a person, referred,
and whether the service was delivered — per governorate and channel, and per partner.

Every area figure counts **distinct people** in the local day (``Africa/Cairo`` by default, so
a night shift's cases fall on the day Egyptian staff call it). A person belongs to one area
(their governorate, ``unknown`` when they never said, and their channel), so the area rows
partition the people and each metric's total is the sum of its rows; the screening levels
(a person under the level of their latest screening that day) add up to ``screened``. Those
sums are the constraints of the dashboard's complementary suppression (``protect``, k = 5).

Partner figures count **referrals** (a person may be referred to two partners), with the same
k = 5 suppression. Medians are shown only over at least five cases.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import ChildAtRiskReported, MinorDisclosed, ScreeningCompleted
from bot.store.models import Case, EventRecord, User
from bot.store.repository import as_utc
from handoff.dashboard import UNKNOWN, Cell, Constraint, K, Key, activity, protect

TOTAL = "__total__"
LEVELS = ("low", "medium", "high", "urgent")
REFERRAL_STEPS = ("proposed", "consented", "accepted", "completed")
AREA_METRICS = (
    "reached", "screened", *(f"level_{level}" for level in LEVELS), "minors",
    "children_reported", "handoffs", "sla_breaches",
    *(f"referrals_{step}" for step in REFERRAL_STEPS), "services_delivered",
)
PARTNER_METRICS = ("proposed", "consented", "consent_declined", "sent", "accepted", "declined",
                   "in_progress", "completed", "services_delivered", "withdrawn")
AREA_MEDIANS = ("minutes_to_handoff", "hours_to_service")
PARTNER_MEDIANS = ("hours_to_service",)

# Referral events (docs/referrals.md): the step each one marks.
REFERRAL_EVENTS = {
    "ReferralProposed": "proposed", "ReferralConsented": "consented",
    "ReferralConsentDeclined": "consent_declined", "ReferralSent": "sent",
    "ReferralAccepted": "accepted", "ReferralDeclined": "declined",
    "ReferralInProgress": "in_progress", "ReferralCompleted": "completed",
    "ReferralWithdrawn": "withdrawn",
}
SERVICE_DELIVERED = "service_delivered"
SCREENED, MINOR, CHILD = (ScreeningCompleted.__name__, MinorDisclosed.__name__,
                          ChildAtRiskReported.__name__)
DEFAULT_TZ = "Africa/Cairo"
LOOKBACK = timedelta(days=365)
"""How far back a completed referral's "sent" event is looked for (time to service)."""


def day_window(day: date, tz: str = DEFAULT_TZ) -> tuple[datetime, datetime]:
    """The UTC instants where the local ``day`` starts and ends (DST-correct)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def area_key(governorate: str | None, channel: str | None) -> str:
    return f"{governorate or UNKNOWN}|{channel or UNKNOWN}"


def median_of(values: Sequence[float]) -> float | None:
    """The median of at least ``K`` values, rounded, else None (too few to show)."""
    return round(statistics.median(values), 1) if len(values) >= K else None


@dataclass
class _Tally:
    """People (or referrals) per row and metric, and the durations behind the medians."""

    people: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    durations: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    def add(self, row: str, metric: str, who: str) -> None:
        self.people[row][metric].add(who)

    def counts(self) -> dict[str, dict[str, int]]:
        return {row: {m: len(s) for m, s in metrics.items()} for row, metrics in
                self.people.items()}


@dataclass(frozen=True)
class Table:
    """Rows × metrics with a total row (``TOTAL``), already suppressed; raw values kept in
    each ``Cell.value`` for the differentially private release, never shown as such."""

    rows: tuple[str, ...]
    metrics: tuple[str, ...]
    cells: Mapping[Key, Cell]
    medians: Mapping[str, Mapping[str, float | None]]

    def cell(self, row: str, metric: str) -> Cell:
        return self.cells[(row, metric)]

    def only(self, row: str) -> Table:
        """The same table restricted to one row (a partner sees only its own)."""
        rows = tuple(r for r in self.rows if r == row)
        return Table(rows, self.metrics,
                     {k: v for k, v in self.cells.items() if k[0] in rows},
                     {r: m for r, m in self.medians.items() if r in rows})


@dataclass(frozen=True)
class DailyIndicators:
    day: date
    timezone: str
    areas: Table
    partners: Table


def suppressed_table(raw: Mapping[str, Mapping[str, int]], metrics: Sequence[str],
                     durations: Mapping[str, Mapping[str, Sequence[float]]],
                     median_names: Sequence[str],
                     extra: Iterable[Constraint] = ()) -> Table:
    """``row -> metric -> count`` plus a total row, with primary and complementary
    suppression under "total = sum of rows" and any ``extra`` constraints."""
    rows = tuple(sorted(raw, key=lambda r: (UNKNOWN in r, r)))
    values: dict[Key, int] = {}
    for metric in metrics:
        for row in rows:
            values[(row, metric)] = int(raw[row].get(metric, 0))
        values[(TOTAL, metric)] = sum(values[(r, metric)] for r in rows)
    constraints = [((TOTAL, m), tuple((r, m) for r in rows)) for m in metrics]
    medians: dict[str, dict[str, float | None]] = {}
    for name in median_names:
        everyone: list[float] = []
        for row in rows:
            found = list(durations.get(row, {}).get(name, ()))
            everyone += found
            medians.setdefault(row, {})[name] = median_of(found)
        medians.setdefault(TOTAL, {})[name] = median_of(everyone)
    return Table(rows, tuple(metrics), protect(values, [*constraints, *extra]), medians)


async def build_daily(db: AsyncSession, day: date, *, sla: Mapping[str, timedelta],
                      now: datetime, tz: str = DEFAULT_TZ) -> DailyIndicators:
    """The indicators of the local ``day``; ``sla`` maps a case priority to its claim SLA."""
    start, end = day_window(day, tz)
    areas, partners = _Tally(), _Tally()
    await _reached(db, start, end, areas)
    await _events(db, start, end, areas, partners)
    await _cases(db, start, end, sla, now, areas)
    area_rows = {row: metrics for row, metrics in areas.counts().items()}
    levels = [((row, "screened"), tuple((row, f"level_{lv}") for lv in LEVELS))
              for row in (*area_rows, TOTAL)]
    return DailyIndicators(
        day=day, timezone=tz,
        areas=suppressed_table(area_rows, AREA_METRICS, areas.durations, AREA_MEDIANS,
                               extra=levels),
        partners=suppressed_table(partners.counts(), PARTNER_METRICS, partners.durations,
                                  PARTNER_MEDIANS),
    )


async def _reached(db: AsyncSession, start: datetime, end: datetime, tally: _Tally) -> None:
    active = activity(start, end)
    for user_id, governorate, channel in await db.execute(
            select(active.c.user_id, User.governorate, User.channel).distinct()
            .join(User, User.id == active.c.user_id)):
        tally.add(area_key(governorate, channel), "reached", f"u{user_id}")


def _person(user_id: int | None, data: Mapping[str, Any], fallback: str) -> str:
    if user_id is not None:
        return f"u{user_id}"
    return f"{fallback}{data.get('referral_id', '?')}"


async def _events(db: AsyncSession, start: datetime, end: datetime, areas: _Tally,
                  partners: _Tally) -> None:
    names = (SCREENED, MINOR, CHILD, *REFERRAL_EVENTS)
    latest_level: dict[str, tuple[str, str]] = {}
    completed: list[tuple[str, str, str, datetime]] = []  # referral, area, partner, at
    for user_id, name, channel, data, at, governorate, user_channel in await db.execute(
            select(EventRecord.user_id, EventRecord.name, EventRecord.channel,
                   EventRecord.data, EventRecord.created_at, User.governorate, User.channel)
            .outerjoin(User, User.id == EventRecord.user_id)
            .where(EventRecord.name.in_(names), EventRecord.created_at >= start,
                   EventRecord.created_at < end)
            .order_by(EventRecord.created_at, EventRecord.id)):
        data = data or {}
        row = area_key(governorate, user_channel or channel)
        who = _person(user_id, data, "r")
        if name == SCREENED:
            if data.get("risk_level") in LEVELS:
                latest_level[who] = (row, str(data["risk_level"]))
        elif name == MINOR:
            areas.add(row, "minors", who)
        elif name == CHILD:
            areas.add(row, "children_reported", who)
        else:
            step = REFERRAL_EVENTS[name]
            referral = str(data.get("referral_id", "?"))
            partner = str(data.get("partner_id") or UNKNOWN)
            partners.add(partner, step, referral)
            if step in REFERRAL_STEPS:
                areas.add(row, f"referrals_{step}", who)
            if step == "completed" and data.get("outcome") == SERVICE_DELIVERED:
                areas.add(row, "services_delivered", who)
                partners.add(partner, "services_delivered", referral)
                completed.append((referral, row, partner, as_utc(at)))
    for who, (row, level) in latest_level.items():
        areas.add(row, "screened", who)
        areas.add(row, f"level_{level}", who)
    await _time_to_service(db, start, completed, areas, partners)


async def _time_to_service(db: AsyncSession, start: datetime,
                           completed: Sequence[tuple[str, str, str, datetime]],
                           areas: _Tally, partners: _Tally) -> None:
    """Hours from a referral being sent to its service delivered (completed today)."""
    if not completed:
        return
    sent: dict[str, datetime] = {}
    for data, at in await db.execute(
            select(EventRecord.data, EventRecord.created_at)
            .where(EventRecord.name == "ReferralSent",
                   EventRecord.created_at >= start - LOOKBACK)
            .order_by(EventRecord.created_at)):
        referral = str((data or {}).get("referral_id", ""))
        sent.setdefault(referral, as_utc(at))
    for referral, row, partner, at in completed:
        if referral in sent:
            hours = max(0.0, (at - sent[referral]).total_seconds() / 3600)
            areas.durations[row]["hours_to_service"].append(hours)
            partners.durations[partner]["hours_to_service"].append(hours)


async def _cases(db: AsyncSession, start: datetime, end: datetime,
                 sla: Mapping[str, timedelta], now: datetime, tally: _Tally) -> None:
    """Handoffs (people with a case opened today), SLA breaches, first contact → handoff."""
    for case_id, user_id, priority, created, claimed, escalated, case_channel, governorate, \
            user_channel, joined in await db.execute(
            select(Case.id, Case.user_id, Case.priority, Case.created_at, Case.claimed_at,
                   Case.escalated_at, Case.channel, User.governorate, User.channel,
                   User.created_at)
            .outerjoin(User, User.id == Case.user_id)
            .where(Case.created_at >= start, Case.created_at < end)):
        row = area_key(governorate, user_channel or case_channel)
        who = f"u{user_id}" if user_id is not None else f"c{case_id}"
        tally.add(row, "handoffs", who)
        created = as_utc(created)
        limit = sla.get(priority)
        if limit is not None:
            answered = as_utc(claimed) if claimed is not None else as_utc(now)
            if escalated is not None or answered - created > limit:
                tally.add(row, "sla_breaches", who)
        if joined is not None:
            minutes = max(0.0, (created - as_utc(joined)).total_seconds() / 60)
            tally.durations[row]["minutes_to_handoff"].append(minutes)
