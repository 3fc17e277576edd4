"""Aggregate figures for the dashboard (supervisor, outreach, admin): people, never persons.

Every figure counts **distinct people** (``users.id``), never events, over a period (the last
7, 30 or 90 days) and broken down by one attribute of the person (channel, language or
governorate; a missing value is the group ``unknown``). Cases are counted by their person too;
a case whose person erased their data counts as a person of its own.

Disclosure control (k = 5)
--------------------------
* **Primary suppression.** A count from 1 to 4 is never shown or exported: it is marked
  ``small`` ("<5") and drawn as no bar / a gap. 0 and 5+ are shown.
* **Complementary suppression.** Some figures add up: the groups of a breakdown partition the
  people, so each metric's *total* row is the sum of its group cells; and the screening
  levels (a person counts under their latest level in the period) add up to the "screened"
  column of every row. Each such sum is a constraint ``total = part + part + ...``. When a
  constraint has exactly one hidden member, that member could be recovered by subtraction, so
  the smallest visible part (preferring non-zero ones; the total itself only when there is no
  other part) is hidden too, marked ``hidden`` ("*"). This repeats until no constraint has
  exactly one hidden member. Totals stay visible; this is a heuristic in the spirit of
  tau-Argus' "hypercube", not a full linear-programming audit.
* Figures that do not add up (reach over time per bucket, modules, campaign funnels, whose
  steps are nested) get primary suppression only: their differences are ranges, not cells.
* **Median time to claim** is shown only for groups with at least 5 claimed cases.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.messages import ModuleCompleted, ModuleOpened, ScreeningCompleted
from bot.outreach import stats
from bot.outreach.models import Campaign
from bot.store.models import Case, EventRecord, User
from bot.store.repository import as_utc

K = 5
PERIODS = (7, 30, 90)
BREAKDOWNS = ("channel", "language", "governorate")
LEVELS = ("low", "medium", "high", "urgent")
UNKNOWN = "unknown"
TOTAL = "__total__"
METRICS = ("reached", "modules_opened", "modules_completed", "screened",
           *(f"level_{level}" for level in LEVELS), "handoffs")
CAMPAIGN_FIGURES = ("sent", "delivered", "read", "clicked", "handoffs")
MAX_CAMPAIGNS = 50
OPENED, COMPLETED, SCREENED = (ModuleOpened.__name__, ModuleCompleted.__name__,
                               ScreeningCompleted.__name__)


# --- disclosure control --------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """A count and whether it may be shown: ``None``, ``"small"`` (1-4) or ``"hidden"``."""

    value: int
    suppressed: str | None = None

    @property
    def shown(self) -> int | None:
        return None if self.suppressed else self.value


def primary(value: int) -> Cell:
    return Cell(value, "small" if 0 < value < K else None)


Key = tuple[str, str]
Constraint = tuple[Key, tuple[Key, ...]]


def protect(values: Mapping[Key, int], constraints: Iterable[Constraint]) -> dict[Key, Cell]:
    """Primary then complementary suppression of ``values`` under ``total = sum(parts)``
    constraints (see the module docstring)."""
    state = {key: primary(value).suppressed for key, value in values.items()}
    rules = list(constraints)
    changed = True
    while changed:
        changed = False
        for total, parts in rules:
            if sum(1 for key in (total, *parts) if state[key]) != 1:
                continue
            visible = [key for key in parts if not state[key]]
            pick = min(visible, key=lambda k: (values[k] == 0, values[k], k)) if visible \
                else total
            state[pick] = "hidden"
            changed = True
    return {key: Cell(values[key], state[key]) for key in values}


def median_minutes(waits: Sequence[float]) -> float | None:
    """The median of at least ``K`` waits (in minutes), else None."""
    return round(statistics.median(waits), 1) if len(waits) >= K else None


# --- the figures ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Breakdown:
    """Groups × ``METRICS`` with a total row (key ``TOTAL``), already suppressed."""

    groups: tuple[str, ...]
    cells: Mapping[Key, Cell]
    medians: Mapping[str, float | None]

    def cell(self, group: str, metric: str) -> Cell:
        return self.cells[(group, metric)]


@dataclass(frozen=True)
class CampaignRow:
    name: str
    status: str
    figures: tuple[Cell, ...]  # in the order of CAMPAIGN_FIGURES


@dataclass(frozen=True)
class Dashboard:
    days: int
    by: str
    since: datetime
    until: datetime
    timeline: tuple[tuple[datetime, Cell], ...]
    breakdown: Breakdown
    modules: tuple[tuple[str, Cell, Cell], ...]  # module id, opened, completed
    campaigns: tuple[CampaignRow, ...]


def breakdown_table(raw: Mapping[str, Mapping[str, int]],
                    waits: Mapping[str, Sequence[float]]) -> Breakdown:
    """Suppress a ``group -> metric -> people`` table; adds the total row and medians."""
    groups = tuple(sorted(raw, key=lambda g: (g == UNKNOWN, g)))
    values: dict[Key, int] = {}
    for metric in METRICS:
        for group in groups:
            values[(group, metric)] = int(raw[group].get(metric, 0))
        values[(TOTAL, metric)] = sum(values[(g, metric)] for g in groups)
    rows = (*groups, TOTAL)
    constraints: list[Constraint] = [
        ((TOTAL, metric), tuple((g, metric) for g in groups)) for metric in METRICS]
    constraints += [((row, "screened"), tuple((row, f"level_{lv}") for lv in LEVELS))
                    for row in rows]
    everyone = [w for group_waits in waits.values() for w in group_waits]
    medians = {group: median_minutes(waits.get(group, ())) for group in groups}
    medians[TOTAL] = median_minutes(everyone)
    return Breakdown(groups, protect(values, constraints), medians)


def buckets(days: int, until: datetime) -> tuple[datetime, timedelta, int]:
    """The timeline's start, step and number of buckets: days, or weeks for 90 days."""
    step = timedelta(days=7 if days > 31 else 1)
    count = -(-days // step.days)
    return until - step * count, step, count


def _group(by: str) -> Any:
    return {"channel": User.channel, "language": User.language,
            "governorate": User.governorate}[by]


def _code(value: object) -> str:
    return str(value) if value not in (None, "") else UNKNOWN


def activity(since: datetime, until: datetime) -> Any:
    """(user id, moment) of everything that shows a person was there: events, joining, last
    activity (a person may talk without any event being recorded)."""
    rows = union_all(
        select(EventRecord.user_id.label("user_id"), EventRecord.created_at.label("at"))
        .where(EventRecord.user_id.is_not(None)),
        select(User.id.label("user_id"), User.created_at.label("at")),
        select(User.id.label("user_id"), User.last_active_at.label("at")),
    ).subquery()
    return (select(rows.c.user_id, rows.c.at)
            .where(rows.c.at >= since, rows.c.at < until).subquery())


async def _timeline(db: AsyncSession, days: int, until: datetime
                    ) -> tuple[tuple[datetime, Cell], ...]:
    start, step, count = buckets(days, until)
    active = activity(start, until)
    edges = [start + step * (i + 1) for i in range(count)]
    bucket: ColumnElement[Any] = case(
        *[(active.c.at < edge, literal(i)) for i, edge in enumerate(edges)],
        else_=literal(count - 1))
    inner = select(bucket.label("b"), active.c.user_id).subquery()
    found = {int(b): int(n) for b, n in (await db.execute(
        select(inner.c.b, func.count(func.distinct(inner.c.user_id))).group_by(inner.c.b)))}
    return tuple((start + step * i, primary(found.get(i, 0))) for i in range(count))


async def _people(db: AsyncSession, by: str, since: datetime, until: datetime
                  ) -> dict[str, dict[str, int]]:
    raw: dict[str, dict[str, int]] = defaultdict(dict)
    group = _group(by)
    active = activity(since, until)
    for code, n in await db.execute(
            select(group, func.count(func.distinct(active.c.user_id)))
            .join(User, User.id == active.c.user_id).group_by(group)):
        raw[_code(code)]["reached"] = raw[_code(code)].get("reached", 0) + int(n)
    people = EventRecord.user_id
    for code, opened, completed in await db.execute(
            select(group,
                   func.count(func.distinct(case((EventRecord.name == OPENED, people)))),
                   func.count(func.distinct(case((EventRecord.name == COMPLETED, people)))))
            .join(User, User.id == EventRecord.user_id)
            .where(EventRecord.name.in_((OPENED, COMPLETED)),
                   EventRecord.created_at >= since, EventRecord.created_at < until)
            .group_by(group)):
        row = raw[_code(code)]
        row["modules_opened"] = row.get("modules_opened", 0) + int(opened)
        row["modules_completed"] = row.get("modules_completed", 0) + int(completed)
    return raw


async def _screenings(db: AsyncSession, by: str, since: datetime, until: datetime,
                      raw: dict[str, dict[str, int]]) -> None:
    """Each screened person under the level of their latest screening in the period."""
    latest: dict[int, tuple[str, str]] = {}
    for user_id, code, data in await db.execute(
            select(EventRecord.user_id, _group(by), EventRecord.data)
            .join(User, User.id == EventRecord.user_id)
            .where(EventRecord.name == SCREENED, EventRecord.created_at >= since,
                   EventRecord.created_at < until)
            .order_by(EventRecord.created_at, EventRecord.id)):
        level = (data or {}).get("risk_level")
        if level in LEVELS:
            latest[int(user_id)] = (_code(code), str(level))
    for code, level in latest.values():
        row = raw[code]
        row["screened"] = row.get("screened", 0) + 1
        row[f"level_{level}"] = row.get(f"level_{level}", 0) + 1


async def _cases(db: AsyncSession, by: str, since: datetime, until: datetime,
                 raw: dict[str, dict[str, int]]) -> dict[str, list[float]]:
    """People who were handed to a person, and every claimed case's wait (minutes)."""
    group = _group(by)
    if by in ("channel", "language"):
        group = func.coalesce(group, getattr(Case, by))
    people: dict[str, set[str]] = defaultdict(set)
    waits: dict[str, list[float]] = defaultdict(list)
    for case_id, user_id, code, created, claimed in await db.execute(
            select(Case.id, Case.user_id, group, Case.created_at, Case.claimed_at)
            .outerjoin(User, User.id == Case.user_id)
            .where(Case.created_at >= since, Case.created_at < until)):
        code = _code(code)
        people[code].add(f"u{user_id}" if user_id is not None else f"c{case_id}")
        if claimed is not None:
            waits[code].append(max(0.0, (as_utc(claimed) - as_utc(created)).total_seconds()
                                   / 60))
    for code, persons in people.items():
        raw[code]["handoffs"] = len(persons)
    return waits


async def _modules(db: AsyncSession, since: datetime, until: datetime
                   ) -> tuple[tuple[str, Cell, Cell], ...]:
    seen: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for user_id, name, data in await db.execute(
            select(EventRecord.user_id, EventRecord.name, EventRecord.data)
            .where(EventRecord.name.in_((OPENED, COMPLETED)), EventRecord.user_id.is_not(None),
                   EventRecord.created_at >= since, EventRecord.created_at < until)):
        module = (data or {}).get("module_id")
        if isinstance(module, str):
            seen[module][name].add(int(user_id))
    return tuple((module, primary(len(seen[module][OPENED])),
                  primary(len(seen[module][COMPLETED]))) for module in sorted(seen))


async def _campaigns(db: AsyncSession, since: datetime, until: datetime
                     ) -> tuple[CampaignRow, ...]:
    """Campaigns that were sending at some point of the period; all-time funnels."""
    found = await db.scalars(
        select(Campaign).where(Campaign.started_at.is_not(None), Campaign.started_at < until,
                               or_(Campaign.finished_at.is_(None),
                                   Campaign.finished_at >= since))
        .order_by(Campaign.started_at.desc()).limit(MAX_CAMPAIGNS))
    rows = []
    for campaign in found:
        report = (await stats.report(db, campaign)).to_dict()
        rows.append(CampaignRow(campaign.name, campaign.status,
                                tuple(primary(int(report[f])) for f in CAMPAIGN_FIGURES)))
    return tuple(rows)


async def build_dashboard(db: AsyncSession, *, days: int, by: str,
                          until: datetime) -> Dashboard:
    if days not in PERIODS or by not in BREAKDOWNS:
        raise ValueError("unknown period or breakdown")
    since = until - timedelta(days=days)
    raw = await _people(db, by, since, until)
    await _screenings(db, by, since, until, raw)
    waits = await _cases(db, by, since, until, raw)
    return Dashboard(
        days=days, by=by, since=since, until=until,
        timeline=await _timeline(db, days, until), breakdown=breakdown_table(raw, waits),
        modules=await _modules(db, since, until), campaigns=await _campaigns(db, since, until),
    )
