"""Account management (admins), approvals and reports (supervisors), and everyone's own
account page: pages without any case text.

Admins invite (name and role, never a password) and deactivate, reactivate, revoke, reset a
lost second factor; a supervisor approves each new case-role account (two people for every
grant of case access, :mod:`handoff.accounts`).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff import accounts, audit, audit_viewer, auth
from handoff.context import context_of
from handoff.guard import auth_policy, console_route, form_fields
from handoff.models import ROLES, Caseworker
from handoff.policy import Principal
from handoff.render import labels_for, redirect, render
from handoff.reports import build_report

ACCOUNT = r"/console/accounts/{account_id:\d{1,18}}"


def manages_accounts(principal: Principal) -> bool:
    return principal.manages_accounts


def supervises(principal: Principal) -> bool:
    return principal.supervises


def anyone(principal: Principal) -> bool:
    return True


def status_of(account: Caseworker) -> str:
    """One word for the accounts page: what stands between the account and a login."""
    if not account.active:
        return "deactivated"
    if account.password_hash is None:
        return "invited"
    if accounts.pending_approval(account):
        return "pending"
    return "active"


async def _accounts_page(request: web.Request, principal: Principal, *,
                         invited: accounts.Invited | None = None,
                         invited_name: str | None = None) -> web.Response:
    labels = labels_for(request, principal.lang)
    async with context_of(request).store.session() as db:
        found = list(await db.scalars(select(Caseworker).order_by(Caseworker.name)))
        rows = [{
            "id": a.id, "name": a.name, "role": labels.of("role", a.role), "active": a.active,
            "status": status_of(a), "totp": a.totp_enrolled_at is not None,
            "has_password": a.password_hash is not None,
            "last_login": labels.clock(a.last_login_at) if a.last_login_at else None,
            "locked": await auth.is_name_locked(db, a.name),
        } for a in found]
        audit.record(db, principal.name, "accounts.view")
    link = str(request.url.with_path(invited.path).with_query(None)) if invited else None
    return render(request, "accounts.html", lang=principal.lang, principal=principal,
                  accounts=rows, roles=ROLES, invite_link=link, invited_name=invited_name,
                  invite_expires=labels.clock(invited.expires_at) if invited else None)


@console_route(manages_accounts)
async def accounts_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _accounts_page(request, principal)


@console_route(manages_accounts)
async def create_account(request: web.Request, principal: Principal) -> web.StreamResponse:
    """An invitation: the page shows the one-time link once, for the admin to pass on."""
    ctx = context_of(request)
    form = await form_fields(request)
    name = form.get("name", "").strip()
    try:
        async with ctx.store.session() as db:
            invited = await accounts.invite(db, auth_policy(request), name=name,
                                            role=form.get("role", ""), by=principal.name)
    except auth.AccountError:
        raise redirect("/console/accounts", "invalid") from None
    return await _accounts_page(request, principal, invited=invited, invited_name=name)


async def _account(db: AsyncSession, request: web.Request) -> Caseworker:
    account = await db.get(Caseworker, int(request.match_info["account_id"]))
    if account is None:
        raise redirect("/console/accounts", "invalid")
    return account


@console_route(manages_accounts)
async def account_action(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Deactivate, reactivate, revoke sessions and tokens, reset the second factor, invite
    again (a new link for someone who never set a password) or reset a forgotten password (a
    new link; case roles wait for a supervisor again)."""
    ctx = context_of(request)
    action = request.match_info["action"]
    invited = None
    try:
        async with ctx.store.session() as db:
            account = await _account(db, request)
            name = account.name
            if action == "deactivate":
                await accounts.set_active(db, account, False, by=principal.name)
            elif action == "reactivate":
                await accounts.set_active(db, account, True, by=principal.name)
            elif action == "revoke":
                await accounts.revoke(db, account, by=principal.name)
            elif action == "reset_totp":
                await accounts.reset_second_factor(db, account, by=principal.name)
            elif action == "reinvite":
                invited = await accounts.reinvite(db, auth_policy(request), account,
                                                  by=principal.name)
            elif action == "reset_password":
                invited = await accounts.reset_password(db, auth_policy(request), account,
                                                        by=principal.name)
            else:
                raise redirect("/console/accounts", "invalid")
    except auth.AccountError:
        raise redirect("/console/accounts", "invalid") from None
    if invited is not None:
        return await _accounts_page(request, principal, invited=invited, invited_name=name)
    raise redirect("/console/accounts", "account_updated")


@console_route(manages_accounts)
async def unlock_account(request: web.Request, principal: Principal) -> web.StreamResponse:
    async with context_of(request).store.session() as db:
        account = await db.get(Caseworker, int(request.match_info["account_id"]))
        if account is None:
            raise redirect("/console/accounts", "invalid")
        await auth.unlock(db, account.name)
        audit.record(db, principal.name, "account.unlock", detail=account.name)
    raise redirect("/console/accounts", "unlocked")


# --- approvals (supervisors) ------------------------------------------------------------------
@console_route(supervises)
async def approvals_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    labels = labels_for(request, principal.lang)
    async with context_of(request).store.session() as db:
        waiting = [a for a in await db.scalars(
            select(Caseworker).where(Caseworker.active, Caseworker.approved_at.is_(None))
            .order_by(Caseworker.created_at)) if accounts.pending_approval(a)]
        rows = [{"id": a.id, "name": a.name, "role": labels.of("role", a.role),
                 "created_by": a.created_by or "", "created": labels.clock(a.created_at),
                 "own": principal.name in (a.created_by, a.name)} for a in waiting]
        audit.record(db, principal.name, "approvals.view")
    return render(request, "approvals.html", lang=principal.lang, principal=principal,
                  accounts=rows)


@console_route(supervises)
async def approve(request: web.Request, principal: Principal) -> web.StreamResponse:
    try:
        async with context_of(request).store.session() as db:
            account = await _account(db, request)
            await accounts.approve(db, account, by=principal.name, by_role=principal.role)
    except auth.AccountError:
        raise redirect("/console/approvals", "invalid") from None
    raise redirect("/console/approvals", "approved")


# --- one's own account ------------------------------------------------------------------------
@console_route(anyone)
async def my_account(request: web.Request, principal: Principal) -> web.StreamResponse:
    async with context_of(request).store.session() as db:
        account = await db.get(Caseworker, principal.id)
        assert account is not None
        labels = labels_for(request, principal.lang)
        changed = (labels.clock(account.password_changed_at)
                   if account.password_changed_at else None)
        totp = account.totp_enrolled_at is not None
    return render(request, "my_account.html", lang=principal.lang, principal=principal,
                  changed=changed, totp=totp)


@console_route(anyone)
async def change_password(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    form = await form_fields(request)
    if form.get("new", "") != form.get("repeat", ""):
        raise redirect("/console/account", "password_mismatch")
    try:
        await accounts.change_password(ctx.store.session, ctx.passwords,
                                       account_id=principal.id, current=form.get("current", ""),
                                       new=form.get("new", ""),
                                       keep_session=principal.session_hash)
    except auth.AccountError:
        raise redirect("/console/account", "password_refused") from None
    except auth.PasswordsBusy:
        raise redirect("/console/account", "busy") from None
    raise redirect("/console/account", "password_changed")


@console_route(anyone)
async def sign_out_elsewhere(request: web.Request, principal: Principal) -> web.StreamResponse:
    """End every other session of one's own and revoke one's API tokens."""
    async with context_of(request).store.session() as db:
        await auth.revoke_all(db, principal.id, keep_session=principal.session_hash)
        audit.record(db, principal.name, "account.revoke", detail=principal.name)
    raise redirect("/console/account", "signed_out_elsewhere")


@console_route(supervises)
async def reports_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    async with context_of(request).store.session() as db:
        report = await build_report(db)
        audit.record(db, principal.name, "reports.view")
    labels = labels_for(request, principal.lang)
    services = {sid: labels.service_name(context_of(request).content, sid)
                for sid, _ in report.referrals_by_service}
    return render(request, "reports.html", lang=principal.lang, principal=principal,
                  report=report, services=services)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/accounts", accounts_page)
    router.add_post("/console/accounts", create_account)
    router.add_post(r"/console/accounts/{account_id:\d{1,18}}/unlock", unlock_account)
    router.add_post(ACCOUNT + "/{action:deactivate|reactivate|revoke|reset_totp|reinvite|"
                              "reset_password}",
                    account_action)
    router.add_get("/console/approvals", approvals_page)
    router.add_post(ACCOUNT + "/approve", approve)
    router.add_get("/console/account", my_account)
    router.add_post("/console/account/password", change_password)
    router.add_post("/console/account/sign_out_elsewhere", sign_out_elsewhere)
    router.add_get("/console/reports", reports_page)
    audit_viewer.add_routes(router)
