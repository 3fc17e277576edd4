"""The content review pages: ``/console/content`` (every module, the screening questionnaire
and the services directory, per language, approved / changed since approval / never
approved) and ``/console/content/{kind}/{id}/{lang}`` (the item as users would read it, its
sources as links, a line diff against the last approved version, and the Approve / Request
changes form).

Only a reviewer (the ``reviewer`` role or an account granted the capability) reaches them.
A decision is written in one transaction with its audit row, then the running library is
refreshed so production serves the approved version at once (other processes pick it up
within ``SANAD_CONTENT_REFRESH_SECONDS``). The rule of what production serves is in
``bot.content.gate`` and docs/content-review.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml
from aiohttp import web

from bot.content import LANGUAGES
from bot.content.review import KINDS, Approvals, Item, ItemStatus, reviewable, statuses
from bot.content.review_store import ReviewError, decide, is_granted, load_approvals, refresh
from bot.store.repository import utcnow
from handoff import audit
from handoff.context import HANDOFF, context_of
from handoff.guard import console_route, form_fields
from handoff.policy import Principal
from handoff.render import redirect, render, render_error

log = logging.getLogger(__name__)

PAGE = "/console/content"
REFRESH_ENV = "SANAD_CONTENT_REFRESH_SECONDS"
DEFAULT_REFRESH_SECONDS = 30.0


def anyone(principal: Principal) -> bool:
    """The guard's role rule; the review capability needs the database (``_reviewer``)."""
    return True


async def _reviewer(request: web.Request, principal: Principal) -> Principal | None:
    """The principal with ``can_review`` filled in, or None if they may not review."""
    if principal.reviews_content:
        return principal
    async with context_of(request).store.session() as db:
        granted = await is_granted(db, principal.id)
    return replace(principal, can_review=True) if granted else None


def _items(request: web.Request) -> list[Item]:
    return context_of(request).content.review_items()


@dataclass(frozen=True)
class Row:
    """One item (a module, the questionnaire, the directory) with a status per language."""

    kind: str
    item_id: str
    title: str
    cells: tuple[ItemStatus | None, ...]  # in LANGUAGES order


def _title(item: Item) -> str:
    data = item.data if isinstance(item.data, Mapping) else {}
    title = data.get("title")
    return str(title) if isinstance(title, str) else item.item_id


def _rows(found: list[ItemStatus], console_lang: str) -> list[Row]:
    """Items grouped with a cell per language; a module is named by its title in the
    console's language (else English)."""
    grouped: dict[tuple[str, str], dict[str, ItemStatus]] = {}
    for status in found:
        grouped.setdefault((status.item.kind, status.item.item_id), {})[status.item.lang] = status
    rows: list[Row] = []
    for (kind, item_id), by_lang in grouped.items():
        named = by_lang.get(console_lang) or by_lang.get("en") or next(iter(by_lang.values()))
        rows.append(Row(kind, item_id, _title(named.item) if kind == "module" else item_id,
                        tuple(by_lang.get(lang) for lang in LANGUAGES)))
    rows.sort(key=lambda r: (KINDS.index(r.kind), r.item_id))
    return rows


async def content_list(request: web.Request, principal: Principal) -> web.StreamResponse:
    reviewer = await _reviewer(request, principal)
    if reviewer is None:
        return render_error(request, principal, 403)
    ctx = context_of(request)
    async with ctx.store.session() as db:
        approvals = await load_approvals(db)
        audit.record(db, reviewer.name, "content.list")
    found = statuses(_items(request), approvals)
    served = ctx.content.served
    return render(request, "content.html", lang=reviewer.lang, principal=reviewer,
                  rows=_rows(found, reviewer.lang), languages=LANGUAGES, gated=ctx.content.gated,
                  hidden=served.hidden if served else (), frozen=served.frozen if served else ())


# --- one item ------------------------------------------------------------------------------
def _dump(data: Any) -> list[str]:
    if data is None:
        return []
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    return text.splitlines()


@dataclass(frozen=True)
class DiffLine:
    cls: str  # add | del | hunk | same
    text: str


def line_diff(kind: str, lang: str, approved: Any, current: Any) -> list[DiffLine]:
    """A unified line diff of what the reviewer approves (``reviewable``), old to new."""
    old = _dump(reviewable(kind, approved, lang)) if approved is not None else []
    new = _dump(reviewable(kind, current, lang))
    lines: list[DiffLine] = []
    for line in difflib.unified_diff(old, new, "approved", "now", n=3, lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        cls = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        lines.append(DiffLine(cls, line))
    return lines


def _find(request: web.Request) -> Item | None:
    kind = request.match_info["kind"]
    item_id = request.match_info["item_id"]
    lang = request.match_info["lang"]
    return next((i for i in _items(request)
                 if i.kind == kind and i.item_id == item_id and i.lang == lang), None)


def _text(value: Any, lang: str) -> str:
    """A field that is either text or a ``{ar, en, fr}`` mapping, in ``lang``."""
    if isinstance(value, Mapping):
        value = value.get(lang)
    return "" if value is None else str(value)


async def content_item(request: web.Request, principal: Principal) -> web.StreamResponse:
    reviewer = await _reviewer(request, principal)
    if reviewer is None:
        return render_error(request, principal, 403)
    item = _find(request)
    if item is None:
        return render_error(request, reviewer, 404)
    ctx = context_of(request)
    async with ctx.store.session() as db:
        approvals: Approvals = await load_approvals(db)
        audit.record(db, reviewer.name, "content.view", detail=_detail(item))
    (status,) = statuses([item], approvals)
    last = status.last
    return render(
        request, "content_item.html", lang=reviewer.lang, principal=reviewer, item=item,
        state=status, data=item.data, text=_text, lang_of_item=item.lang,
        diff=line_diff(item.kind, item.lang, last.snapshot if last else None, item.data),
        history=approvals.history(item.key)[:20], comment_max=2000,
    )


def _detail(item: Item) -> str:
    return f"{item.kind}:{item.item_id}:{item.lang}"[:64]


async def content_decide(request: web.Request, principal: Principal) -> web.StreamResponse:
    reviewer = await _reviewer(request, principal)
    if reviewer is None:
        return render_error(request, principal, 403)
    item = _find(request)
    if item is None:
        return render_error(request, reviewer, 404)
    form = await form_fields(request)
    decision = form.get("decision", "")
    here = f"{PAGE}/{item.kind}/{item.item_id}/{item.lang}"
    ctx = context_of(request)
    try:
        async with ctx.store.session() as db:
            await decide(db, item, decision=decision, reviewer=reviewer.name,
                         comment=form.get("comment", ""), at=utcnow(),
                         expected_digest=form.get("digest") or None)
            action = "content.approve" if decision == "approved" else "content.changes"
            audit.record(db, reviewer.name, action, detail=_detail(item))
    except ReviewError as exc:
        notice = "content_changed" if "changed" in str(exc) else "content_invalid"
        raise redirect(here, notice) from None
    async with ctx.store.session() as db:
        await refresh(ctx.content, db)
    raise redirect(here, "content_approved" if decision == "approved" else "content_changes")


# --- keeping other processes up to date ----------------------------------------------------
def refresh_seconds(env: Mapping[str, str] | None = None) -> float:
    raw = (os.environ if env is None else env).get(REFRESH_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_REFRESH_SECONDS
    except ValueError:
        return DEFAULT_REFRESH_SECONDS
    return value if value > 0 else DEFAULT_REFRESH_SECONDS


async def _refresh_forever(app: web.Application, every: float) -> None:
    ctx = app[HANDOFF]
    while True:
        await asyncio.sleep(every)
        try:
            async with ctx.store.session() as db:
                await refresh(ctx.content, db)
        except Exception:  # a database outage must not end the loop; the old view stays
            log.warning("content review: could not refresh approvals", exc_info=True)


async def refresh_approvals(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: re-read approvals now and every ``SANAD_CONTENT_REFRESH_SECONDS``, so
    an approval given on another ``sanad serve`` process reaches this one too."""
    ctx = app[HANDOFF]
    if not ctx.content.gated:
        yield
        return
    task = asyncio.create_task(_refresh_forever(app, refresh_seconds()))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def add_routes(router: web.UrlDispatcher) -> None:
    guarded = console_route(anyone)
    router.add_get(PAGE, guarded(content_list))
    router.add_get(PAGE + "/{kind}/{item_id}/{lang}", guarded(content_item))
    router.add_post(PAGE + "/{kind}/{item_id}/{lang}", guarded(content_decide))
