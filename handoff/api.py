"""The JSON API for integrators (CONTRACT.md ``/api/cases...``).

Authentication: ``Authorization: Bearer <token>`` (``sanad caseworker token NAME``) or the
console session cookie plus ``X-CSRF-Token`` on POSTs. Replying needs the case claimed by the
caller first (no implicit claim: taking a case is a deliberate act that others see).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from bot.store.repository import as_utc
from handoff import actions, audit, placeholders, relay
from handoff.context import context_of
from handoff.guard import api_route, json_error, json_response
from handoff.policy import Principal, holds
from handoff.reads import VIEWS, Forbidden, case_for, queue_for, summary_for, thread_for

CASE = r"/api/cases/{case_id:\d{1,18}}"
MAX_REPLY_CHARS = 3000
"""Leaves room under Telegram's 4096 for the "Caseworker:" prefix in every language."""
MAX_QUERY_CHARS = 16
"""``q`` matches aliases (``S-7KQ2MX``): nothing longer can match."""


class BadRequest(Exception):
    pass


def case_id_of(request: web.Request) -> int:
    return int(request.match_info["case_id"])


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, *, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f'expected {{"{name}": "..."}}')
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters")
    return value.strip()


def bad_input(handler: Any) -> Any:
    """400 for malformed bodies (kept apart from the auth wrapper, which runs first)."""

    async def wrapped(request: web.Request, principal: Principal) -> web.StreamResponse:
        try:
            return await handler(request, principal)
        except BadRequest as exc:
            return json_error(400, str(exc))

    return wrapped


def view_of(request: web.Request) -> str | None:
    view = request.query.get("view") or None
    if view is not None and view not in VIEWS:
        raise BadRequest(f"view must be one of {', '.join(VIEWS)}")
    return view


def alias_query_of(request: web.Request) -> str | None:
    query = request.query.get("q", "").strip()
    if len(query) > MAX_QUERY_CHARS:
        raise BadRequest(f"q is longer than {MAX_QUERY_CHARS} characters")
    return query or None


@api_route
@bad_input
async def list_cases(request: web.Request, principal: Principal) -> web.StreamResponse:
    view, alias = view_of(request), alias_query_of(request)
    async with context_of(request).store.session() as db:
        cases = await queue_for(db, principal, action="api.list", view=view, alias=alias)
    return json_response([c.to_dict() for c in cases])


@api_route
async def get_case(request: web.Request, principal: Principal) -> web.StreamResponse:
    async with context_of(request).store.session() as db:
        case, summary = await summary_for(db, principal, case_id_of(request), "api.case")
    return json_response({
        **summary.to_dict(), "reason": case.reason, "outcome": case.outcome,
        "closed_at": as_utc(case.closed_at).isoformat() if case.closed_at else None,
        "closed_by": case.closed_by, "escalated": case.escalated_at is not None,
    })


@api_route
async def claim(request: web.Request, principal: Principal) -> web.StreamResponse:
    case_id = case_id_of(request)
    async with context_of(request).store.session() as db:
        won = await actions.claim(db, case_id, principal.name)
        audit.record(db, principal.name, "case.claim" if won else "case.claim_lost", case_id)
    if not won:
        return json_error(409, "the case is held by someone else or closed")
    return json_response({"id": case_id, "status": "claimed", "assignee": principal.name})


@api_route
async def messages(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    async with ctx.store.session() as db:
        _, thread = await thread_for(db, ctx.cipher, principal, case_id_of(request),
                                     "api.messages")
    return json_response([m.to_dict() for m in thread])


@api_route
@bad_input
async def post_message(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    text = text_field(await json_body(request), "text", limit=MAX_REPLY_CHARS)
    case_id = case_id_of(request)
    async with ctx.store.session() as db:
        case = await case_for(db, principal, case_id, "case.reply")
        if case.status == "closed":
            return json_error(409, "the case is closed")
        if not holds(principal, case):
            return json_error(409, "claim the case before replying")
        try:  # service details filled as in the console; never sent raw
            text = placeholders.fill(ctx.content, text, case.language)
        except placeholders.PlaceholderError as bad:
            return json_error(422, f"cannot fill {bad.placeholder} ({bad.reason})")
        try:
            await relay.reply(db, cipher=ctx.cipher, ui=ctx.ui, case_id=case_id,
                              author=principal.name, text=text)
        except relay.CaseNotOpen:
            return json_error(409, "the case is not open")
    return json_response({"status": "queued"}, 201)


@api_route
@bad_input
async def close(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = await json_body(request)
    outcome = body.get("outcome")
    if outcome not in actions.OUTCOMES:
        raise BadRequest(f"outcome must be one of {', '.join(actions.OUTCOMES)}")
    case_id = case_id_of(request)
    async with context_of(request).store.session() as db:
        await case_for(db, principal, case_id, "case.close")
        await actions.close(db, case_id, principal.name, str(outcome),
                            any_holder=principal.supervises)
    return json_response({"id": case_id, "status": "closed", "outcome": outcome})


@api_route
async def reopen(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Supervisors reopen any closed case; a caseworker the case they closed themselves."""
    case_id = case_id_of(request)
    async with context_of(request).store.session() as db:
        case = await case_for(db, principal, case_id, "case.reopen")
        if (case.status == "closed" and not principal.supervises
                and case.closed_by != principal.name):
            raise Forbidden(case_id)
        status = await actions.reopen(db, case_id, principal.name,
                                      any_closer=principal.supervises)
    return json_response({"id": case_id, "status": status})


@api_route
@bad_input
async def labels(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Supervisors add and remove label ids; each change is an audit row of its own."""
    case_id = case_id_of(request)
    if not principal.supervises:
        raise Forbidden(case_id)
    body = await json_body(request)
    add = actions.clean_labels(body.get("add", []))
    remove = actions.clean_labels(body.get("remove", []))
    if not add and not remove:
        raise BadRequest('expected {"add": [...], "remove": [...]}')
    async with context_of(request).store.session() as db:
        await case_for(db, principal, case_id, "case.labels")
        now, added, removed = await actions.relabel(db, case_id, add, remove)
        for label in added:
            audit.record(db, principal.name, "case.label_add", case_id, detail=label)
        for label in removed:
            audit.record(db, principal.name, "case.label_remove", case_id, detail=label)
    return json_response({"id": case_id, "labels": now})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/cases", list_cases)
    router.add_get(CASE, get_case)
    router.add_post(CASE + "/claim", claim)
    router.add_get(CASE + "/messages", messages)
    router.add_post(CASE + "/messages", post_message)
    router.add_post(CASE + "/close", close)
    router.add_post(CASE + "/reopen", reopen)
    router.add_post(CASE + "/labels", labels)
