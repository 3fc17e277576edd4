"""Console pages for cases: the queue and a case (thread, screening summary, notes, actions).

Pages work without JavaScript (forms and redirects); ``static/console.js`` only polls the two
``/poll`` endpoints, which return fragments rendered by the same templates as the pages.
"""

from __future__ import annotations

import hashlib

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.repository import utcnow
from handoff import actions, audit, relay
from handoff.api import MAX_REPLY_CHARS, case_id_of
from handoff.context import context_of
from handoff.guard import console_route, form_fields, json_response
from handoff.policy import Principal, holds
from handoff.queue import contact_paused, summarize
from handoff.reads import (
    Forbidden,
    case_for,
    case_handlers,
    escalated_ids,
    new_messages,
    queue_for,
    thread_for,
)
from handoff.render import labels_for, redirect, render

CASE = r"/console/cases/{case_id:\d{1,18}}"


def handles_cases(principal: Principal) -> bool:
    return principal.handles_cases


def case_url(case_id: int) -> str:
    return f"/console/cases/{case_id}"


# --- queue ---------------------------------------------------------------------------------
async def _queue_rows(request: web.Request, principal: Principal, action: str | None) -> list:
    async with context_of(request).store.session() as db:
        cases = await queue_for(db, principal, action=action)
        escalated = await escalated_ids(db)
    return labels_for(request, principal.lang).queue(principal, cases, escalated, utcnow())


def _rows_fragment(request: web.Request, principal: Principal, rows: list) -> tuple[str, str]:
    """The queue's rows as HTML, and a short version hash so a poll can skip unchanged rows."""
    html = render(request, "_queue_rows.html", lang=principal.lang, principal=principal,
                  rows=rows).text or ""
    return html, hashlib.sha256(html.encode()).hexdigest()[:16]


@console_route(handles_cases)
async def queue_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    rows = await _queue_rows(request, principal, "queue.view")
    _, version = _rows_fragment(request, principal, rows)
    return render(request, "queue.html", lang=principal.lang, principal=principal, rows=rows,
                  version=version)


@console_route(handles_cases, poll=True)
async def queue_poll(request: web.Request, principal: Principal) -> web.StreamResponse:
    """The rows only when they changed since version ``v`` (and then audited as a read)."""
    rows = await _queue_rows(request, principal, None)
    html, version = _rows_fragment(request, principal, rows)
    if request.query.get("v") == version:
        return json_response({"v": version})
    async with context_of(request).store.session() as db:
        audit.record(db, principal.name, "queue.view")
    return json_response({"v": version, "html": html, "count": len(rows)})


@console_route(handles_cases)
async def claim_next(request: web.Request, principal: Principal) -> web.StreamResponse:
    async with context_of(request).store.session() as db:
        case_id = await actions.claim_next(db, principal.name)
        if case_id is not None:
            audit.record(db, principal.name, "case.claim", case_id)
    if case_id is None:
        raise redirect("/console/queue", "queue_empty")
    raise redirect(case_url(case_id), "claimed")


# --- one case ------------------------------------------------------------------------------
@console_route(handles_cases)
async def case_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = case_id_of(request)
    async with ctx.store.session() as db:
        case, thread = await thread_for(db, ctx.cipher, principal, case_id, "case.view")
        notes = await actions.notes(db, ctx.cipher, case_id)
        handlers = await case_handlers(db) if principal.supervises else []
        paused = await contact_paused(db, case)
    labels = labels_for(request, principal.lang)
    row = labels.case_row(principal, summarize(case, contact_paused=paused),
                          escalated=case.escalated_at is not None, now=utcnow())
    return render(
        request, "case.html", lang=principal.lang, principal=principal, case=row,
        is_open=case.status != "closed", held=holds(principal, case),
        outcome=labels.of("outcome", case.outcome), messages=labels.messages(thread),
        count=len(thread), notes=labels.notes(notes, ctx.content),
        services=labels.services(ctx.content), outcomes=actions.OUTCOMES,
        canned=ctx.canned, case_language=case.language, handlers=handlers,
        max_reply=MAX_REPLY_CHARS,
    )


@console_route(handles_cases, poll=True)
async def case_poll(request: web.Request, principal: Principal) -> web.StreamResponse:
    """The status and the messages after the first ``n`` the page already shows."""
    ctx = context_of(request)
    known = request.query.get("n", "0")
    seen = int(known) if known.isdigit() and len(known) < 9 else 0
    async with ctx.store.session() as db:
        case, count, fresh = await new_messages(db, ctx.cipher, principal, case_id_of(request),
                                                seen)
    payload: dict[str, object] = {"n": count, "status": case.status,
                                  "assignee": case.assignee or "", "reset": count < seen}
    if fresh:
        payload["html"] = render(
            request, "_messages.html", lang=principal.lang, principal=principal,
            messages=labels_for(request, principal.lang).messages(fresh),
        ).text
    return json_response(payload)


@console_route(handles_cases)
async def claim(request: web.Request, principal: Principal) -> web.StreamResponse:
    case_id = case_id_of(request)
    async with context_of(request).store.session() as db:
        won = await actions.claim(db, case_id, principal.name)
        audit.record(db, principal.name, "case.claim" if won else "case.claim_lost", case_id)
    if not won:
        raise redirect("/console/queue", "taken")
    raise redirect(case_url(case_id), "claimed")


@console_route(handles_cases)
async def reply(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = case_id_of(request)
    form = await form_fields(request)
    text = form.get("text", "").strip()
    async with ctx.store.session() as db:
        case = await case_for(db, principal, case_id, "case.reply")
        if not text:
            canned = next((c for c in ctx.canned if c.id == form.get("canned")), None)
            text = canned.text_for(case.language) if canned else ""
        if not text or len(text) > MAX_REPLY_CHARS:
            raise actions.InvalidInput("reply text")
        if not holds(principal, case):
            raise redirect(case_url(case_id), "claim_first")
        try:
            await relay.reply(db, cipher=ctx.cipher, ui=ctx.ui, case_id=case_id,
                              author=principal.name, text=text)
        except relay.CaseNotOpen:
            raise actions.CaseConflict("not open") from None
    raise redirect(case_url(case_id), "sent")


@console_route(handles_cases)
async def add_note(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = case_id_of(request)
    async with ctx.store.session() as db:
        await _held_or_supervised(db, principal, case_id, "case.note")
        await actions.add_note(db, ctx.cipher, case_id, principal.name,
                               (await form_fields(request)).get("text", ""))
    raise redirect(case_url(case_id), "noted")


@console_route(handles_cases)
async def refer(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = case_id_of(request)
    form = await form_fields(request)
    async with ctx.store.session() as db:
        await _held_or_supervised(db, principal, case_id, "case.refer")
        await actions.refer(db, ctx.cipher, ctx.content, case_id, principal.name,
                            form.get("service", ""), form.get("text", ""))
    raise redirect(case_url(case_id), "referred")


@console_route(handles_cases)
async def transfer(request: web.Request, principal: Principal) -> web.StreamResponse:
    case_id = case_id_of(request)
    target = (await form_fields(request)).get("to", "").strip() or None
    if target is not None and not principal.supervises:
        raise Forbidden(case_id)
    async with context_of(request).store.session() as db:
        await case_for(db, principal, case_id, "case.transfer")
        await actions.transfer(db, case_id, principal.name, target,
                               any_holder=principal.supervises)
    raise redirect("/console/queue", "transferred")


@console_route(handles_cases)
async def close(request: web.Request, principal: Principal) -> web.StreamResponse:
    case_id = case_id_of(request)
    async with context_of(request).store.session() as db:
        await case_for(db, principal, case_id, "case.close")
        await actions.close(db, case_id, principal.name,
                            (await form_fields(request)).get("outcome", ""),
                            any_holder=principal.supervises)
    raise redirect("/console/queue", "closed")


async def _held_or_supervised(db: AsyncSession, principal: Principal, case_id: int,
                              action: str) -> None:
    case = await case_for(db, principal, case_id, action)
    if not (holds(principal, case) or principal.supervises):
        raise redirect(case_url(case_id), "claim_first")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/queue", queue_page)
    router.add_get("/console/queue/poll", queue_poll)
    router.add_post("/console/queue/claim-next", claim_next)
    router.add_get(CASE, case_page)
    router.add_get(CASE + "/poll", case_poll)
    for action, handler in (("claim", claim), ("reply", reply), ("notes", add_note),
                            ("refer", refer), ("transfer", transfer), ("close", close)):
        router.add_post(f"{CASE}/{action}", handler)
