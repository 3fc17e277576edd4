"""What the referral routes share, kept on the aiohttp app (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from handoff.context import HandoffContext
from handoff.referrals.directory import PartnerDirectory
from handoff.referrals.service import Deps


@dataclass(frozen=True)
class ReferralsContext:
    directory: PartnerDirectory

    def deps(self, ctx: HandoffContext) -> Deps:
        return Deps(cipher=ctx.cipher, ui=ctx.ui, content=ctx.content, directory=self.directory)


REFERRALS = web.AppKey("referrals", ReferralsContext)


def referrals_of(request: web.Request) -> ReferralsContext:
    return request.app[REFERRALS]
