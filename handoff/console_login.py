"""Signing in and out of the console, and each role's landing page.

The login form is protected by a double-submit token (an HttpOnly SameSite=Strict cookie that
must match a hidden field): there is no session yet to hold a CSRF token. A successful login
always starts a new session id, ending any session the browser presented (no fixation).

For the roles that must pass TOTP (``auth.TOTP_ROLES``, always in production), the right
password opens a *pending* session that reaches only the TOTP pages: the code (or a recovery
code) at ``/console/login/totp``, or, the first time, enrolment at ``/console/totp/enrol``
(QR code, first code, recovery codes shown once). Only then does the session open the console.
"""

from __future__ import annotations

import segno
from aiohttp import web
from markupsafe import Markup

from handoff import audit, auth, totp
from handoff.accounts import accept_invitation, open_invitation
from handoff.context import context_of
from handoff.guard import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    auth_policy,
    clear_cookie,
    console_route,
    form_fields,
    request_lang,
    same_secret,
    session_principal,
    set_cookie,
)
from handoff.models import Caseworker
from handoff.next_page import safe_next, with_next
from handoff.policy import Principal, home_path
from handoff.render import redirect, render, render_error, see_other
from handoff.texts import CONSOLE_LANGUAGES

TOTP_PATH = "/console/login/totp"
ENROL_PATH = "/console/totp/enrol"
OPT_IN_PATH = "/console/account/totp"


def anyone(principal: Principal) -> bool:
    return True


async def root(request: web.Request) -> web.StreamResponse:
    principal = await session_principal(request)
    raise web.HTTPFound(home_path(principal) if principal else "/console/login")


def _login_page(request: web.Request, lang: str, *, status: int = 200,
                error: str | None = None, next_page: str | None = None) -> web.Response:
    token = auth.new_secret()
    response = render(request, "login.html", lang=lang, principal=None, status=status,
                      csrf=token, error=error, next_page=next_page or "")
    set_cookie(response, request, LOGIN_COOKIE, token)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    next_page = safe_next(request.query.get("next"))
    principal = await session_principal(request)
    if principal is not None:
        raise web.HTTPFound(next_page or home_path(principal))
    if await session_principal(request, pending=True) is not None:
        raise web.HTTPFound(with_next(TOTP_PATH, next_page))
    return _login_page(request, request_lang(request, None), next_page=next_page)


async def login_submit(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    form = await form_fields(request)
    asked = form.get("lang", "")
    lang = asked if asked in CONSOLE_LANGUAGES else request_lang(request, None)
    next_page = safe_next(form.get("next"))
    if not same_secret(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        return _login_page(request, lang, status=403, error="notice.invalid",
                           next_page=next_page)
    name = form.get("name", "").strip()[:64]
    policy = auth_policy(request)
    result = await auth.login(ctx.store.session, ctx.passwords, policy, name=name,
                              password=form.get("password", ""),
                              client=ctx.proxies.client_of(request))
    if result.busy:
        return _login_page(request, lang, status=503, error="notice.busy", next_page=next_page)
    async with ctx.store.session() as db:
        if result.account is None:
            # Never the name as typed: people paste passwords into the name field.
            actor = f"name#{ctx.store.pseudonyms.user_key('console-login', name)[:16]}"
            audit.record(db, actor, "login.locked" if result.locked else "login.failed")
        else:
            pending = auth.needs_second_factor(result.account, policy)
            raw, principal = await auth.open_session(
                db, result.account, lang=lang, replacing=request.cookies.get(SESSION_COOKIE),
                second_factor=not pending)
            audit.record(db, principal.name, "login.password" if pending else "login")
    if result.account is None:
        if result.locked:
            return _login_page(request, lang, status=429, error="notice.locked",
                               next_page=next_page)
        return _login_page(request, lang, status=401, error="notice.failed",
                           next_page=next_page)
    if pending and result.account.totp_enrolled_at is not None:
        target = with_next(TOTP_PATH, next_page)
    elif pending:
        target = with_next(ENROL_PATH, next_page)  # a first login: enrol, then go there
    else:
        target = next_page or home_path(principal)
    response = see_other(target)
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


# --- the second factor ----------------------------------------------------------------------
async def _pending(request: web.Request) -> tuple[Principal, Caseworker]:
    """The session that passed the password and waits for TOTP, and its account; anyone else
    goes back to the login page. POSTs need the session's CSRF token."""
    principal = await session_principal(request, pending=True)
    if principal is None:
        raise web.HTTPFound("/console/login")
    if request.method == "POST":
        form = await form_fields(request)
        if not same_secret(form.get(CSRF_FIELD), principal.csrf_token):
            raise web.HTTPForbidden
    async with context_of(request).store.session() as db:
        account = await db.get(Caseworker, principal.id)
    if account is None:
        raise web.HTTPFound("/console/login")
    return principal, account


async def totp_form(request: web.Request) -> web.StreamResponse:
    principal, account = await _pending(request)
    if account.totp_enrolled_at is None:
        raise web.HTTPFound(with_next(ENROL_PATH, safe_next(request.query.get("next"))))
    return render(request, "totp.html", lang=principal.lang, principal=None,
                  csrf=principal.csrf_token, error=None,
                  next_page=safe_next(request.query.get("next")) or "")


async def totp_submit(request: web.Request) -> web.StreamResponse:
    principal, account = await _pending(request)
    ctx, policy = context_of(request), auth_policy(request)
    form = await form_fields(request)
    code = form.get("code", "")[:64]
    next_page = safe_next(form.get("next"))
    now = policy.clock()
    async with ctx.store.session() as db:
        account = await db.get(Caseworker, principal.id) or account
        used = (None if await auth.is_name_locked(db, account.name)
                else await totp.second_factor(db, ctx.cipher, account, code, now))
        if used is None:
            locked = await auth.second_factor_failed(db, account.name, policy)
            audit.record(db, principal.name, "login.totp_failed")
            if locked and principal.session_hash:
                await auth.end_session(db, request.cookies.get(SESSION_COOKIE, ""))
        else:
            await auth.pass_second_factor(db, principal.session_hash or "")
            await auth.unlock(db, account.name)
            audit.record(db, principal.name, "login", detail=used)
    if used is None:
        if locked:
            raise redirect("/console/login", "locked")
        return render(request, "totp.html", lang=principal.lang, principal=None, status=401,
                      csrf=principal.csrf_token, error="totp.wrong", next_page=next_page or "")
    if used == "recovery":  # the notice matters more than the page: say a code was used
        raise redirect(home_path(principal), "recovery_used")
    raise redirect(next_page or home_path(principal))


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG (no script, no external image: CSP stays strict)."""
    return Markup(segno.make(uri, error="m").svg_inline(scale=4, border=2, dark="#000",
                                                        light="#fff"))


async def _enrol_page(request: web.Request, principal: Principal, account: Caseworker, *,
                      status: int = 200, error: str | None = None,
                      action: str = ENROL_PATH, next_page: str | None = None) -> web.Response:
    ctx = context_of(request)
    async with ctx.store.session() as db:
        fresh = await db.get(Caseworker, account.id)
        assert fresh is not None
        secret = totp.offer_secret(ctx.cipher, fresh)
    uri = totp.uri(secret, account.name)
    return render(request, "totp_enrol.html", lang=principal.lang, principal=None,
                  status=status, csrf=principal.csrf_token, error=error, secret=secret,
                  uri=uri, qr=qr_svg(uri), action=action, next_page=next_page or "")


async def enrol_form(request: web.Request) -> web.StreamResponse:
    principal, account = await _pending(request)
    next_page = safe_next(request.query.get("next"))
    if account.totp_enrolled_at is not None:
        raise web.HTTPFound(with_next(TOTP_PATH, next_page))
    return await _enrol_page(request, principal, account, next_page=next_page)


async def enrol_submit(request: web.Request) -> web.StreamResponse:
    principal, account = await _pending(request)
    ctx, policy = context_of(request), auth_policy(request)
    form = await form_fields(request)
    code, next_page = form.get("code", "")[:64], safe_next(form.get("next"))
    now = policy.clock()
    async with ctx.store.session() as db:
        account = await db.get(Caseworker, principal.id) or account
        codes = (await totp.confirm(db, ctx.cipher, account, code, now)
                 if account.totp_enrolled_at is None else None)
        if codes is not None:
            await auth.pass_second_factor(db, principal.session_hash or "")
            await auth.unlock(db, account.name)
            audit.record(db, principal.name, "totp.enrol")
            audit.record(db, principal.name, "login", detail="totp")
        else:
            await auth.second_factor_failed(db, account.name, policy)
    if codes is None:
        return await _enrol_page(request, principal, account, status=401, error="totp.wrong",
                                 next_page=next_page)
    return render(request, "totp_codes.html", lang=principal.lang, principal=principal,
                  codes=codes, next=next_page or home_path(principal))


@console_route(anyone)
async def opt_in_form(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Any role may turn the second factor on for itself (admins and outreach are advised to);
    once on, every later login asks for it."""
    async with context_of(request).store.session() as db:
        account = await db.get(Caseworker, principal.id)
    if account is None or account.totp_enrolled_at is not None:
        raise redirect("/console/account")
    return await _enrol_page(request, principal, account, action=OPT_IN_PATH)


@console_route(anyone)
async def opt_in_submit(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx, policy = context_of(request), auth_policy(request)
    code = (await form_fields(request)).get("code", "")[:64]
    async with ctx.store.session() as db:
        account = await db.get(Caseworker, principal.id)
        if account is None or account.totp_enrolled_at is not None:
            raise redirect("/console/account")
        codes = await totp.confirm(db, ctx.cipher, account, code, policy.clock())
        if codes is not None:
            audit.record(db, principal.name, "totp.enrol")
    if codes is None:
        return await _enrol_page(request, principal, account, status=401, error="totp.wrong",
                                 action=OPT_IN_PATH)
    return render(request, "totp_codes.html", lang=principal.lang, principal=principal,
                  codes=codes, next="/console/account")


# --- invitations -----------------------------------------------------------------------------
def _invite_page(request: web.Request, lang: str, *, name: str, status: int = 200,
                 error: str | None = None) -> web.Response:
    token = auth.new_secret()
    response = render(request, "invite.html", lang=lang, principal=None, status=status,
                      csrf=token, error=error, name=name, token=request.match_info["token"])
    set_cookie(response, request, LOGIN_COOKIE, token)
    return response


async def invite_form(request: web.Request) -> web.StreamResponse:
    lang = request_lang(request, None)
    async with context_of(request).store.session() as db:
        account = await open_invitation(db, request.match_info["token"])
    if account is None:
        return render_error(request, None, 404)
    return _invite_page(request, lang, name=account.name)


async def invite_submit(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    form = await form_fields(request)
    lang = form.get("lang") if form.get("lang") in CONSOLE_LANGUAGES else request_lang(
        request, None)
    token = request.match_info["token"]
    async with ctx.store.session() as db:
        account = await open_invitation(db, token)
    if account is None:
        return render_error(request, None, 404)
    if not same_secret(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        return _invite_page(request, str(lang), name=account.name, status=403,
                            error="notice.invalid")
    password = form.get("password", "")
    if password != form.get("repeat", ""):
        return _invite_page(request, str(lang), name=account.name, status=400,
                            error="invite.mismatch")
    try:
        await accept_invitation(ctx.store.session, ctx.passwords, token=token,
                                password=password)
    except auth.AccountError:
        return _invite_page(request, str(lang), name=account.name, status=400,
                            error="invite.weak")
    response = see_other("/console/login", "password_set")
    clear_cookie(response, LOGIN_COOKIE)
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console", root)
    router.add_get("/console/", root)
    router.add_get("/console/login", login_form)
    router.add_post("/console/login", login_submit)
    router.add_post("/console/logout", logout)
    router.add_get("/console/home", home)
    router.add_get(TOTP_PATH, totp_form)
    router.add_post(TOTP_PATH, totp_submit)
    router.add_get(ENROL_PATH, enrol_form)
    router.add_post(ENROL_PATH, enrol_submit)
    router.add_get(OPT_IN_PATH, opt_in_form)
    router.add_post(OPT_IN_PATH, opt_in_submit)
    router.add_get(r"/console/invite/{token:[A-Za-z0-9_-]{20,64}}", invite_form)
    router.add_post(r"/console/invite/{token:[A-Za-z0-9_-]{20,64}}", invite_submit)
