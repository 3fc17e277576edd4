"""The supervisors' page for canned replies: add a reply (or a reply's text in another
language), edit, retire and restore one language's text. Every change is audited as
``canned.<action>`` with ``key/language`` as its detail (never the wording)."""

from __future__ import annotations

from aiohttp import web

from handoff import audit, canned, placeholders
from handoff.context import context_of
from handoff.guard import Handler, console_route, form_fields
from handoff.models import CannedReplyText
from handoff.policy import Principal
from handoff.render import labels_for, redirect, render
from handoff.texts import REPLY_LANGUAGES

PAGE = "/console/canned"
TEXT = PAGE + r"/{text_id:\d{1,18}}"


def supervises(principal: Principal) -> bool:
    return principal.supervises


@console_route(supervises)
async def canned_page(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _page(request, principal)


async def _page(request: web.Request, principal: Principal, *, status: int = 200,
                error: str | None = None, draft: dict[str, str] | None = None) -> web.Response:
    """The page, or (``status`` 422) the page again with why a change was refused and the
    refused fields kept in the add form (``draft``)."""
    ctx = context_of(request)
    labels = labels_for(request, principal.lang)
    async with ctx.store.session() as db:
        rows = await canned.every_text(db, ctx.canned)
        texts = [{"id": r.id, "key": r.key, "language": r.language,
                  "language_label": labels.of("language", r.language), "title": r.title,
                  "text": r.text, "retired": r.retired_at is not None,
                  "updated": labels.t("canned.updated", name=r.updated_by,
                                      at=labels.clock(r.updated_at))} for r in rows]
    return render(request, "canned.html", lang=principal.lang, principal=principal,
                  status=status, texts=texts, languages=REPLY_LANGUAGES,
                  max_title=canned.MAX_TITLE, max_text=canned.MAX_TEXT, error=error,
                  draft=draft or {}, services=placeholders.usable(ctx.content),
                  example=EXAMPLE, fields=", ".join(placeholders.FIELDS))


EXAMPLE = "{service:ID.phone}"


def _refused(request: web.Request, principal: Principal,
             bad: placeholders.PlaceholderError) -> str:
    """Why a text cannot be saved, naming the placeholder, in the console's language."""
    labels = labels_for(request, principal.lang)
    return labels.t("canned.placeholder_bad", placeholder=bad.placeholder,
                    reason=labels.t(f"canned.placeholder_{bad.reason}", example=EXAMPLE,
                                    fields=", ".join(placeholders.FIELDS)))


def _check(request: web.Request, text: str, language: str) -> None:
    """Refuse a text whose service placeholders would not fill in its language."""
    if language in REPLY_LANGUAGES:
        placeholders.fill(context_of(request).content, text, language)


@console_route(supervises)
async def add(request: web.Request, principal: Principal) -> web.StreamResponse:
    ctx = context_of(request)
    form = await form_fields(request)
    try:
        _check(request, form.get("text", ""), form.get("language", ""))
        async with ctx.store.session() as db:
            row = await canned.add(db, ctx.canned, key=form.get("key", ""),
                                   language=form.get("language", ""),
                                   title=form.get("title", ""), text=form.get("text", ""),
                                   by=principal.name)
            audit.record(db, principal.name, "canned.add", detail=f"{row.key}/{row.language}")
    except placeholders.PlaceholderError as bad:
        return await _page(request, principal, status=422, draft=form,
                           error=_refused(request, principal, bad))
    except canned.CannedInvalid:
        raise redirect(PAGE, "canned_invalid") from None
    except canned.CannedConflict:
        raise redirect(PAGE, "canned_exists") from None
    raise redirect(PAGE, "canned_added")


async def _change(request: web.Request, principal: Principal, action: str) -> None:
    form = await form_fields(request)
    text_id = int(request.match_info["text_id"])
    async with context_of(request).store.session() as db:
        if action == "edit":
            known = await db.get(CannedReplyText, text_id)
            _check(request, form.get("text", ""), known.language if known else "")
            row = await canned.edit(db, text_id, title=form.get("title", ""),
                                    text=form.get("text", ""), by=principal.name)
        else:
            row = await canned.retire(db, text_id, by=principal.name,
                                      retired=action == "retire")
        audit.record(db, principal.name, f"canned.{action}",
                     detail=f"{row.key}/{row.language}")


NOTICES = {"edit": "canned_saved", "retire": "canned_retired", "restore": "canned_restored"}


def _changer(action: str) -> Handler:
    @console_route(supervises)
    async def handler(request: web.Request, principal: Principal) -> web.StreamResponse:
        try:
            await _change(request, principal, action)
        except placeholders.PlaceholderError as bad:
            draft = dict(await form_fields(request), text_id=request.match_info["text_id"])
            return await _page(request, principal, status=422, draft=draft,
                               error=_refused(request, principal, bad))
        except canned.CannedInvalid:
            raise redirect(PAGE, "canned_invalid") from None
        except canned.CannedConflict:
            raise web.HTTPNotFound() from None
        raise redirect(PAGE, NOTICES[action])

    return handler


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PAGE, canned_page)
    router.add_post(PAGE, add)
    for action in NOTICES:
        router.add_post(f"{TEXT}/{action}", _changer(action))
