"""The gate in front of every console and API route: security headers, who is calling,
CSRF, and whether their role may use the route.

Handlers are wrapped (``api_route``, ``console_route``) rather than each checking for itself,
so a new route cannot forget the checks.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import wraps
from typing import Any

import orjson
from aiohttp import web

from handoff import audit, auth
from handoff.actions import CaseConflict, CaseNotFound, InvalidInput
from handoff.context import context_of
from handoff.next_page import login_url
from handoff.policy import Principal
from handoff.reads import Forbidden
from handoff.render import redirect, render_error
from handoff.texts import CONSOLE_LANGUAGES

log = logging.getLogger(__name__)

SESSION_COOKIE = "sanad_console"
LOGIN_COOKIE = "sanad_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
REASON_HEADER = "X-Access-Reason"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

HSTS = "max-age=31536000; includeSubDomains"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PrincipalHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
Rule = Callable[[Principal], bool]


def is_ours(path: str) -> bool:
    return path in ("/console", "/api") or path.startswith(("/console/", "/api/"))


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Strict headers on every console/API response, errors included; never a traceback."""
    if not is_ours(request.path):
        return await handler(request)
    headers = dict(SECURITY_HEADERS)
    if is_https(request):  # browsers must never try the console over plain HTTP again
        headers["Strict-Transport-Security"] = HSTS
    try:
        with audit.serving(request_info(request)):
            response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(headers)
        raise
    except Exception:
        log.exception("handoff: unhandled error on %s %s", request.method, request.path)
        response = json_error(500, "internal error")
    response.headers.update(headers)
    return response


def request_info(request: web.Request) -> audit.RequestInfo:
    """What every audit row of this request carries: the client address (behind trusted
    proxies, the real client's) and the reason given for opening a case, if any."""
    reason = request.query.get("reason") or request.headers.get(REASON_HEADER)
    client = context_of(request).proxies.client_of(request)[:64]
    return audit.RequestInfo(client=client, reason=audit.clean_reason(reason))


def auth_policy(request: web.Request) -> auth.AuthPolicy:
    """The login policy in force (production always requires the second factor)."""
    ctx = context_of(request)
    return auth.enforced(ctx.policy, ctx.sanad.settings.environment)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def json_error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


def is_https(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    """HttpOnly, SameSite=Strict, Secure over HTTPS; a session cookie (no Max-Age)."""
    response.set_cookie(name, value, path="/", httponly=True, samesite="Strict",
                        secure=is_https(request))


def clear_cookie(response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path="/")


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an absent value never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def session_principal(request: web.Request, *, touch: bool = True,
                            pending: bool = False) -> Principal | None:
    """The session's principal; with ``pending``, only a session still waiting for its
    second factor (the TOTP pages)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    ctx = context_of(request)
    async with ctx.store.session() as db:
        return await auth.principal_for_session(db, raw, auth_policy(request), touch=touch,
                                                pending=pending)


async def api_principal(request: web.Request) -> Principal | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        async with context_of(request).store.session() as db:
            return await auth.principal_for_token(db, token.strip())
    if header:
        return None
    return await session_principal(request)


def api_route(handler: PrincipalHandler) -> Handler:
    """JSON API: 401 without credentials, 403 with a cookie session but no CSRF header on a
    POST, 403 for roles without case access or a token without the scope (``cases:read`` to
    GET, ``cases:write`` to POST)."""

    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        principal = await api_principal(request)
        if principal is None:
            response = json_error(401, "authentication required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="sanad"'
            return response
        if (request.method == "POST" and principal.via == "session"
                and not same_secret(request.headers.get(CSRF_HEADER), principal.csrf_token)):
            return json_error(403, "missing or invalid X-CSRF-Token")
        if not principal.handles_cases:
            return json_error(403, "your role has no access to cases")
        scope = "cases:read" if request.method in ("GET", "HEAD") else "cases:write"
        if scope not in principal.scopes:
            return json_error(403, f"this token lacks the {scope} scope")
        try:
            return await handler(request, principal)
        except CaseNotFound:
            return json_error(404, "no such case")
        except Forbidden as exc:
            await _audit_denied(request, principal, exc.case_id)
            return json_error(403, "this case is outside your role")
        except CaseConflict as exc:
            return json_error(409, str(exc))
        except InvalidInput as exc:
            return json_error(400, str(exc))

    return wrapped


async def _audit_denied(request: web.Request, principal: Principal, case_id: int | None) -> None:
    async with context_of(request).store.session() as db:
        audit.record(db, principal.name, "case.denied", case_id)


def request_lang(request: web.Request, principal: Principal | None) -> str:
    asked = request.query.get("lang")
    if asked in CONSOLE_LANGUAGES:
        return str(asked)
    return principal.lang if principal else CONSOLE_LANGUAGES[0]


def console_route(allowed: Rule, *, poll: bool = False) -> Callable[[PrincipalHandler], Handler]:
    """Console pages: anonymous callers go to the login page (polls get 401), POSTs need the
    session's CSRF token, other roles get 403. ``poll`` requests do not extend the session."""

    def decorate(handler: PrincipalHandler) -> Handler:
        @wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            principal = await session_principal(request, touch=not poll)
            if principal is None:
                if poll:
                    return json_error(401, "session expired")
                had_session = SESSION_COOKIE in request.cookies
                raise web.HTTPFound(login_url(request, expired=had_session))
            if request.method == "POST":
                form = await form_fields(request)
                if not same_secret(form.get(CSRF_FIELD), principal.csrf_token):
                    return render_error(request, principal, 403)
            principal = await _remember_lang(request, principal)
            if not allowed(principal):
                return render_error(request, principal, 403)
            try:
                return await handler(request, principal)
            except CaseNotFound:
                return render_error(request, principal, 404)
            except Forbidden as exc:
                await _audit_denied(request, principal, exc.case_id)
                return render_error(request, principal, 403)
            except (CaseConflict, InvalidInput) as exc:
                notice = "not_open" if isinstance(exc, CaseConflict) else "invalid"
                case_id = request.match_info.get("case_id")
                raise redirect(f"/console/cases/{case_id}" if case_id else "/console/queue",
                               notice) from None

        return wrapped

    return decorate


async def _remember_lang(request: web.Request, principal: Principal) -> Principal:
    lang = request_lang(request, principal)
    if lang == principal.lang or principal.session_hash is None:
        return principal
    async with context_of(request).store.session() as db:
        await auth.set_session_lang(db, principal.session_hash, lang)
    return replace(principal, lang=lang)


async def form_fields(request: web.Request) -> dict[str, str]:
    """The text fields of a posted form (aiohttp caches the parsed body; files are ignored)."""
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
