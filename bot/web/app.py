"""The aiohttp application of ``sanad serve``: health, metrics, the parse API and channels."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable

import orjson
from aiohttp import web

from bot.app import Sanad
from bot.channels.webchat import WebChatChannel
from bot.channels.whatsapp import WhatsAppChannel
from bot.flood import FloodGuard, Verdict
from bot.logs import request_scope
from bot.metrics import CONTENT_TYPE, Metrics, database_gauges
from bot.store.db import DatabaseUnavailable, describe_error
from bot.web.keys import BODY_LIMITS as BODY_LIMITS
from bot.web.keys import METRICS as METRICS
from handoff.web import setup as setup_back_office

log = logging.getLogger(__name__)

SANAD = web.AppKey("sanad", Sanad)
PARSE_LIMIT = web.AppKey("parse_limit", FloodGuard)
BODY_TIMEOUT = web.AppKey("body_timeout", float)
PARSE_RATE, PARSE_BURST = 5.0, 20
"""Parse API requests per second per client address, and the burst allowed."""
MAX_BODY_BYTES = 256 * 1024
HEAD_TIMEOUT_S = 15.0
"""A connection must deliver a request's line and headers within this long of opening (or of
the previous response): slow-loris connections that trickle headers are closed."""
BODY_TIMEOUT_S = 20.0
"""A request body (at most ``MAX_BODY_BYTES``) must arrive within this long: 408 and close."""


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
    extra = []
    try:
        extra.append(await database_gauges(request.app[SANAD].store.engine))
    except Exception as exc:  # the counters are still worth a scrape when the database is down
        log.warning("metrics: database gauges unavailable (%s)", describe_error(exc))
        request.app[METRICS].inc("sanad_errors_total", ERRORS_HELP, kind="metrics_database")
    body = request.app[METRICS].render(*extra)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


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


ERRORS_HELP = "Failures by kind (exception class or a fixed label)"
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
TIMED_ROUTES = ("/telegram/webhook", "/whatsapp/webhook", "/chat/api/turn", "/model/parse")
"""Routes whose latency is measured: for the webhooks and the web chat, a message in to its
reply sent (the fast path sends inside the request)."""


@web.middleware
async def body_timeout_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Read the whole body first, within ``BODY_TIMEOUT_S`` (aiohttp keeps it for the handler's
    own ``read()``/``post()``): a client sending a byte a second holds no handler for ever."""
    # A multipart body stays unread: aiohttp's post() streams it and cannot re-parse a body
    # already read (no route of ours takes multipart; the handler answers it as it would).
    if request.body_exists and not request.content_type.startswith("multipart/"):
        limit = request.app[BODY_LIMITS].get(request.path)
        if limit is not None:
            request = request.clone(client_max_size=limit)
        try:
            async with asyncio.timeout(request.app[BODY_TIMEOUT]):
                await request.read()
        except TimeoutError:
            log.warning("web: request body not received within %.0f s; connection closed",
                        request.app[BODY_TIMEOUT])
            response = web.Response(status=408, text="request body too slow")
            response.force_close()
            return response
    return await handler(request)


@web.middleware
async def request_id_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every request gets an id (a proxy's well-formed ``X-Request-Id``, else a new one) that
    every log record of the request and of the turn it runs carries (``bot.logs``), and that
    the response returns; webhook latency goes into ``sanad_request_seconds``."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    with request_scope(given if _SAFE_REQUEST_ID.fullmatch(given) else None) as request_id:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        finally:
            route = request.match_info.route.resource
            path = route.canonical if route is not None else ""
            if path in TIMED_ROUTES:
                request.app[METRICS].observe(
                    "sanad_request_seconds", time.perf_counter() - started,
                    "Seconds from a webhook (or parse) request in to its answer, by route",
                    route=path, status=f"{status // 100}xx")
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bad client input is a 4xx with a reason; an unexpected failure is logged without data
    and counted by kind (``sanad_errors_total``)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except DatabaseUnavailable as exc:
        log.warning("database unavailable on %s %s (%s)", request.method,
                    _route_of(request), exc.reason)
        request.app[METRICS].inc("sanad_errors_total", ERRORS_HELP, kind="database_unavailable")
        return json_response({"error": "database unavailable, try again later"}, 503)
    except Exception as exc:
        log.exception("unhandled error on %s %s", request.method, _route_of(request))
        request.app[METRICS].inc("sanad_errors_total", ERRORS_HELP, kind=type(exc).__name__)
        return json_response({"error": "internal error"}, 500)


def _route_of(request: web.Request) -> str:
    """The route pattern (``/api/cases/{id}``), not the path: paths may carry ids."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


Mount = Callable[[web.Application], None]
"""A channel's hook: adds its routes (webhooks) and its start/stop to the app."""


def configured_channels(sanad: Sanad, *, telegram_polling: bool = False) -> list[Mount]:
    """The channels the settings enable (python-telegram-bot is imported only for Telegram)."""
    mounts: list[Mount] = []
    if sanad.settings.telegram_bot_token:
        from bot.channels.telegram import TelegramChannel

        mounts.append(TelegramChannel(sanad, polling=telegram_polling).mount)
    if sanad.settings.whatsapp_token:
        mounts.append(WhatsAppChannel(sanad).mount)
    if sanad.settings.web_chat:
        mounts.append(WebChatChannel(sanad).mount)
    return mounts


def create_app(sanad: Sanad, metrics_registry: Metrics | None = None, *,
               channels: Iterable[Mount] | None = None,
               back_office: bool = True, head_timeout: float = HEAD_TIMEOUT_S,
               body_timeout: float = BODY_TIMEOUT_S) -> web.Application:
    """The web app; ``channels`` defaults to :func:`configured_channels`; ``back_office``
    mounts the caseworker console and the case API (tests may mount them themselves).
    ``head_timeout``/``body_timeout``: read time-outs (tests shorten them)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[body_timeout_middleware, request_id_middleware,
                                       errors_middleware],
                          handler_args={"keepalive_timeout": head_timeout})
    app[BODY_TIMEOUT] = body_timeout
    app[BODY_LIMITS] = {}
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
        setup_back_office(app, sanad)
    return app
