"""The console's Indicators page: supervisors see one day's figures per area and per partner,
their CSV, and publish the differentially private release; a partner organisation's staff see
only their own organisation's referral figures (no areas, no release)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from bot.store.repository import utcnow
from handoff import audit
from handoff.context import context_of
from handoff.dashboard import UNKNOWN, Cell
from handoff.guard import console_route, form_fields
from handoff.indicators import export
from handoff.indicators.daily import (
    AREA_METRICS,
    PARTNER_METRICS,
    TOTAL,
    DailyIndicators,
    build_daily,
)
from handoff.indicators.release import BudgetExceeded, Release, release
from handoff.policy import PARTNER_ROLE, Principal
from handoff.referrals.partners import partner_of
from handoff.render import labels_for, render
from handoff.views import Labels


def sees_indicators(principal: Principal) -> bool:
    return principal.supervises or principal.role == PARTNER_ROLE


def publishes(principal: Principal) -> bool:
    return principal.supervises


def chosen_day(raw: str | None, today: date) -> date:
    """The day asked for; anything unreadable or in the future falls back to yesterday."""
    try:
        day = date.fromisoformat(raw or "")
    except ValueError:
        return today - timedelta(days=1)
    return day if day <= today else today - timedelta(days=1)


async def load(request: web.Request, principal: Principal, day: date,
               action: str) -> DailyIndicators:
    """The day's figures as this principal may see them: a partner's own row only."""
    context = context_of(request)
    async with context.store.session() as db:
        figures = await build_daily(db, day, sla=export.sla_of(context.sanad.settings),
                                    now=utcnow())
        audit.record(db, principal.name, action, detail=day.isoformat())
        if principal.supervises:
            return figures
        own = await partner_of(db, principal.id) or ""
    return replace(figures, areas=figures.areas.only(""), partners=figures.partners.only(own))


@dataclass(frozen=True)
class Figure:
    text: str
    cls: str


def figure(cell: Cell) -> Figure:
    return Figure(str(export.shown(cell)), cell.suppressed or "")


def area_label(labels: Labels, row: str) -> str:
    if row == TOTAL:
        return labels.t("dashboard.total")
    governorate, channel = row.split("|", 1)
    place = labels.t("dashboard.unknown") if governorate == UNKNOWN \
        else labels.of("governorate", governorate)
    return f"{place} · {labels.of('channel', channel)}"


def view(figures: DailyIndicators, labels: Labels) -> dict[str, Any]:
    def hours(value: float | None) -> str:
        return labels.t("indicators.too_few") if value is None else f"{value:g}"

    areas, partners = figures.areas, figures.partners
    area_rows = (*areas.rows, TOTAL) if (TOTAL, AREA_METRICS[0]) in areas.cells else ()
    partner_rows = (*partners.rows, TOTAL) if (TOTAL, PARTNER_METRICS[0]) in partners.cells \
        else partners.rows
    return {
        "day": figures.day, "area_metrics": AREA_METRICS, "partner_metrics": PARTNER_METRICS,
        "areas": [(area_label(labels, r), [figure(areas.cell(r, m)) for m in AREA_METRICS],
                   hours(areas.medians[r]["minutes_to_handoff"]),
                   hours(areas.medians[r]["hours_to_service"]))
                  for r in area_rows],
        "partners": [(labels.t("dashboard.total") if r == TOTAL else r,
                      [figure(partners.cell(r, m)) for m in PARTNER_METRICS],
                      hours(partners.medians[r]["hours_to_service"]))
                     for r in partner_rows] if partners.rows else [],
        "csv_url": f"/console/indicators.csv?date={figures.day.isoformat()}",
    }


@console_route(sees_indicators)
async def indicators_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    day = chosen_day(request.query.get("date"), utcnow().date())
    figures = await load(request, principal, day, "indicators.view")
    labels = labels_for(request, principal.lang)
    return render(request, "indicators.html", lang=principal.lang, principal=principal,
                  **view(figures, labels), published=None, refused=False,
                  publishes=publishes(principal))


@console_route(sees_indicators)
async def indicators_csv(request: web.Request, principal: Principal) -> web.StreamResponse:
    day = chosen_day(request.query.get("date"), utcnow().date())
    figures = await load(request, principal, day, "indicators.export")
    return web.Response(
        text=export.to_csv(figures), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition":
                 f'attachment; filename="sanad-indicators-{day.isoformat()}.csv"'})


@console_route(publishes)
async def release_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Publish (or show again) the differentially private release of the chosen day."""
    form = await form_fields(request)
    day = chosen_day(form.get("date"), utcnow().date())
    context = context_of(request)
    settings = context.sanad.settings
    figures = await load(request, principal, day, "indicators.view")
    published: Release | None = None
    refused = False
    try:
        async with context.store.session() as db:
            published = await release(db, figures, epsilon=settings.dp_epsilon,
                                      budget=settings.dp_budget, released_by=principal.name,
                                      now=utcnow())
    except BudgetExceeded:
        refused = True
    labels = labels_for(request, principal.lang)
    return render(request, "indicators.html", lang=principal.lang, principal=principal,
                  **view(figures, labels), published=published, refused=refused,
                  publishes=True, status=409 if refused else 200)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/indicators", indicators_page)
    router.add_get("/console/indicators.csv", indicators_csv)
    router.add_post("/console/indicators/release", release_page)
