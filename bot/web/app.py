"""The aiohttp application of ``sanad serve``: health, metrics, the parse API and channels."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable

import orjson
from aiohttp import web

from bot.app import Sanad
from bot.flood import FloodGuard, Verdict
from bot.metrics import Metrics

log = logging.getLogger(__name__)

SANAD = web.AppKey("sanad", Sanad)
METRICS = web.AppKey("metrics", Metrics)
PARSE_LIMIT = web.AppKey("parse_limit", FloodGuard)
PARSE_RATE, PARSE_BURST = 5.0, 20
"""Parse API requests per second per client address, and the burst allowed."""
MAX_BODY_BYTES = 256 * 1024


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ok = await request.app[SANAD].store.ping()
    return json_response({"status": "ok" if ok else "database unavailable"}, 200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text; with ``SANAD_METRICS_TOKEN`` set, only for ``Bearer <token>``."""
    token = request.app[SANAD].settings.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return json_response({"error": "a metrics token is required"}, 401)
    return web.Response(text=request.app[METRICS].render(), content_type="text/plain")


async def model_parse(request: web.Request) -> web.Response:
    """Rasa-compatible ``POST /model/parse``: ``{"text": ...}`` in, a parse result out."""
    verdict = await request.app[PARSE_LIMIT].admit(request.remote or "unknown")
    if verdict is not Verdict.PROCESS:
        return json_response({"error": "too many requests"}, 429)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return json_response({"error": "body must be JSON"}, 400)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return json_response({"error": 'expected {"text": "..."}'}, 400)
    result = await request.app[SANAD].nlu.parse(text)
    request.app[METRICS].inc("sanad_parse_requests_total", "Parse API requests")
    return json_response(result.to_dict())


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bad client input is a 4xx with a reason; an unexpected failure is logged without data."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response({"error": "internal error"}, 500)


Mount = Callable[[web.Application], None]
"""A channel's hook: adds its routes (webhooks) and its start/stop to the app."""


def configured_channels(sanad: Sanad, *, telegram_polling: bool = False) -> list[Mount]:
    """The channels the settings enable, each imported only when enabled."""
    mounts: list[Mount] = []
    if sanad.settings.telegram_bot_token:
        from bot.channels.telegram import TelegramChannel

        mounts.append(TelegramChannel(sanad, polling=telegram_polling).mount)
    if sanad.settings.whatsapp_token:
        from bot.channels.whatsapp import WhatsAppChannel

        mounts.append(WhatsAppChannel(sanad).mount)
    return mounts


def create_app(sanad: Sanad, metrics_registry: Metrics | None = None, *,
               channels: Iterable[Mount] | None = None,
               back_office: bool = True) -> web.Application:
    """The web app; ``channels`` defaults to :func:`configured_channels`; ``back_office``
    mounts the caseworker console and the case API (tests may mount them themselves)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[errors_middleware])
    app[SANAD] = sanad
    app[METRICS] = metrics_registry or Metrics()
    app[PARSE_LIMIT] = FloodGuard(rate=PARSE_RATE, burst=PARSE_BURST, max_wait=0.0)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    settings = sanad.settings
    if settings.metrics_token or settings.environment != "production":
        app.router.add_get("/metrics", metrics)
    if settings.parse_api:
        app.router.add_post("/model/parse", model_parse)
    for mount in configured_channels(sanad) if channels is None else channels:
        mount(app)
    if back_office:
        from handoff.web import setup as setup_back_office

        setup_back_office(app, sanad)
    return app
