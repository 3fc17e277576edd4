"""The audit viewer (supervisors): who read or did what, filtered by member of staff, case and
action, newest first, a page at a time. Looking is itself recorded (``audit.view``).

The chain is checked by ``sanad audit verify`` (:func:`handoff.audit.verify`), not here: a
check walks the whole log, which is a job for an operator, not for every page view.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from handoff import audit
from handoff.context import context_of
from handoff.guard import console_route
from handoff.models import AuditEntry
from handoff.policy import Principal
from handoff.render import labels_for, render

PAGE = 100
MAX_FILTER = 64


def supervises(principal: Principal) -> bool:
    return principal.supervises


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) <= 18 else None


@console_route(supervises)
async def audit_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    staff = request.query.get("staff", "").strip()[:MAX_FILTER]
    action = request.query.get("action", "").strip()[:32]
    case_id = _int(request.query.get("case"))
    before = _int(request.query.get("before"))
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(PAGE + 1)
    if staff:
        query = query.where(AuditEntry.actor == staff)
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if case_id is not None:
        query = query.where(AuditEntry.case_id == case_id)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    labels = labels_for(request, principal.lang)
    async with context_of(request).store.session() as db:
        found = list(await db.scalars(query))
        audit.record(db, principal.name, "audit.view", case_id,
                     detail=(staff or action or None) and f"{staff}|{action}"[:64])
    more = len(found) > PAGE
    rows = [{"seq": r.seq, "at": labels.clock(r.at), "actor": r.actor, "action": r.action,
             "case_id": r.case_id, "detail": r.detail, "client": r.client, "reason": r.reason}
            for r in found[:PAGE]]
    return render(request, "audit.html", lang=principal.lang, principal=principal, rows=rows,
                  staff=staff, action=action, case=case_id or "",
                  next_before=found[PAGE - 1].id if more else None)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/audit", audit_page)
