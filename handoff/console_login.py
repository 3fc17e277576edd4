"""Signing in and out of the console, and each role's landing page.

The login form is protected by a double-submit token (an HttpOnly SameSite=Strict cookie that
must match a hidden field): there is no session yet to hold a CSRF token. A successful login
always starts a new session id, ending any session the browser presented (no fixation).
"""

from __future__ import annotations

from aiohttp import web

from handoff import audit, auth
from handoff.context import context_of
from handoff.guard import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    console_route,
    form_fields,
    request_lang,
    same_secret,
    session_principal,
    set_cookie,
)
from handoff.policy import Principal, home_path
from handoff.render import render, see_other
from handoff.texts import CONSOLE_LANGUAGES


def anyone(principal: Principal) -> bool:
    return True


async def root(request: web.Request) -> web.StreamResponse:
    principal = await session_principal(request)
    raise web.HTTPFound(home_path(principal) if principal else "/console/login")


def _login_page(request: web.Request, lang: str, *, status: int = 200,
                error: str | None = None) -> web.Response:
    token = auth.new_secret()
    response = render(request, "login.html", lang=lang, principal=None, status=status,
                      csrf=token, error=error)
    set_cookie(response, request, LOGIN_COOKIE, token)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    principal = await session_principal(request)
    if principal is not None:
        raise web.HTTPFound(home_path(principal))
    return _login_page(request, request_lang(request, None))


async def login_submit(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    form = await form_fields(request)
    asked = form.get("lang", "")
    lang = asked if asked in CONSOLE_LANGUAGES else request_lang(request, None)
    if not same_secret(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        return _login_page(request, lang, status=403, error="notice.invalid")
    name = form.get("name", "").strip()[:64]
    result = await auth.login(ctx.store.session, ctx.passwords, ctx.policy, name=name,
                              password=form.get("password", ""),
                              client=ctx.proxies.client_of(request))
    if result.busy:
        return _login_page(request, lang, status=503, error="notice.busy")
    async with ctx.store.session() as db:
        if result.account is None:
            # Never the name as typed: people paste passwords into the name field.
            actor = f"name#{ctx.store.pseudonyms.user_key('console-login', name)[:16]}"
            audit.record(db, actor, "login.locked" if result.locked else "login.failed")
        else:
            raw, principal = await auth.open_session(
                db, result.account, lang=lang, replacing=request.cookies.get(SESSION_COOKIE))
            audit.record(db, principal.name, "login")
    if result.account is None:
        if result.locked:
            return _login_page(request, lang, status=429, error="notice.locked")
        return _login_page(request, lang, status=401, error="notice.failed")
    response = see_other(home_path(principal))
    set_cookie(response, request, SESSION_COOKIE, raw)
    clear_cookie(response, LOGIN_COOKIE)
    return response


@console_route(anyone)
async def logout(request: web.Request, principal: Principal) -> web.StreamResponse:
    async with context_of(request).store.session() as db:
        await auth.end_session(db, request.cookies.get(SESSION_COOKIE, ""))
        audit.record(db, principal.name, "logout")
    response = see_other("/console/login", "logged_out")
    clear_cookie(response, SESSION_COOKIE)
    return response


@console_route(anyone)
async def home(request: web.Request, principal: Principal) -> web.StreamResponse:
    return render(request, "home.html", lang=principal.lang, principal=principal)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console", root)
    router.add_get("/console/", root)
    router.add_get("/console/login", login_form)
    router.add_post("/console/login", login_submit)
    router.add_post("/console/logout", logout)
    router.add_get("/console/home", home)
