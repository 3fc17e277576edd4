"""Two staff members of a partner answering one referral at the same moment (accept and
decline): exactly one wins, the other gets a conflict, on SQLite and on PostgreSQL (a
conditional UPDATE on the row's version)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from handoff.referrals import service
from handoff.referrals.context import ReferralsContext
from handoff.referrals.directory import PartnerDirectory
from handoff.referrals.models import ReferralStep
from tests.handoff.conftest import Console
from tests.referrals.conftest import SHELTER, add_partner_accounts
from tests.referrals.test_lifecycle import consented


async def test_accept_and_decline_at_once_one_wins(console_any_db: Console) -> None:
    console = console_any_db
    await add_partner_accounts(console)
    _, _, rid = await consented(console, "race")
    store = console.sanad.store
    directory = PartnerDirectory.load(console.sanad.content)
    deps = service.Deps(cipher=store.cipher, ui=console.sanad.ui,
                        content=console.sanad.content, directory=directory)
    assert ReferralsContext(directory).directory is directory

    async def accept() -> str:
        try:
            async with store.session() as db:
                await service.partner_act(db, deps, referral_id=rid, partner_id=SHELTER,
                                          actor="shelter1", action="accept")
            return "accepted"
        except service.ReferralConflict:
            return "conflict"

    async def decline() -> str:
        try:
            async with store.session() as db:
                await service.partner_act(db, deps, referral_id=rid, partner_id=SHELTER,
                                          actor="shelter2", action="decline",
                                          code="no_capacity")
            return "declined"
        except service.ReferralConflict:
            return "conflict"

    results = sorted(await asyncio.gather(accept(), decline()))
    assert results in (["accepted", "conflict"], ["conflict", "declined"])
    async with store.session() as db:
        actions = list(await db.scalars(select(ReferralStep.action).where(
            ReferralStep.referral_id == rid).order_by(ReferralStep.id)))
    assert actions[:2] == ["propose", "consent"] and len(actions) == 3
