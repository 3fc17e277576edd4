"""Console pages for cases: the queue and a case (thread, screening summary, notes, actions).

Pages work without JavaScript (forms and redirects). With it, ``static/console.js`` listens to
the two ``/events`` streams (server-sent events, :mod:`handoff.live`; the ``/poll`` endpoints
remain for browsers without them) and posts the same forms with ``fetch``: an action asked for
with ``Accept: application/json`` answers where to go next instead of redirecting.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.repository import utcnow
from handoff import actions, audit, canned, console_canned, live, placeholders, relay
from handoff.api import MAX_REPLY_CHARS, case_id_of
from handoff.context import context_of
from handoff.guard import (
    HSTS,
    SECURITY_HEADERS,
    console_route,
    form_fields,
    is_https,
    json_response,
    session_principal,
)
from handoff.policy import UNCLAIMED, Principal, can_see, holds
from handoff.previews import Preview
from handoff.queue import CaseSummary, contact_paused, indicators_of, summarize
from handoff.reads import (
    VIEWS,
    Forbidden,
    audit_previews,
    case_for,
    case_handlers,
    escalated_ids,
    new_messages,
    previews_for,
    queue_for,
    thread_for,
)
from handoff.render import labels_for, redirect, render

CASE = r"/console/cases/{case_id:\d{1,18}}"


def handles_cases(principal: Principal) -> bool:
    return principal.handles_cases


def case_url(case_id: int) -> str:
    return f"/console/cases/{case_id}"


async def done(request: web.Request, location: str, notice: str | None,
               case_id: int | None) -> web.StreamResponse:
    """After an action has committed: tell live consoles, then redirect (a form post) or say
    where to go (``fetch`` from console.js, which asks for JSON)."""
    await live.publish(request, case_id)
    if "application/json" in request.headers.get("Accept", ""):
        return json_response({"ok": True, "location": location, "notice": notice})
    raise redirect(location, notice)


def _stream_headers(request: web.Request) -> dict[str, str]:
    headers = dict(SECURITY_HEADERS)
    if is_https(request):
        headers["Strict-Transport-Security"] = HSTS
    return headers


async def _still_signed_in(request: web.Request) -> Principal:
    """Re-checked at every wake of a stream, never extending the session."""
    principal = await session_principal(request, touch=False)
    if principal is None:
        raise live.Expired
    return principal


# --- queue ---------------------------------------------------------------------------------
def queue_filter(request: web.Request) -> tuple[str | None, str | None]:
    """``?view=mine|unassigned|urgent|closed`` and ``?q=`` (part of an alias) of the queue."""
    view = request.query.get("view")
    alias = request.query.get("q", "").strip().upper()[:16]
    return (view if view in VIEWS else None), (alias or None)


@dataclass(frozen=True)
class _QueueRead:
    """The queue as one viewer sees it: the rows, their cases, and the previews shown."""

    rows: list
    cases: list[CaseSummary]
    previews: dict[int, Preview]


async def _queue_cases(request: web.Request, principal: Principal,
                       action: str | None) -> _QueueRead:
    """The viewer's queue; with ``action`` the list and every preview are audited now,
    without it (a stream or poll) the caller audits only what it actually sends."""
    view, alias = queue_filter(request)
    ctx = context_of(request)
    async with ctx.store.session() as db:
        cases = await queue_for(db, principal, action=action, view=view, alias=alias)
        shown = await previews_for(db, ctx.cipher, principal, cases,
                                   action="case.preview" if action else None)
        escalated = await escalated_ids(db)
    rows = labels_for(request, principal.lang).queue(principal, cases, escalated, utcnow(),
                                                     shown)
    return _QueueRead(rows, cases, shown)


async def _audit_sent(request: web.Request, principal: Principal, read: _QueueRead) -> None:
    """A refresh that is sent is a read: the list, and each preview in it."""
    async with context_of(request).store.session() as db:
        audit.record(db, principal.name, "queue.view")
        audit_previews(db, principal, read.previews)


def attention(principal: Principal, cases: list[CaseSummary]) -> dict[str, object]:
    """What the tab title and the alerts count: cases waiting for anyone, and my cases whose
    person wrote last; the new urgent ones and my unanswered ones by id (no text)."""
    waiting = [c for c in cases if c.status in UNCLAIMED]
    replies = {str(c.id): c.times.last_user_message_at.isoformat()
               for c in cases if holds(principal, c) and c.times.unanswered
               and c.times.last_user_message_at}
    return {"count": len(waiting) + len(replies),
            "urgent": [c.id for c in waiting if c.priority == "urgent"],
            "replies": replies}


def _rows_fragment(request: web.Request, principal: Principal, rows: list) -> tuple[str, str]:
    """The queue's rows as HTML, and a short version hash so a poll can skip unchanged rows."""
    html = render(request, "_queue_rows.html", lang=principal.lang, principal=principal,
                  rows=rows).text or ""
    return html, hashlib.sha256(html.encode()).hexdigest()[:16]


@console_route(handles_cases)
async def queue_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    read = await _queue_cases(request, principal, "queue.view")
    _, version = _rows_fragment(request, principal, read.rows)
    view, alias = queue_filter(request)
    return render(request, "queue.html", lang=principal.lang, principal=principal,
                  rows=read.rows, version=version, attention=attention(principal, read.cases),
                  view=view or "", q=alias or "", views=VIEWS)


@console_route(handles_cases, poll=True)
async def queue_events(request: web.Request, principal: Principal) -> web.StreamResponse:
    """The queue as a stream: new rows (audited as a read) whenever they change."""
    known = {"v": request.query.get("v", "")}

    async def update() -> tuple[str, dict[str, object]] | None:
        current = await _still_signed_in(request)
        read = await _queue_cases(request, current, None)
        html, version = _rows_fragment(request, current, read.rows)
        if version == known["v"]:
            return None
        known["v"] = version
        await _audit_sent(request, current, read)
        return "queue", {"v": version, "html": html, **attention(current, read.cases)}

    return await live.stream(request, _stream_headers(request), update, lambda _c: True)


@console_route(handles_cases, poll=True)
async def queue_poll(request: web.Request, principal: Principal) -> web.StreamResponse:
    """The rows only when they changed since version ``v`` (and then audited as a read)."""
    read = await _queue_cases(request, principal, None)
    html, version = _rows_fragment(request, principal, read.rows)
    if request.query.get("v") == version:
        return json_response({"v": version})
    await _audit_sent(request, principal, read)
    return json_response({"v": version, "html": html, "count": len(read.rows)})


@console_route(handles_cases)
async def claim_next(request: web.Request, principal: Principal) -> web.StreamResponse:
    async with context_of(request).store.session() as db:
        case_id = await actions.claim_next(db, principal.name)
        if case_id is not None:
            audit.record(db, principal.name, "case.claim", case_id)
    if case_id is None:
        return await done(request, "/console/queue", "queue_empty", None)
    return await done(request, case_url(case_id), "claimed", case_id)


# --- one case ------------------------------------------------------------------------------
@console_route(handles_cases)
async def case_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = case_id_of(request)
    async with ctx.store.session() as db:
        case, thread = await thread_for(db, ctx.cipher, principal, case_id, "case.view")
        notes = await actions.notes(db, ctx.cipher, case_id)
        handlers = await case_handlers(db) if principal.supervises else []
        replies = await canned.choices(db, ctx.canned, case_language=case.language,
                                       console_language=principal.lang, content=ctx.content)
        paused = await contact_paused(db, case)
        indicators = await indicators_of(db, case, ctx.cipher)  # audited by thread_for
    labels = labels_for(request, principal.lang)
    row = labels.case_row(principal, summarize(case, contact_paused=paused,
                                               indicators=indicators),
                          escalated=case.escalated_at is not None, now=utcnow())
    return render(
        request, "case.html", lang=principal.lang, principal=principal, case=row,
        is_open=case.status != "closed", held=holds(principal, case),
        outcome=labels.of("outcome", case.outcome), messages=labels.messages(thread),
        count=len(thread), notes=labels.notes(notes, ctx.content),
        services=labels.services(ctx.content), outcomes=actions.OUTCOMES,
        canned=replies, case_language=case.language, handlers=handlers,
        max_reply=MAX_REPLY_CHARS,
        can_reopen=case.status == "closed" and case.user_id is not None
        and (principal.supervises or case.closed_by == principal.name),
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


@dataclass
class _Seen:
    """What a case stream has already sent: the message count, the status and holder."""

    n: int
    state: tuple[str, str]


@console_route(handles_cases, poll=True)
async def case_events(request: web.Request, principal: Principal) -> web.StreamResponse:
    """A case as a stream: its new messages (audited when there are any), status, holder."""
    ctx = context_of(request)
    case_id = case_id_of(request)
    known = request.query.get("n", "0")
    seen = _Seen(int(known) if known.isdigit() and len(known) < 9 else 0,
                 (request.query.get("status", ""), request.query.get("assignee", "")))
    async with ctx.store.session() as db:  # refused before the stream starts, not inside it
        if not can_see(principal, await actions.get_case(db, case_id)):
            raise Forbidden(case_id)

    async def update() -> tuple[str, dict[str, object]] | None:
        current = await _still_signed_in(request)
        async with ctx.store.session() as db:
            case, count, fresh = await new_messages(db, ctx.cipher, current, case_id, seen.n)
        state = (case.status, case.assignee or "")
        if count == seen.n and state == seen.state:
            return None
        payload: dict[str, object] = {"n": count, "status": case.status,
                                      "assignee": case.assignee or "", "reset": count < seen.n}
        seen.n, seen.state = count, state
        if fresh:
            payload["html"] = render(
                request, "_messages.html", lang=current.lang, principal=current,
                messages=labels_for(request, current.lang).messages(fresh),
            ).text
        return "case", payload

    def wanted(change: live.Change) -> bool:
        return change.case_id in (None, case_id)

    return await live.stream(request, _stream_headers(request), update, wanted)


@console_route(handles_cases)
async def claim(request: web.Request, principal: Principal) -> web.StreamResponse:
    case_id = case_id_of(request)
    async with context_of(request).store.session() as db:
        won = await actions.claim(db, case_id, principal.name)
        audit.record(db, principal.name, "case.claim" if won else "case.claim_lost", case_id)
    if not won:
        return await done(request, "/console/queue", "taken", None)
    return await done(request, case_url(case_id), "claimed", case_id)


@console_route(handles_cases)
async def reply(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = case_id_of(request)
    form = await form_fields(request)
    text = form.get("text", "").strip()
    async with ctx.store.session() as db:
        case = await case_for(db, principal, case_id, "case.reply")
        if not text and form.get("canned"):
            text = await canned.text_of(db, ctx.canned, form["canned"], case.language,
                                        ctx.content) or ""
        try:  # service details typed or picked: filled, never sent raw
            text = placeholders.fill(ctx.content, text, case.language)
        except placeholders.PlaceholderError:
            raise redirect(case_url(case_id), "reply_placeholder") from None
        if not text or len(text) > MAX_REPLY_CHARS:
            raise actions.InvalidInput("reply text")
        if not holds(principal, case):
            raise redirect(case_url(case_id), "claim_first")
        try:
            await relay.reply(db, cipher=ctx.cipher, ui=ctx.ui, case_id=case_id,
                              author=principal.name, text=text)
        except relay.CaseNotOpen:
            raise actions.CaseConflict("not open") from None
    return await done(request, case_url(case_id), "sent", case_id)


@console_route(handles_cases)
async def add_note(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = case_id_of(request)
    async with ctx.store.session() as db:
        await _held_or_supervised(db, principal, case_id, "case.note")
        await actions.add_note(db, ctx.cipher, case_id, principal.name,
                               (await form_fields(request)).get("text", ""))
    return await done(request, case_url(case_id), "noted", case_id)


@console_route(handles_cases)
async def refer(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    case_id = case_id_of(request)
    form = await form_fields(request)
    async with ctx.store.session() as db:
        await _held_or_supervised(db, principal, case_id, "case.refer")
        await actions.refer(db, ctx.cipher, ctx.content, case_id, principal.name,
                            form.get("service", ""), form.get("text", ""))
    return await done(request, case_url(case_id), "referred", case_id)


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
    return await done(request, "/console/queue", "transferred", case_id)


@console_route(handles_cases)
async def close(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Closing takes an outcome (no default) and a confirmation: a post without
    ``confirm=yes`` closes nothing. A form gets a page asking to confirm (without
    JavaScript); ``fetch`` gets ``{"ok": false, "confirm": true}`` (console.js asks first)."""
    case_id = case_id_of(request)
    form = await form_fields(request)
    outcome = form.get("outcome", "")
    if outcome not in actions.OUTCOMES:
        raise actions.InvalidInput("outcome")
    if form.get("confirm") != "yes":
        return await _confirm_close(request, principal, case_id, outcome)
    async with context_of(request).store.session() as db:
        await case_for(db, principal, case_id, "case.close")
        await actions.close(db, case_id, principal.name, outcome,
                            any_holder=principal.supervises)
    return await done(request, "/console/queue", "closed", case_id)


async def _confirm_close(request: web.Request, principal: Principal, case_id: int,
                         outcome: str) -> web.StreamResponse:
    async with context_of(request).store.session() as db:
        case = await case_for(db, principal, case_id, "case.close_asked")
    if case.status == "closed":
        raise actions.CaseConflict("not open")
    if not (holds(principal, case) or principal.supervises):
        raise redirect(case_url(case_id), "claim_first")
    if "application/json" in request.headers.get("Accept", ""):
        return json_response({"ok": False, "confirm": True})
    labels = labels_for(request, principal.lang)
    return render(request, "close_confirm.html", lang=principal.lang, principal=principal,
                  case_id=case_id, alias=case.alias, outcome=outcome,
                  outcome_label=labels.of("outcome", outcome))


def anyone(principal: Principal) -> bool:
    return True


@console_route(anyone)
async def keepalive(request: web.Request, principal: Principal) -> web.StreamResponse:
    """The page pings this while the person types or clicks (never on a timer), so working
    in one page for an hour keeps the session; a walked-away screen still logs out."""
    return web.Response(status=204)


@console_route(handles_cases)
async def reopen(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Supervisors, or whoever closed it (``actions.reopen`` has the rules and the refusals)."""
    case_id = case_id_of(request)
    async with context_of(request).store.session() as db:
        await case_for(db, principal, case_id, "case.reopen")
        await actions.reopen(db, case_id, principal.name, any_closer=principal.supervises)
    return await done(request, case_url(case_id), "reopened", case_id)


async def _held_or_supervised(db: AsyncSession, principal: Principal, case_id: int,
                              action: str) -> None:
    case = await case_for(db, principal, case_id, action)
    if not (holds(principal, case) or principal.supervises):
        raise redirect(case_url(case_id), "claim_first")


def add_routes(router: web.UrlDispatcher) -> None:
    console_canned.add_routes(router)  # the replies this page offers, managed by supervisors
    router.add_get("/console/queue", queue_page)
    router.add_post("/console/session/keepalive", keepalive)
    router.add_get("/console/queue/poll", queue_poll)
    router.add_get("/console/queue/events", queue_events)
    router.add_post("/console/queue/claim-next", claim_next)
    router.add_get(CASE, case_page)
    router.add_get(CASE + "/poll", case_poll)
    router.add_get(CASE + "/events", case_events)
    for action, handler in (("claim", claim), ("reply", reply), ("notes", add_note),
                            ("refer", refer), ("transfer", transfer), ("close", close),
                            ("reopen", reopen)):
        router.add_post(f"{CASE}/{action}", handler)
