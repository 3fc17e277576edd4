"""The campaigns page: the list with its funnel (behaviour counts suppressed below 5), pause and
resume through the console (status in the database, audit row), roles, CSRF and refusals.

Runs on SQLite and on PostgreSQL (``sanad`` follows ``database_url``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import Sanad
from bot.outreach.models import Campaign, CampaignDelivery
from bot.store.models import EventRecord, User
from bot.store.repository import utcnow
from handoff.models import AuditEntry
from tests.handoff.conftest import Browser, Console, start_console

NAME = "spring-2026"
PEOPLE, CLICKED = 6, 2


@pytest.fixture
async def console_db(sanad: Sanad) -> AsyncIterator[Console]:
    """The console on SQLite and on PostgreSQL."""
    running = await start_console(sanad)
    yield running
    await running.close()
    await running.server.close()


async def seed(sanad: Sanad, now: datetime, *, name: str = NAME,
               status: str = "sending") -> None:
    """A campaign delivered to 6 people, 2 of whom opened a module afterwards."""
    async with sanad.store.session() as db:
        campaign = Campaign(
            name=name, status=status, messages=[{"lang": "ar", "text": "x", "buttons": []}],
            segment="", timezone="Africa/Cairo", created_at=now - timedelta(days=2),
            scheduled_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
            started_at=now - timedelta(days=1))
        db.add(campaign)
        await db.flush()
        for i in range(PEOPLE):
            key = sanad.store.pseudonyms.user_key("telegram", f"{name}-{i}")
            user = User(key=key, channel="telegram", language="ar", language_locked=False,
                        unreachable=False, created_at=now - timedelta(days=30),
                        last_active_at=now)
            db.add(user)
            await db.flush()
            sent = now - timedelta(hours=20)
            db.add(CampaignDelivery(campaign_id=campaign.id, user_id=user.id, channel="telegram",
                                    language="ar", status="delivered",
                                    targeted_at=sent - timedelta(minutes=5), sent_at=sent))
            if i < CLICKED:
                db.add(EventRecord(user_id=user.id, name="ModuleOpened", channel="telegram",
                                   language="ar", data={"module_id": "check_job_offer"},
                                   created_at=sent + timedelta(hours=1)))


async def status_of(sanad: Sanad, name: str = NAME) -> str:
    async with sanad.store.session() as db:
        return str(await db.scalar(select(Campaign.status).where(Campaign.name == name)))


async def audited(sanad: Sanad, action: str) -> list[tuple[str, str | None]]:
    async with sanad.store.session() as db:
        rows = await db.execute(select(AuditEntry.actor, AuditEntry.detail)
                                .where(AuditEntry.action == action))
        return [(actor, detail) for actor, detail in rows.all()]


def figures(html: str, name: str = NAME) -> dict[str, str]:
    row = html.split(f'data-campaign="{name}"', 1)[1].split("</tr>", 1)[0]
    return {f: re.sub(r"<[^>]+>", "", text).replace("&lt;", "<")
            for f, text in re.findall(r'<td data-figure="([a-z_]+)">(.*?)</td>', row)}


async def page(browser: Browser) -> str:
    response = await browser.get("/console/campaigns")
    assert response.status == 200
    return await response.text()


async def test_the_list_shows_the_campaign_and_its_funnel(console_db: Console) -> None:
    await seed(console_db.sanad, utcnow())
    html = await page(await console_db.browser(login_as="out"))
    assert NAME in html
    assert "2026-03-01 10:00 EET" in html  # 08:00 UTC in the campaign's Cairo time
    shown = figures(html)
    assert shown == {"targeted": "6", "sent": "6", "delivered": "6", "read": "0",
                     "failed": "0", "blocked": "0", "opted_out": "0", "clicked": "<5",
                     "handoffs": "0"}
    assert f'action="/console/campaigns/{NAME}/pause"' in html
    assert f'action="/console/campaigns/{NAME}/resume"' not in html
    assert await audited(console_db.sanad, "campaigns.view") == [("out", None)]


async def test_outreach_pauses_then_resumes(console_db: Console) -> None:
    await seed(console_db.sanad, utcnow())
    out = await console_db.browser(login_as="out")
    await page(out)
    response = await out.post(f"/console/campaigns/{NAME}/pause")
    assert response.status == 303
    assert response.headers["Location"] == "/console/campaigns?notice=campaign_paused"
    assert await status_of(console_db.sanad) == "paused"
    assert await audited(console_db.sanad, "campaign.pause") == [("out", NAME)]
    html = await (await out.get(response.headers["Location"])).text()
    assert 'class="notice"' in html
    assert f'action="/console/campaigns/{NAME}/resume"' in html

    response = await out.post(f"/console/campaigns/{NAME}/resume")
    assert response.status == 303
    assert response.headers["Location"] == "/console/campaigns?notice=campaign_resumed"
    assert await status_of(console_db.sanad) == "sending"  # it had started before the pause
    assert await audited(console_db.sanad, "campaign.resume") == [("out", NAME)]


async def test_a_refused_action_is_a_notice_not_an_error(console_db: Console) -> None:
    await seed(console_db.sanad, utcnow(), status="done")
    sup = await console_db.browser(login_as="sup")
    await page(sup)
    for verb in ("pause", "resume"):
        response = await sup.post(f"/console/campaigns/{NAME}/{verb}")
        assert response.status == 303
        assert response.headers["Location"].endswith(f"notice=campaign_cannot_{verb}")
        html = await (await sup.get(response.headers["Location"])).text()
        assert 'class="notice"' in html
    assert await status_of(console_db.sanad) == "done"
    assert await audited(console_db.sanad, "campaign.pause") == []


async def test_an_unknown_campaign_gives_a_clear_message(console_db: Console) -> None:
    adm = await console_db.browser(login_as="adm")
    await page(adm)
    response = await adm.post("/console/campaigns/no-such-campaign/pause")
    assert response.status == 303
    assert response.headers["Location"] == "/console/campaigns?notice=campaign_unknown"
    html = await (await adm.get(response.headers["Location"] + "&lang=en")).text()
    assert "There is no campaign with that name." in html


async def test_caseworkers_and_anonymous_callers_are_refused(console_db: Console) -> None:
    await seed(console_db.sanad, utcnow())
    cw1 = await console_db.browser(login_as="cw1")
    assert (await cw1.get("/console/campaigns")).status == 403
    assert (await cw1.post(f"/console/campaigns/{NAME}/pause")).status == 403
    home = await cw1.get("/console/queue")
    assert 'href="/console/campaigns"' not in await home.text()
    anon = await console_db.browser()
    response = await anon.get("/console/campaigns")
    assert response.status == 302
    assert response.headers["Location"].startswith("/console/login")
    assert (await anon.post(f"/console/campaigns/{NAME}/pause")).status == 302
    assert await status_of(console_db.sanad) == "sending"
    for name in ("out", "sup", "adm"):
        person = await console_db.browser(login_as=name)
        home = await person.get("/console/home")
        assert 'href="/console/campaigns"' in await home.text(), name


@pytest.mark.parametrize("token", ["", "forged-token"])
async def test_pause_needs_the_csrf_token(console_db: Console, token: str) -> None:
    await seed(console_db.sanad, utcnow())
    out = await console_db.browser(login_as="out")
    await page(out)
    out.csrf = ""
    response = await out.post(f"/console/campaigns/{NAME}/pause",
                              {"csrf": token} if token else None)
    assert response.status == 403
    assert await status_of(console_db.sanad) == "sending"
    assert await audited(console_db.sanad, "campaign.pause") == []
