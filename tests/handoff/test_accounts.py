"""The account lifecycle: invitations (nobody chooses another's password), the two-person
rule for case access, deactivation and revocation, password change, token expiry and scopes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update

from bot.app import Sanad
from bot.store.repository import utcnow
from bot.web.app import create_app
from handoff import accounts, auth
from handoff.auth import AccountError, AuthPolicy, Passwords
from handoff.models import ApiToken, Caseworker, ConsoleSession, Invitation
from handoff.web import setup
from tests.handoff.conftest import PASSWORD, Browser, Console, add_accounts, make_case

LINK_RE = re.compile(r'<code class="secret" id="invite-link">https?://[^/]+(/console/invite/'
                     r'[A-Za-z0-9_-]+)</code>')
NEW_PASSWORD = "violet kettle orbit marmalade"


@pytest.fixture
async def console(sanad: Sanad) -> AsyncIterator[Console]:
    """SQLite and PostgreSQL, with production password hashing (argon2-cffi's defaults)."""
    app = create_app(sanad, channels=[], back_office=False)
    setup(app, sanad, passwords=Passwords())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    running = Console(sanad, server, await add_accounts(sanad))
    yield running
    await running.close()
    await server.close()


async def invite(admin: Browser, name: str, role: str) -> str:
    await admin.get("/console/accounts")
    response = await admin.post("/console/accounts", {"name": name, "role": role,
                                                      "password": "admin-chosen password 1"})
    assert response.status == 200
    found = LINK_RE.search(await response.text())
    assert found is not None, "the invitation link is shown once to the admin"
    return found.group(1)


async def set_password(browser: Browser, link: str, password: str = NEW_PASSWORD) -> int:
    await browser.get(link)
    response = await browser.post(link, {"password": password, "repeat": password})
    return response.status


async def account(console: Console, name: str) -> Caseworker:
    async with console.sanad.store.session() as db:
        found = await db.scalar(select(Caseworker).where(Caseworker.name == name))
        assert found is not None
        return found


async def test_an_admins_new_case_account_is_inactive_until_a_supervisor_approves(
    console: Console,
) -> None:
    admin = await console.browser(login_as="adm")
    link = await invite(admin, "mona", "caseworker")
    assert (await account(console, "mona")).password_hash is None, "the admin chose nothing"
    mona = await console.browser()
    assert await set_password(mona, link) == 303
    assert (await mona.login("mona", "admin-chosen password 1")).status == 401
    refused = await mona.login("mona", NEW_PASSWORD)
    assert refused.status == 401, "the right password, but no supervisor approved yet"

    mona_id = (await account(console, "mona")).id
    await admin.get("/console/accounts")
    assert (await admin.post(f"/console/accounts/{mona_id}/approve")).status == 403
    assert (await admin.post(f"/console/accounts/{mona_id}/reactivate")).status == 303
    assert (await mona.login("mona", NEW_PASSWORD)).status == 401, "an admin cannot grant it"

    sup = await console.browser(login_as="sup")
    page = await sup.get("/console/approvals")
    assert page.status == 200 and "mona" in await page.text()
    assert (await sup.post(f"/console/accounts/{mona_id}/approve")).status == 303
    approved = await account(console, "mona")
    assert approved.approved_by == "sup" and approved.created_by == "adm"
    assert (await mona.login("mona", NEW_PASSWORD)).status == 303
    assert (await mona.get("/console/queue")).status == 200


async def test_roles_without_case_data_need_no_approval_and_admins_see_no_cases(
    console: Console,
) -> None:
    admin = await console.browser(login_as="adm")
    link = await invite(admin, "omar", "outreach")
    omar = await console.browser()
    assert await set_password(omar, link) == 303
    assert (await omar.login("omar", NEW_PASSWORD)).status == 303
    case_id = await make_case(console.sanad)
    assert (await admin.get(f"/console/cases/{case_id}")).status == 403
    assert (await admin.get("/api/cases")).status == 403


async def test_nobody_approves_an_account_they_created_or_their_own(console: Console) -> None:
    async with console.sanad.store.session() as db:
        await accounts.invite(db, AuthPolicy(), name="sami", role="supervisor", by="sup")
    async with console.sanad.store.session() as db:
        sami = await auth.find_account(db, "sami")
        with pytest.raises(AccountError, match="second person"):
            await accounts.approve(db, sami, by="sup", by_role="supervisor")
        with pytest.raises(AccountError, match="second person"):
            await accounts.approve(db, sami, by="sami", by_role="supervisor")
        with pytest.raises(AccountError, match="only a supervisor"):
            await accounts.approve(db, sami, by="adm", by_role="admin")
        await accounts.approve(db, sami, by="sup2", by_role="supervisor")
        assert sami.approved_by == "sup2"


async def test_an_invitation_link_works_once_and_expires(console: Console) -> None:
    admin = await console.browser(login_as="adm")
    link = await invite(admin, "lina", "outreach")
    first = await console.browser()
    assert await set_password(first, link) == 303
    second = await console.browser()
    assert (await second.get(link)).status == 404
    assert (await second.post(link, {"password": "another fine phrase here",
                                     "repeat": "another fine phrase here"})).status == 404
    late_link = await invite(admin, "hoda", "outreach")
    async with console.sanad.store.session() as db:
        await db.execute(update(Invitation).where(Invitation.used_at.is_(None))
                         .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await set_password(await console.browser(), late_link) == 404
    async with console.sanad.store.session() as db:
        tokens = list(await db.scalars(select(Invitation.token_hash)))
    assert not any(link.rsplit("/", 1)[1] in t for t in tokens), "only digests are stored"


async def test_an_invitee_must_choose_a_strong_password(console: Console) -> None:
    link = await invite(await console.browser(login_as="adm"), "rana", "outreach")
    assert await set_password(await console.browser(), link, "Password1234") == 400
    assert (await account(console, "rana")).password_hash is None
    assert await set_password(await console.browser(), link) == 303


async def test_deactivation_ends_sessions_and_tokens_and_reactivation_needs_approval(
    console: Console,
) -> None:
    cw1 = await console.browser(login_as="cw1")
    bearer = {"Authorization": f"Bearer {console.tokens['cw1']}"}
    assert (await cw1.get("/api/cases", headers=bearer)).status == 200
    admin = await console.browser(login_as="adm")
    cw1_id = (await account(console, "cw1")).id
    await admin.get("/console/accounts")
    assert (await admin.post(f"/console/accounts/{cw1_id}/deactivate")).status == 303
    assert (await cw1.get("/console/queue")).status == 302
    assert (await cw1.get("/api/cases", headers=bearer)).status == 401
    assert (await (await console.browser()).login("cw1")).status == 401
    assert (await admin.post(f"/console/accounts/{cw1_id}/reactivate")).status == 303
    assert (await (await console.browser()).login("cw1")).status == 401, "needs approval"
    sup = await console.browser(login_as="sup")
    assert (await sup.post(f"/console/accounts/{cw1_id}/approve")).status == 303
    assert (await (await console.browser()).login("cw1")).status == 303
    assert (await cw1.get("/api/cases", headers=bearer)).status == 401, "tokens stay revoked"


async def test_revoke_ends_every_session_and_token(console: Console) -> None:
    cw2 = await console.browser(login_as="cw2")
    admin = await console.browser(login_as="adm")
    await admin.get("/console/accounts")
    cw2_id = (await account(console, "cw2")).id
    assert (await admin.post(f"/console/accounts/{cw2_id}/revoke")).status == 303
    assert (await cw2.get("/console/queue")).status == 302
    bearer = {"Authorization": f"Bearer {console.tokens['cw2']}"}
    assert (await cw2.get("/api/cases", headers=bearer)).status == 401


async def test_changing_ones_password_ends_the_other_sessions(console: Console) -> None:
    here = await console.browser(login_as="cw1")
    elsewhere = await console.browser(login_as="cw1")
    await here.get("/console/account")
    wrong = await here.post("/console/account/password",
                            {"current": "not my password!", "new": NEW_PASSWORD,
                             "repeat": NEW_PASSWORD})
    assert wrong.headers["Location"].endswith("password_refused")
    weak = await here.post("/console/account/password",
                           {"current": PASSWORD, "new": "aaaaaaaaaaaa", "repeat": "aaaaaaaaaaaa"})
    assert weak.headers["Location"].endswith("password_refused")
    done = await here.post("/console/account/password",
                           {"current": PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert done.headers["Location"].endswith("password_changed")
    assert (await here.get("/console/queue")).status == 200
    assert (await elsewhere.get("/console/queue")).status == 302
    assert (await (await console.browser()).login("cw1", PASSWORD)).status == 401
    assert (await (await console.browser()).login("cw1", NEW_PASSWORD)).status == 303


async def test_tokens_expire_and_scopes_are_enforced(console: Console) -> None:
    case_id = await make_case(console.sanad)
    async with console.sanad.store.session() as db:
        reader = await auth.issue_token(db, "cw1", scopes=("cases:read",))
        writer = await auth.issue_token(db, "cw1", scopes="cases:write")
        short = await auth.issue_token(db, "cw1", lifetime=timedelta(minutes=5))
        with pytest.raises(AccountError):
            await auth.issue_token(db, "cw1", scopes=("cases:delete",))
        with pytest.raises(AccountError):
            await auth.issue_token(db, "cw1", scopes=())
        with pytest.raises(AccountError):
            await auth.issue_token(db, "cw1", lifetime=timedelta(0))
    browser = await console.browser()

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    assert (await browser.get("/api/cases", headers=bearer(reader))).status == 200
    claim = f"/api/cases/{case_id}/claim"
    assert (await browser.request("POST", claim, headers=bearer(reader))).status == 403
    assert (await browser.get("/api/cases", headers=bearer(writer))).status == 403
    assert (await browser.request("POST", claim, headers=bearer(writer))).status == 200
    assert (await browser.get("/api/cases", headers=bearer(short))).status == 200
    async with console.sanad.store.session() as db:
        row = await db.scalar(select(ApiToken).where(ApiToken.token_hash == auth.digest(short)))
        assert row is not None and row.expires_at is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert (await browser.get("/api/cases", headers=bearer(short))).status == 401
    async with console.sanad.store.session() as db:
        later = utcnow() + AuthPolicy.token_lifetime + timedelta(minutes=1)
        assert await auth.principal_for_token(db, reader, now=later) is None
        fine = await auth.principal_for_token(db, reader)
        assert fine is not None and fine.scopes == frozenset({"cases:read"})


async def test_sessions_are_ended_server_side_not_just_forgotten(console: Console) -> None:
    cw1 = await console.browser(login_as="cw1")
    await cw1.get("/console/account")
    assert (await cw1.post("/console/account/sign_out_elsewhere")).status == 303
    async with console.sanad.store.session() as db:
        cw1_id = (await auth.find_account(db, "cw1")).id
        rows = list(await db.scalars(select(ConsoleSession).where(
            ConsoleSession.caseworker_id == cw1_id)))
        tokens = list(await db.scalars(select(ApiToken).where(
            ApiToken.caseworker_id == cw1_id, ApiToken.revoked_at.is_(None))))
    assert len(rows) == 1 and tokens == []


async def test_an_admins_password_reset_needs_a_supervisor_again(console: Console) -> None:
    """Whoever resets could open the new link themselves: case access waits for approval."""
    cw1 = await console.browser(login_as="cw1")
    admin = await console.browser(login_as="adm")
    await admin.get("/console/accounts")
    cw1_id = (await account(console, "cw1")).id
    response = await admin.post(f"/console/accounts/{cw1_id}/reset_password")
    assert response.status == 200
    found = LINK_RE.search(await response.text())
    assert found is not None
    assert (await cw1.get("/console/queue")).status == 302, "sessions ended"
    assert (await (await console.browser()).login("cw1", PASSWORD)).status == 401
    assert await set_password(await console.browser(), found.group(1)) == 303
    assert (await (await console.browser()).login("cw1", NEW_PASSWORD)).status == 401
    sup = await console.browser(login_as="sup")
    assert (await sup.post(f"/console/accounts/{cw1_id}/approve")).status == 303
    assert (await (await console.browser()).login("cw1", NEW_PASSWORD)).status == 303
