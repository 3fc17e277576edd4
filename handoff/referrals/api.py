"""JSON routes of referrals (docs/referrals.md).

Partners (a ``sanadp_`` token with scopes, or a ``partner`` console session plus
``X-CSRF-Token``): ``GET /api/referrals``, ``GET /api/referrals/{id}``, ``.../htcds``, and
``POST .../accept|decline|start|update|complete``. A partner only ever sees referrals sent to
its own organisation; any other id is 404, whether or not it exists.

Caseworkers and supervisors (their usual token or session): ``GET|POST
/api/cases/{id}/referrals``, ``GET /api/referrals/{id}``, ``.../htcds``, and ``POST
.../withdraw|ask|consent-withdrawn``; ``GET /api/partners``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from aiohttp import web

from handoff import audit, auth
from handoff.actions import CaseNotFound
from handoff.api import BadRequest, json_body
from handoff.context import context_of
from handoff.guard import CSRF_HEADER, _audit_denied, json_error, json_response, same_secret
from handoff.guard import session_principal as console_principal
from handoff.policy import Principal, holds
from handoff.reads import Forbidden, case_for
from handoff.referrals import htcds, service, states, views
from handoff.referrals.context import referrals_of
from handoff.referrals.partners import (
    PARTNER_ROLE,
    READ,
    SCOPES,
    TOKEN_PREFIX,
    WRITE,
    PartnerCaller,
    caller_for_token,
    partner_of,
)

REFERRAL = r"/api/referrals/{referral_id:\d{1,18}}"
Caller = Principal | PartnerCaller
Handler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


async def caller_of(request: web.Request) -> Caller | None:
    """A partner token, a caseworker token, or a console session (partner or staff)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    ctx = context_of(request)
    if scheme.lower() == "bearer" and token:
        async with ctx.store.session() as db:
            if token.startswith(TOKEN_PREFIX):
                return await caller_for_token(db, token)
            return await auth.principal_for_token(db, token)
    if header:
        return None
    principal = await console_principal(request)
    if principal is None or principal.role != PARTNER_ROLE:
        return principal
    async with ctx.store.session() as db:
        partner_id = await partner_of(db, principal.id)
    if partner_id is None:
        return None
    return PartnerCaller(partner_id=partner_id, actor=principal.name,
                         scopes=frozenset(SCOPES), via="session",
                         csrf_token=principal.csrf_token)


def route(*, partner: str | None = None, staff: bool = False) -> Callable[[Handler], Any]:
    """``partner``: the scope a partner needs (None: partners may not); ``staff``: whether
    caseworkers/supervisors may. Maps lifecycle errors to 4xx; never a traceback."""

    def decorate(handler: Handler) -> Any:
        @wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            caller = await caller_of(request)
            if caller is None:
                response = json_error(401, "authentication required")
                response.headers["WWW-Authenticate"] = 'Bearer realm="sanad"'
                return response
            if (request.method == "POST" and caller.via == "session"
                    and not same_secret(request.headers.get(CSRF_HEADER), caller.csrf_token)):
                return json_error(403, "missing or invalid X-CSRF-Token")
            if isinstance(caller, PartnerCaller):
                if partner is None:
                    return json_error(403, "partners have no access to this route")
                if not caller.may(partner):
                    return json_error(403, f"this token lacks the scope {partner}")
            elif not (staff and caller.handles_cases):
                return json_error(403, "your role has no access to referrals")
            try:
                return await handler(request, caller)
            except (service.ReferralNotFound, CaseNotFound):
                if isinstance(caller, PartnerCaller):
                    await _audit_partner_denied(request, caller)
                return json_error(404, "no such referral")
            except Forbidden as exc:
                await _audit_denied(request, caller, exc.case_id)  # type: ignore[arg-type]
                return json_error(403, "this case is outside your role")
            except service.ReferralConflict as exc:
                return json_error(409, str(exc))
            except (service.ReferralInputError, BadRequest) as exc:
                return json_error(400, str(exc))

        return wrapped

    return decorate


async def _audit_partner_denied(request: web.Request, caller: PartnerCaller) -> None:
    """In its own transaction: the refused request's one rolled back."""
    detail = request.match_info.get("referral_id")
    async with context_of(request).store.session() as db:
        audit.record(db, caller.actor, "referral.denied", None,
                     f"referral:{detail}" if detail else None)


def referral_id_of(request: web.Request) -> int:
    return int(request.match_info["referral_id"])


async def _staff_view(request: web.Request, principal: Principal, referral_id: int,
                      action: str) -> dict[str, Any]:
    ctx = context_of(request)
    async with ctx.store.session() as db:
        referral = await service.get(db, referral_id)
        await case_for(db, principal, referral.case_id, action)
        steps = await views.steps_of(db, [referral.id])
        return views.for_caseworker(ctx.cipher, referral, steps[referral.id])


async def _partner_view(request: web.Request, caller: PartnerCaller, referral_id: int,
                        action: str) -> dict[str, Any]:
    ctx = context_of(request)
    async with ctx.store.session() as db:
        referral = await service.get(db, referral_id)
        if (referral.partner_id != caller.partner_id
                or referral.status not in states.PARTNER_VISIBLE):
            raise service.ReferralNotFound(str(referral_id))
        audit.record(db, caller.actor, action, referral.case_id, f"referral:{referral.id}")
        steps = await views.steps_of(db, [referral.id])
        return views.for_partner(ctx.cipher, referral, steps[referral.id])


# --- partners and staff ---------------------------------------------------------------------
@route(partner=READ)
async def list_referrals(request: web.Request, caller: PartnerCaller) -> web.StreamResponse:
    status = request.query.get("status") or None
    if status is not None and status not in states.PARTNER_VISIBLE:
        raise BadRequest(f"status must be one of {', '.join(states.PARTNER_VISIBLE)}")
    ctx = context_of(request)
    async with ctx.store.session() as db:
        audit.record(db, caller.actor, "referral.list", None, caller.partner_id[:64])
        shown = await views.list_for_partner(db, ctx.cipher, caller.partner_id, status=status)
    return json_response(shown)


@route(partner=READ, staff=True)
async def get_referral(request: web.Request, caller: Caller) -> web.StreamResponse:
    if isinstance(caller, PartnerCaller):
        return json_response(await _partner_view(request, caller, referral_id_of(request),
                                                 "referral.read"))
    return json_response(await _staff_view(request, caller, referral_id_of(request),
                                           "referral.read"))


@route(partner=READ, staff=True)
async def export_htcds(request: web.Request, caller: Caller) -> web.StreamResponse:
    if isinstance(caller, PartnerCaller):
        view = await _partner_view(request, caller, referral_id_of(request), "referral.export")
    else:
        view = await _staff_view(request, caller, referral_id_of(request), "referral.export")
    return json_response(htcds.export(view, referrals_of(request).directory.get(
        view["partner_id"])))


def _partner_action(action: str, code_field: str | None = None) -> Any:
    @route(partner=WRITE)
    async def act(request: web.Request, caller: PartnerCaller) -> web.StreamResponse:
        body = await json_body(request) if request.body_exists else {}
        code = None
        if code_field is not None:
            code = body.get(code_field)
            if not isinstance(code, str):
                raise BadRequest(f'expected {{"{code_field}": "..."}}')
        taken = action
        if action == "update":
            status = body.get("status")
            if status != states.IN_PROGRESS:
                raise BadRequest('expected {"status": "in_progress"} (use accept, decline '
                                 'or complete for the other steps)')
            taken = "start"
        ctx = context_of(request)
        async with ctx.store.session() as db:
            referral = await service.partner_act(
                db, referrals_of(request).deps(ctx), referral_id=referral_id_of(request),
                partner_id=caller.partner_id, actor=caller.actor, action=taken, code=code)
            steps = await views.steps_of(db, [referral.id])
            shown = views.for_partner(ctx.cipher, referral, steps[referral.id])
        return json_response(shown)

    act.__name__ = f"partner_{action}"
    return act


# --- caseworkers ------------------------------------------------------------------------------
@route(staff=True)
async def case_referrals(request: web.Request, principal: Principal) -> web.StreamResponse:
    case_id = int(request.match_info["case_id"])
    ctx = context_of(request)
    async with ctx.store.session() as db:
        await case_for(db, principal, case_id, "referral.list")
        shown = await views.list_for_case(db, ctx.cipher, case_id)
    return json_response(shown)


@route(staff=True)
async def propose(request: web.Request, principal: Principal) -> web.StreamResponse:
    case_id = int(request.match_info["case_id"])
    body = await json_body(request)
    ctx = context_of(request)
    async with ctx.store.session() as db:
        case = await case_for(db, principal, case_id, "referral.open")
        if not (holds(principal, case) or principal.supervises):
            return json_error(409, "claim the case before proposing a referral")
        referral = await service.propose(
            db, referrals_of(request).deps(ctx), case_id=case_id, by=principal.name,
            partner_id=str(body.get("partner_id") or ""),
            service_id=str(body.get("service_id") or ""),
            urgency=str(body.get("urgency") or "normal"), fields=body.get("fields"),
            typed={k: body.get(k) for k in states.TYPED_FIELDS})
        steps = await views.steps_of(db, [referral.id])
        shown = views.for_caseworker(ctx.cipher, referral, steps[referral.id])
    return json_response(shown, 201)


def _staff_action(action: str) -> Any:
    @route(staff=True)
    async def act(request: web.Request, principal: Principal) -> web.StreamResponse:
        ctx = context_of(request)
        referral_id = referral_id_of(request)
        async with ctx.store.session() as db:
            referral = await service.get(db, referral_id)
            case = await case_for(db, principal, referral.case_id, f"referral.{action}")
            if not (holds(principal, case) or principal.supervises):
                return json_error(409, "claim the case first")
            if action == "withdraw":
                await service.withdraw(db, ctx.cipher, referral_id, principal.name)
            elif action == "ask":
                await service.ask_again(db, referrals_of(request).deps(ctx), referral_id,
                                        principal.name)
            else:
                await service.revoke_for_person(db, ctx.cipher, referral_id, principal.name)
            steps = await views.steps_of(db, [referral_id])
            shown = views.for_caseworker(ctx.cipher, await service.get(db, referral_id),
                                         steps[referral_id])
        return json_response(shown)

    act.__name__ = f"staff_{action}"
    return act


@route(staff=True)
async def list_partners(request: web.Request, principal: Principal) -> web.StreamResponse:
    lang = principal.lang
    return json_response([{
        "id": p.id, "name": p.name_in(lang), "kind": p.kind,
        "child_protection": p.child_protection, "services": list(p.services),
        "governorates": list(p.governorates), "contact_verified": p.contact_verified,
    } for p in referrals_of(request).directory.partners])


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/referrals", list_referrals)
    router.add_get(REFERRAL, get_referral)
    router.add_get(REFERRAL + "/htcds", export_htcds)
    router.add_post(REFERRAL + "/accept", _partner_action("accept"))
    router.add_post(REFERRAL + "/decline", _partner_action("decline", "reason"))
    router.add_post(REFERRAL + "/start", _partner_action("start"))
    router.add_post(REFERRAL + "/update", _partner_action("update"))
    router.add_post(REFERRAL + "/complete", _partner_action("complete", "outcome"))
    router.add_post(REFERRAL + "/withdraw", _staff_action("withdraw"))
    router.add_post(REFERRAL + "/ask", _staff_action("ask"))
    router.add_post(REFERRAL + "/consent-withdrawn", _staff_action("consent-withdrawn"))
    router.add_get(r"/api/cases/{case_id:\d{1,18}}/referrals", case_referrals)
    router.add_post(r"/api/cases/{case_id:\d{1,18}}/referrals", propose)
    router.add_get("/api/partners", list_partners)
