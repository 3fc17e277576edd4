"""The dashboard pages: ``/console/dashboard`` (charts and tables) and its CSV export.

Both show exactly the suppressed figures of ``handoff.dashboard``; words come from
``console_text.yml``. The CSV uses fixed codes (``reached``, ``telegram``) so it reads the
same in every console language, and every cell is defused against spreadsheet formulas.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from markupsafe import Markup

from bot.store.repository import utcnow
from handoff import audit
from handoff.charts import Datum, bar_chart, line_chart
from handoff.context import context_of
from handoff.dashboard import (
    BREAKDOWNS,
    CAMPAIGN_FIGURES,
    LEVELS,
    METRICS,
    PERIODS,
    TOTAL,
    UNKNOWN,
    Cell,
    Dashboard,
    build_dashboard,
)
from handoff.guard import console_route
from handoff.policy import Principal
from handoff.render import labels_for, render
from handoff.texts import RTL_LANGUAGES
from handoff.views import Labels

DEFAULT_DAYS, DEFAULT_BY = 30, "channel"
MARKS = {"small": "<5", "hidden": "*"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def sees_dashboard(principal: Principal) -> bool:
    return principal.sees_dashboard


def choice(request: web.Request) -> tuple[int, str]:
    """The period and breakdown asked for; anything unknown falls back to the default."""
    days = request.query.get("days", "")
    by = request.query.get("by", "")
    return (int(days) if days in {str(p) for p in PERIODS} else DEFAULT_DAYS,
            by if by in BREAKDOWNS else DEFAULT_BY)


async def load(request: web.Request, principal: Principal, action: str) -> Dashboard:
    days, by = choice(request)
    async with context_of(request).store.session() as db:
        dashboard = await build_dashboard(db, days=days, by=by, until=utcnow())
        audit.record(db, principal.name, action, detail=f"{days}d/{by}")
    return dashboard


# --- HTML ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shown:
    text: str
    cls: str
    value: int | None


def shown(cell: Cell) -> Shown:
    if cell.suppressed:
        return Shown(MARKS[cell.suppressed], cell.suppressed, None)
    return Shown(str(cell.value), "", cell.value)


def group_label(labels: Labels, by: str, code: str) -> str:
    if code == TOTAL:
        return labels.t("dashboard.total")
    if code == UNKNOWN:
        return labels.t("dashboard.unknown")
    return labels.of(by, code)


def minutes(labels: Labels, value: float | None) -> str:
    return labels.t("dashboard.median_value", minutes=value) if value is not None \
        else labels.t("dashboard.median_too_few")


def module_title(request: web.Request, module_id: str, lang: str) -> str:
    module = context_of(request).content.module(module_id, lang)
    return module.title if module else module_id


def _data(rows: list[tuple[str, Shown]]) -> list[Datum]:
    return [Datum(label, s.value, s.text) for label, s in rows]


def view(request: web.Request, dash: Dashboard, labels: Labels) -> dict[str, Any]:
    """Everything the template shows, labelled, with the charts already drawn."""
    rtl = labels.lang in RTL_LANGUAGES
    table = dash.breakdown
    clock = labels.zone
    timeline = [(d.astimezone(clock).strftime("%m-%d"), shown(c)) for d, c in dash.timeline]
    groups = [(group_label(labels, dash.by, g), g) for g in table.groups]
    rows = [(label, [shown(table.cell(g, m)) for m in METRICS], minutes(labels, table.medians[g]))
            for label, g in [*groups, (labels.t("dashboard.total"), TOTAL)]]
    reached = [(label, shown(table.cell(g, "reached"))) for label, g in groups]
    handoffs = [(label, shown(table.cell(g, "handoffs"))) for label, g in groups]
    levels = [(labels.of("risk", lv), shown(table.cell(TOTAL, f"level_{lv}"))) for lv in LEVELS]
    modules = [(module_title(request, m, labels.lang), shown(o), shown(c))
               for m, o, c in dash.modules]
    by_label = labels.t(f"dashboard.by_{dash.by}")

    def chart(kind: str, key: str, data: list[tuple[str, Shown]]) -> Markup:
        draw = line_chart if kind == "line" else bar_chart
        return draw(_data(data), chart_id=f"chart-{key}", rtl=rtl,
                    title=labels.t(f"dashboard.{key}_title", by=by_label),
                    desc=labels.t(f"dashboard.{key}_desc", days=dash.days, by=by_label))

    return {
        "dash": dash, "periods": PERIODS, "breakdowns": BREAKDOWNS, "metrics": METRICS,
        "by_label": by_label, "timeline": timeline, "rows": rows, "levels": levels,
        "modules": modules, "figures": CAMPAIGN_FIGURES,
        "campaigns": [(c.name, labels.of("campaign_status", c.status),
                       [shown(f) for f in c.figures]) for c in dash.campaigns],
        "totals": {m: shown(table.cell(TOTAL, m)) for m in ("reached", "screened", "handoffs")},
        "median": minutes(labels, table.medians[TOTAL]),
        "charts": {
            "timeline": chart("line", "timeline", timeline),
            "reached": chart("bar", "reached", reached),
            "levels": chart("bar", "levels", levels),
            "handoffs": chart("bar", "handoffs", handoffs),
            "modules": chart("bar", "modules", [(t, c) for t, _, c in modules]),
        },
        "csv_url": f"/console/dashboard.csv?days={dash.days}&by={dash.by}",
    }


@console_route(sees_dashboard)
async def dashboard_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    dash = await load(request, principal, "dashboard.view")
    labels = labels_for(request, principal.lang)
    return render(request, "dashboard.html", lang=principal.lang, principal=principal,
                  **view(request, dash, labels))


# --- CSV -----------------------------------------------------------------------------------
def safe(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def figure(cell: Cell) -> str:
    return MARKS[cell.suppressed] if cell.suppressed else str(cell.value)


def csv_rows(dash: Dashboard) -> list[list[str]]:
    days = str(dash.days)
    rows = [["section", "period_days", "breakdown", "group", "metric", "value"]]
    rows += [["timeline", days, "", d.date().isoformat(), "reached", figure(c)]
             for d, c in dash.timeline]
    table = dash.breakdown
    for group in (*table.groups, TOTAL):
        code = "total" if group == TOTAL else group
        rows += [["breakdown", days, dash.by, code, m, figure(table.cell(group, m))]
                 for m in METRICS]
        median = table.medians[group]
        rows.append(["breakdown", days, dash.by, code, "median_minutes_to_claim",
                     "n<5" if median is None else str(median)])
    for module, opened, completed in dash.modules:
        rows += [["modules", days, "", module, "opened", figure(opened)],
                 ["modules", days, "", module, "completed", figure(completed)]]
    for campaign in dash.campaigns:
        rows += [["campaigns", days, "", campaign.name, name, figure(cell)]
                 for name, cell in zip(CAMPAIGN_FIGURES, campaign.figures, strict=True)]
    return [[safe(cell) for cell in row] for row in rows]


def to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


@console_route(sees_dashboard)
async def dashboard_csv(request: web.Request, principal: Principal) -> web.StreamResponse:
    dash = await load(request, principal, "dashboard.export")
    name = f"sanad-dashboard-{dash.days}d-{dash.by}.csv"
    return web.Response(
        text=to_csv(csv_rows(dash)), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/dashboard", dashboard_page)
    router.add_get("/console/dashboard.csv", dashboard_csv)
