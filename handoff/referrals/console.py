"""Console pages of referrals.

* ``/console/cases/{id}/referrals`` (caseworkers, supervisors): the case's structured referrals
  and their timelines, the form to propose one (the person is then asked in the chat), and
  withdraw / ask again / "the person withdrew consent".
* ``/console/partner`` (the ``partner`` role): the referrals sent to the account's own
  organisation, with accept / decline / in progress / complete. Nothing else of a case.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handoff import audit
from handoff.context import context_of
from handoff.guard import console_route, form_fields
from handoff.policy import PARTNER_ROLE, Principal, holds
from handoff.reads import case_for
from handoff.referrals import service, states, views
from handoff.referrals.context import referrals_of
from handoff.referrals.partners import partner_of
from handoff.render import redirect, render

CASE = r"/console/cases/{case_id:\d{1,18}}/referrals"
REFERRAL = r"/console/referrals/{referral_id:\d{1,18}}"
PARTNER_REFERRAL = r"/console/partner/referrals/{referral_id:\d{1,18}}"


def handles_cases(principal: Principal) -> bool:
    return principal.handles_cases


def is_partner(principal: Principal) -> bool:
    return principal.role == PARTNER_ROLE


def _errors_to_notice(location: str) -> Any:
    """Lifecycle errors become a notice on the page, never a 500."""
    def decorate(handler: Any) -> Any:
        async def wrapped(request: web.Request, principal: Principal) -> web.StreamResponse:
            target = location.format(**request.match_info)
            try:
                return await handler(request, principal)
            except service.ReferralNotFound:
                async with context_of(request).store.session() as db:
                    audit.record(db, principal.name, "referral.denied", None,
                                 f"referral:{request.match_info.get('referral_id', '-')}")
                raise redirect(target, "referral_not_found") from None
            except service.ReferralConflict:
                raise redirect(target, "referral_conflict") from None
            except service.ReferralInputError:
                raise redirect(target, "invalid") from None
        wrapped.__name__ = handler.__name__
        return wrapped
    return decorate


# --- caseworkers ----------------------------------------------------------------------------
@console_route(handles_cases)
async def case_referrals(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = int(request.match_info["case_id"])
    directory = referrals_of(request).directory
    async with ctx.store.session() as db:
        case = await case_for(db, principal, case_id, "referral.list")
        shown = await views.list_for_case(db, ctx.cipher, case_id)
        minor = service.is_minor(case, None) or any(r["minor"] for r in shown)
    lang = principal.lang
    partners = [(p, [(s, _service_name(ctx, s, lang)) for s in p.services])
                for p in directory.partners if p.child_protection or not minor]
    return render(
        request, "referrals.html", lang=lang, principal=principal, case_id=case_id,
        referrals=shown, partners=partners, names={p.id: p.name_in(lang)
                                                   for p in directory.partners},
        can_act=case.status != "closed" and case.user_id is not None
        and (holds(principal, case) or principal.supervises),
        fields=states.SHAREABLE, urgencies=states.URGENCIES, minor=minor,
        open_states=states.OPEN,
    )


def _service_name(ctx: Any, service_id: str, lang: str) -> str:
    found = ctx.content.service(service_id)
    return found.name.get(lang, found.name["en"]) if found else service_id


@console_route(handles_cases)
@_errors_to_notice("/console/cases/{case_id}/referrals")
async def propose(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = int(request.match_info["case_id"])
    form = await request.post()
    fields = [str(v) for v in form.getall("fields", []) if isinstance(v, str)]
    partner_id, _, service_id = str(form.get("target", "")).partition("/")
    async with ctx.store.session() as db:
        case = await case_for(db, principal, case_id, "referral.open")
        if not (holds(principal, case) or principal.supervises):
            raise service.ReferralConflict("claim the case first")
        await service.propose(
            db, referrals_of(request).deps(ctx), case_id=case_id, by=principal.name,
            partner_id=partner_id, service_id=service_id,
            urgency=str(form.get("urgency", "normal")), fields=fields,
            typed={k: str(form.get(k, "")) for k in states.TYPED_FIELDS})
    raise redirect(f"/console/cases/{case_id}/referrals", "referral_proposed")


def _staff_action(action: str) -> Any:
    @console_route(handles_cases)
    async def act(request: web.Request, principal: Principal) -> web.StreamResponse:
        ctx = context_of(request)
        referral_id = int(request.match_info["referral_id"])
        async with ctx.store.session() as db:
            referral = await service.get(db, referral_id)
            case = await case_for(db, principal, referral.case_id, f"referral.{action}")
            target = f"/console/cases/{referral.case_id}/referrals"
            if not (holds(principal, case) or principal.supervises):
                raise redirect(target, "referral_conflict")
            try:
                if action == "withdraw":
                    await service.withdraw(db, ctx.cipher, referral_id, principal.name)
                elif action == "ask":
                    await service.ask_again(db, referrals_of(request).deps(ctx), referral_id,
                                            principal.name)
                else:
                    await service.revoke_for_person(db, ctx.cipher, referral_id,
                                                    principal.name)
            except service.ReferralError:
                raise redirect(target, "referral_conflict") from None
        raise redirect(target, "referral_updated")

    act.__name__ = f"console_{action.replace('-', '_')}"
    return act


# --- partners -------------------------------------------------------------------------------
async def _partner_id(request: web.Request, principal: Principal) -> str | None:
    async with context_of(request).store.session() as db:
        return await partner_of(db, principal.id)


@console_route(is_partner)
async def partner_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    partner_id = await _partner_id(request, principal)
    directory = referrals_of(request).directory
    shown: list[dict[str, Any]] = []
    if partner_id is not None:
        async with ctx.store.session() as db:
            audit.record(db, principal.name, "referral.list", None, partner_id[:64])
            shown = await views.list_for_partner(db, ctx.cipher, partner_id)
    partner = directory.get(partner_id) if partner_id else None
    return render(
        request, "partner.html", lang=principal.lang, principal=principal,
        organisation=partner.name_in(principal.lang) if partner else None,
        referrals=shown, services={s["service_id"]: _service_name(ctx, s["service_id"],
                                                                  principal.lang)
                                   for s in shown},
        decline_reasons=states.DECLINE_REASONS, outcomes=states.OUTCOMES,
    )


def _partner_action(action: str) -> Any:
    @console_route(is_partner)
    @_errors_to_notice("/console/partner")
    async def act(request: web.Request, principal: Principal) -> web.StreamResponse:
        ctx = context_of(request)
        partner_id = await _partner_id(request, principal)
        if partner_id is None:
            raise service.ReferralNotFound("no organisation")
        form = await form_fields(request)
        code = form.get("reason") if action == "decline" else form.get("outcome")
        async with ctx.store.session() as db:
            await service.partner_act(
                db, referrals_of(request).deps(ctx),
                referral_id=int(request.match_info["referral_id"]), partner_id=partner_id,
                actor=principal.name, action=action,
                code=code if action in ("decline", "complete") else None)
        raise redirect("/console/partner", "referral_updated")

    act.__name__ = f"partner_{action}"
    return act


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(CASE, case_referrals)
    router.add_post(CASE, propose)
    for action in ("withdraw", "ask", "consent-withdrawn"):
        router.add_post(f"{REFERRAL}/{action}", _staff_action(action))
    router.add_get("/console/partner", partner_page)
    for action in ("accept", "decline", "start", "complete"):
        router.add_post(f"{PARTNER_REFERRAL}/{action}", _partner_action(action))
