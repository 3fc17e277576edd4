"""Server-side rendering of console pages with Jinja2 (autoescape on for every template)."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from handoff.context import context_of
from handoff.policy import Principal
from handoff.texts import CONSOLE_LANGUAGES, HERE, RTL_LANGUAGES
from handoff.views import Labels


def build_templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )


def labels_for(request: web.Request, lang: str) -> Labels:
    return Labels(context_of(request).texts, lang)


def render(request: web.Request, template: str, *, lang: str, principal: Principal | None,
           status: int = 200, **values: Any) -> web.Response:
    """A full page (or a fragment for live updates) in ``lang``; right to left for Arabic."""
    labels = labels_for(request, lang)
    notice = request.query.get("notice", "")
    known = f"notice.{notice}" in context_of(request).texts.texts.get(lang, {})
    page: dict[str, Any] = {
        "lang": lang, "dir": "rtl" if lang in RTL_LANGUAGES else "ltr", "L": labels,
        "languages": CONSOLE_LANGUAGES,
        "t": labels.t, "principal": principal,
        "csrf": principal.csrf_token if principal else "", "path": request.path,
        "notice": labels.t(f"notice.{notice}") if known else None,
    }
    page.update(values)
    html = context_of(request).templates.get_template(template).render(page)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def render_error(request: web.Request, principal: Principal | None, status: int) -> web.Response:
    key = {403: "forbidden", 404: "not_found"}.get(status, "forbidden")
    lang = principal.lang if principal else "ar"
    return render(request, "error.html", lang=lang, principal=principal, status=status,
                  title_key=f"errors.{key}_title", message_key=f"errors.{key}")


def _target(location: str, notice: str | None) -> str:
    return location + (f"?notice={notice}" if notice else "")


def redirect(location: str, notice: str | None = None) -> web.HTTPSeeOther:
    """Post/redirect/get (raise it); ``notice`` is a fixed key shown once on the next page."""
    return web.HTTPSeeOther(_target(location, notice))


def see_other(location: str, notice: str | None = None) -> web.Response:
    """The same redirect as a plain response, for when it must carry cookies."""
    return web.Response(status=303, headers={"Location": _target(location, notice)})
