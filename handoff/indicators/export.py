"""The day's indicators as JSON or CSV, with small counts shown as ``<5`` and the cells hidden
by complementary suppression as ``*`` (never their values)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from bot.config import Settings
from handoff.dashboard import Cell, K
from handoff.indicators.daily import TOTAL, DailyIndicators, Table

SMALL, HIDDEN = "<5", "*"


def sla_of(settings: Settings) -> dict[str, timedelta]:
    """Claim deadlines per case priority (``SANAD_SLA_URGENT_MIN``/``SANAD_SLA_HIGH_MIN``)."""
    return {"urgent": timedelta(minutes=settings.sla_urgent_minutes),
            "high": timedelta(minutes=settings.sla_high_minutes)}


def shown(cell: Cell) -> int | str:
    if cell.suppressed == "small":
        return SMALL
    if cell.suppressed:
        return HIDDEN
    return cell.value


def _rows(table: Table, label: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    with_total = bool(table.metrics) and (TOTAL, table.metrics[0]) in table.cells
    for row in (*table.rows, *((TOTAL,) if with_total else ())):
        item: dict[str, Any] = dict(zip(label, row.split("|"), strict=False)) if row != TOTAL \
            else dict.fromkeys(label, "total")
        item.update({metric: shown(table.cell(row, metric)) for metric in table.metrics})
        item["medians"] = dict(table.medians.get(row, {}))
        out.append(item)
    return out


def to_dict(indicators: DailyIndicators) -> dict[str, Any]:
    return {
        "date": indicators.day.isoformat(), "timezone": indicators.timezone,
        "disclosure_control": {"k": K, "small": SMALL, "hidden": HIDDEN,
                               "medians_need_at_least": K},
        "areas": _rows(indicators.areas, ("governorate", "channel")),
        "partners": _rows(indicators.partners, ("partner",)),
    }


def to_csv(indicators: DailyIndicators) -> str:
    """Long format (one figure per line), the easiest to pivot in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "table", "governorate", "channel", "partner", "metric", "value"])
    day = indicators.day.isoformat()
    for item in _rows(indicators.areas, ("governorate", "channel")):
        for metric in indicators.areas.metrics:
            writer.writerow([day, "areas", item["governorate"], item["channel"], "", metric,
                             item[metric]])
    for item in _rows(indicators.partners, ("partner",)):
        for metric in indicators.partners.metrics:
            writer.writerow([day, "partners", "", "", item["partner"], metric, item[metric]])
    return out.getvalue()


def release_csv(figures: dict[str, Any], day: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "governorate", "channel", "metric", "noisy_value"])
    for area in figures["areas"]:
        for metric, value in area.items():
            if metric not in ("governorate", "channel"):
                writer.writerow([day, area["governorate"], area["channel"], metric, value])
    for metric, value in figures["total"].items():
        writer.writerow([day, "total", "total", metric, value])
    return out.getvalue()
