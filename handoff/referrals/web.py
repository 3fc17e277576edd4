"""Mount referrals on the back office: ``setup(app, content)`` loads ``content/partners.yml``
(refusing to start on a bad file) and adds the partner API and the console pages."""

from __future__ import annotations

from aiohttp import web

from bot.content import ContentLibrary
from handoff.referrals import api
from handoff.referrals import console as pages
from handoff.referrals.context import REFERRALS, ReferralsContext
from handoff.referrals.directory import PartnerDirectory


def setup(app: web.Application, content: ContentLibrary) -> None:
    app[REFERRALS] = ReferralsContext(directory=PartnerDirectory.load(content))
    api.add_routes(app.router)
    pages.add_routes(app.router)
