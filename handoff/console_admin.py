"""Account management (admins) and reports (supervisors): pages without any case text."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from handoff import audit, auth
from handoff.context import context_of
from handoff.guard import console_route, form_fields
from handoff.models import ROLES, Caseworker
from handoff.policy import Principal
from handoff.render import labels_for, redirect, render
from handoff.reports import build_report


def manages_accounts(principal: Principal) -> bool:
    return principal.manages_accounts


def supervises(principal: Principal) -> bool:
    return principal.supervises


@console_route(manages_accounts)
async def accounts_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    labels = labels_for(request, principal.lang)
    async with context_of(request).store.session() as db:
        accounts = list(await db.scalars(select(Caseworker).order_by(Caseworker.name)))
        rows = [{
            "id": a.id, "name": a.name, "role": labels.of("role", a.role), "active": a.active,
            "last_login": labels.clock(a.last_login_at) if a.last_login_at else None,
            "locked": await auth.is_name_locked(db, a.name),
        } for a in accounts]
        audit.record(db, principal.name, "accounts.view")
    return render(request, "accounts.html", lang=principal.lang, principal=principal,
                  accounts=rows, roles=ROLES)


@console_route(manages_accounts)
async def create_account(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    form = await form_fields(request)
    name = form.get("name", "").strip()
    try:
        async with ctx.store.session() as db:
            await auth.create_account(db, ctx.passwords, name=name, role=form.get("role", ""),
                                      password=form.get("password", ""))
            audit.record(db, principal.name, "account.create", detail=name)
    except auth.AccountError:
        raise redirect("/console/accounts", "invalid") from None
    raise redirect("/console/accounts", "account_created")


@console_route(manages_accounts)
async def unlock_account(request: web.Request, principal: Principal) -> web.StreamResponse:
    async with context_of(request).store.session() as db:
        account = await db.get(Caseworker, int(request.match_info["account_id"]))
        if account is None:
            raise redirect("/console/accounts", "invalid")
        await auth.unlock(db, account.name)
        audit.record(db, principal.name, "account.unlock", detail=account.name)
    raise redirect("/console/accounts", "unlocked")


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
    router.add_get("/console/reports", reports_page)
