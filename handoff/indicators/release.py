"""Differentially private release of a day's area indicators, for anything that leaves the
organisation (a partner's report, the national coordinating committee, a publication).

Method (documented next to the numbers in ``docs/indicators.md``):

* **What is released**: (a) every area metric for every cell of a fixed, public domain —
  Egypt's 27 governorates plus ``unknown``, times the channels ``telegram``, ``whatsapp`` and
  ``other`` — whether or not anyone was there, so the shape of the release reveals nothing;
  (b) the national total of every metric, measured separately (a sum of 84 noisy cells would
  be far noisier). Each part spends half of the release's ε (sequential composition).
  Medians and partner rows are not released.
* **Unit of privacy**: a person. One person belongs to one cell and counts at most once per
  metric, and under one screening level only, so adding or removing a person changes either
  vector by at most ``sensitivity()`` in L1 distance (12 with today's metrics).
* **Mechanism**: OpenDP's ``make_laplace`` on the integer count vectors with the L1 metric,
  which adds discrete Laplace (two-sided geometric) noise of scale ``sensitivity / (ε/2)``;
  OpenDP's privacy map confirms each part's loss. Negative values are kept: clamping at 0
  would bias every sum upwards (the console shows them as they are).
* **Budget**: each day of data has a total ε (``SANAD_DP_BUDGET``, 1.0 by default); each
  release spends its ε (``SANAD_DP_EPSILON``, 0.5 by default) from it with one conditional
  ``UPDATE``, so two releases at once cannot overspend. Asking again for the same day and ε
  returns the recorded release and spends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.limits import SERVICE_AREAS
from bot.store.repository import dialect_insert
from handoff import audit
from handoff.dashboard import UNKNOWN
from handoff.indicators.daily import AREA_METRICS, LEVELS, DailyIndicators
from handoff.indicators.models import DpBudget, DpRelease

OTHER = "other"
GOVERNORATES = (*sorted(SERVICE_AREAS - {"national"}), UNKNOWN)
CHANNELS = ("telegram", "whatsapp", OTHER)
MECHANISM = "opendp.make_laplace (discrete Laplace, L1, integer counts)"

Noise = Callable[[list[int]], list[int]]


class BudgetExceeded(Exception):
    """The day's privacy budget cannot pay for this release."""


def sensitivity() -> int:
    """How much one person can change the released vector (L1): one per metric, but only
    one of the screening levels."""
    return len(AREA_METRICS) - (len(LEVELS) - 1)


def cells() -> list[tuple[str, str, str]]:
    """The fixed domain of the release: (governorate, channel, metric), in order."""
    return [(g, c, m) for g in GOVERNORATES for c in CHANNELS for m in AREA_METRICS]


def measurement(epsilon: float, size: int) -> tuple[Any, float]:
    """The OpenDP measurement for a count vector of ``size`` at privacy loss ``epsilon``."""
    if not epsilon > 0:
        raise ValueError("epsilon must be positive")
    # Imported here, not at module load: OpenDP pulls in scikit-learn and costs seconds, and
    # every ``sanad`` command builds the parser that names this module.
    import opendp.prelude as dp

    dp.enable_features("contrib")
    scale = sensitivity() / epsilon
    meas = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int), size=size),
                             dp.l1_distance(T=int), scale=scale)
    if meas.map(sensitivity()) > epsilon * (1 + 1e-9):
        raise AssertionError("the mechanism's privacy loss exceeds the requested epsilon")
    return meas, scale


def count_vector(indicators: DailyIndicators) -> list[int]:
    """The true counts over the release domain (areas outside the domain go to ``other``)."""
    found: dict[tuple[str, str, str], int] = {}
    for row in indicators.areas.rows:
        governorate, channel = row.split("|", 1)
        governorate = governorate if governorate in GOVERNORATES else UNKNOWN
        channel = channel if channel in CHANNELS else OTHER
        for metric in AREA_METRICS:
            key = (governorate, channel, metric)
            found[key] = found.get(key, 0) + indicators.areas.cell(row, metric).value
    return [found.get(key, 0) for key in cells()]


def totals_of(vector: Sequence[int]) -> list[int]:
    """The national total of each metric, from the true count vector."""
    totals = dict.fromkeys(AREA_METRICS, 0)
    for (_, _, metric), value in zip(cells(), vector, strict=True):
        totals[metric] += value
    return [totals[m] for m in AREA_METRICS]


def figures_of(noisy_cells: Sequence[int], noisy_totals: Sequence[int]) -> dict[str, Any]:
    """The release as JSON: one object per area cell, and the separately measured totals."""
    areas: dict[tuple[str, str], dict[str, Any]] = {}
    for (governorate, channel, metric), value in zip(cells(), noisy_cells, strict=True):
        areas.setdefault((governorate, channel), {"governorate": governorate,
                                                   "channel": channel})[metric] = int(value)
    return {"areas": list(areas.values()),
            "total": {m: int(v) for m, v in zip(AREA_METRICS, noisy_totals, strict=True)}}


@dataclass(frozen=True)
class Release:
    day: date
    epsilon: float
    scale: float
    sensitivity: int
    mechanism: str
    figures: dict[str, Any]
    spent: float
    budget: float
    reused: bool

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "privacy": {
            "epsilon": self.epsilon, "noise_scale": self.scale,
            "sensitivity": self.sensitivity, "mechanism": self.mechanism,
            "budget": self.budget, "budget_spent": self.spent, "reused": self.reused,
            "unit": "person", "method": "docs/indicators.md"}, **self.figures}


async def _spend(db: AsyncSession, day: date, epsilon: float, budget: float) -> float:
    dialect = db.get_bind().dialect.name
    await db.execute(dialect_insert(dialect, DpBudget).values(day=day, spent=0.0)
                     .on_conflict_do_nothing())
    done = await db.execute(
        update(DpBudget).where(DpBudget.day == day,
                               DpBudget.spent + epsilon <= budget + 1e-9)
        .values(spent=DpBudget.spent + epsilon))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise BudgetExceeded(f"the privacy budget for {day.isoformat()} ({budget}) is spent")
    return float(await db.scalar(select(DpBudget.spent).where(DpBudget.day == day)) or 0)


async def release(db: AsyncSession, indicators: DailyIndicators, *, epsilon: float,
                  budget: float, released_by: str, now: datetime,
                  noise: Noise | None = None) -> Release:
    """A differentially private release of ``indicators`` (recorded; spends ``epsilon``).

    ``noise`` replaces the OpenDP measurement in tests that need fixed numbers; production
    code never passes it.
    """
    day = indicators.day
    previous = await db.scalar(select(DpRelease).where(DpRelease.day == day,
                                                       DpRelease.epsilon == epsilon)
                               .order_by(DpRelease.id).limit(1))
    spent_now = float(await db.scalar(select(DpBudget.spent).where(DpBudget.day == day)) or 0)
    if previous is not None:
        return Release(day, previous.epsilon, previous.scale, previous.sensitivity,
                       previous.mechanism, dict(previous.figures), spent_now, budget, True)
    vector = count_vector(indicators)
    totals = totals_of(vector)
    part = epsilon / 2  # cells and totals: sequential composition of two equal halves
    cells_meas, scale = measurement(part, len(vector))
    totals_meas, _ = measurement(part, len(totals))
    spent = await _spend(db, day, epsilon, budget)
    if noise is None:
        figures = figures_of(cells_meas(vector), totals_meas(totals))
    else:
        figures = figures_of(noise(vector), noise(totals))
    db.add(DpRelease(day=day, epsilon=epsilon, scale=scale, sensitivity=sensitivity(),
                     mechanism=MECHANISM, released_by=released_by, figures=figures,
                     created_at=now))
    audit.record(db, released_by, "indicators.dp_release", detail=f"{day.isoformat()} "
                 f"eps={epsilon:g}")
    return Release(day, epsilon, scale, sensitivity(), MECHANISM, figures, spent, budget,
                   False)
