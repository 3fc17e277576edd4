"""Mount the back office on the web app: ``setup(app, sanad)`` adds the caseworker console
(``/console``), its static files, the JSON API (``/api``) and their security middleware."""

from __future__ import annotations

from aiohttp import web

from bot.app import Sanad
from handoff import (
    api,
    console,
    console_admin,
    console_campaigns,
    console_content,
    console_dashboard,
    console_login,
    live,
)
from handoff.auth import AuthPolicy, Passwords
from handoff.clients import TrustedProxies
from handoff.context import HANDOFF, HandoffContext
from handoff.guard import security_headers
from handoff.indicators import console as indicators_console
from handoff.referrals import web as referrals_web
from handoff.render import build_templates
from handoff.texts import HERE, ConsoleText, load_canned_replies


def setup(app: web.Application, sanad: Sanad, *, policy: AuthPolicy | None = None,
          passwords: Passwords | None = None, watch_seconds: float = live.WATCH_SECONDS,
          heartbeat: float = live.HEARTBEAT_SECONDS) -> None:
    """Call before the app starts. ``policy``/``passwords`` let tests shorten timeouts;
    ``watch_seconds``/``heartbeat`` pace the live updates (:mod:`handoff.live`)."""
    texts = ConsoleText.load()
    problems = texts.problems()
    if problems:
        raise ValueError("handoff/console_text.yml: " + "; ".join(problems))
    app[HANDOFF] = HandoffContext(
        sanad=sanad, texts=texts, canned=load_canned_replies(),
        passwords=passwords or Passwords(), policy=policy or AuthPolicy(),
        templates=build_templates(),
        proxies=TrustedProxies.parse(sanad.settings.trusted_proxies),
    )
    live.setup(app, sanad.store, sanad.settings.database_url, watch_seconds=watch_seconds,
               heartbeat=heartbeat)
    app.middlewares.append(security_headers)
    for module in (console_login, console, console_admin, console_dashboard, console_campaigns,
                   api):
        module.add_routes(app.router)
    console_content.add_routes(app.router)
    indicators_console.add_routes(app.router)
    referrals_web.setup(app, sanad.content)
    app.cleanup_ctx.append(console_content.refresh_approvals)
    app.router.add_static("/console/static", HERE / "static", show_index=False)
