"""The campaigns page: ``/console/campaigns`` (every campaign, its schedule and its funnel)
and its Pause/Resume forms.

Delivery figures (targeted ... blocked) count messages and are shown as they are; what
recipients did afterwards (opted out, clicked, handoffs) counts people and gets the
dashboard's primary suppression (1-4 shows as "<5"). Pause and resume are the same calls as
``sanad campaign pause/resume``, each in one transaction with its audit row; a refusal
(unknown campaign, wrong status) comes back as a notice on the page. Words come from
``console_text.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.outreach import campaigns, stats
from bot.outreach.campaigns import CampaignError
from bot.outreach.models import Campaign
from bot.store.repository import utcnow
from handoff import audit
from handoff.console_dashboard import Shown, shown
from handoff.context import context_of
from handoff.dashboard import primary
from handoff.guard import console_route
from handoff.policy import Principal
from handoff.render import labels_for, redirect, render
from handoff.views import Labels

PAGE = "/console/campaigns"
DELIVERY = ("targeted", "sent", "delivered", "read", "failed", "blocked")
BEHAVIOUR = ("opted_out", "clicked", "handoffs")
FIGURES = (*DELIVERY, *BEHAVIOUR)
PAUSABLE = ("scheduled", "sending")


def manages_campaigns(principal: Principal) -> bool:
    return principal.manages_campaigns


@dataclass(frozen=True)
class CampaignView:
    name: str
    status: str  # the fixed code (for the buttons)
    status_label: str
    scheduled: str
    figures: tuple[Shown, ...]  # in the order of FIGURES

    @property
    def can_pause(self) -> bool:
        return self.status in PAUSABLE

    @property
    def can_resume(self) -> bool:
        return self.status == "paused"


def schedule(labels: Labels, campaign: Campaign) -> str:
    if campaign.scheduled_at is None:
        return labels.t("campaigns.unscheduled")
    return campaigns.local_time(campaign, campaign.scheduled_at)


def figures(report: stats.Report) -> tuple[Shown, ...]:
    values = report.to_dict()
    return (*(Shown(str(values[f]), "", int(values[f])) for f in DELIVERY),
            *(shown(primary(int(values[f]))) for f in BEHAVIOUR))


@console_route(manages_campaigns)
async def campaigns_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    labels = labels_for(request, principal.lang)
    async with context_of(request).store.session() as db:
        rows = [CampaignView(c.name, c.status, labels.of("campaign_status", c.status),
                             schedule(labels, c), figures(await stats.report(db, c)))
                for c in await campaigns.list_all(db)]
        audit.record(db, principal.name, "campaigns.view")
    return render(request, "campaigns.html", lang=principal.lang, principal=principal,
                  campaigns=rows, figures=FIGURES)


async def _act(request: web.Request, principal: Principal, action: str) -> web.StreamResponse:
    """Pause or resume in one transaction with its audit row; refusals become notices."""
    name = request.match_info["name"]
    try:
        async with context_of(request).store.session() as db:
            await campaigns.get(db, name)
    except CampaignError:
        raise redirect(PAGE, "campaign_unknown") from None
    try:
        async with context_of(request).store.session() as db:
            if action == "pause":
                await campaigns.pause(db, name, utcnow())
            else:
                await campaigns.resume(db, name)
            audit.record(db, principal.name, f"campaign.{action}", detail=name)
    except CampaignError:
        raise redirect(PAGE, f"campaign_cannot_{action}") from None
    raise redirect(PAGE, f"campaign_{action}d")


@console_route(manages_campaigns)
async def pause_campaign(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _act(request, principal, "pause")


@console_route(manages_campaigns)
async def resume_campaign(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _act(request, principal, "resume")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PAGE, campaigns_page)
    router.add_post(PAGE + "/{name}/pause", pause_campaign)
    router.add_post(PAGE + "/{name}/resume", resume_campaign)
