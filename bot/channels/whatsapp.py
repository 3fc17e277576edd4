"""The WhatsApp Cloud API channel: webhook in, the engine's turn out, nothing lost.

``GET /whatsapp/webhook`` answers Meta's verification handshake. ``POST /whatsapp/webhook``
checks ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app secret) before reading
anything, then processes every message of the payload *before* answering:

* 200 once each message was answered, skipped as junk or found to be a duplicate (the engine
  de-duplicates on ``wa:<keyed hash of the wamid>`` in the database);
* 503 when the database is down: nothing of that user's message was stored or sent, and Meta
  delivers the payload again (messages already processed are then duplicates);
* 400 for a body that is not JSON, 401 for a missing, malformed or wrong signature.

A user's messages are processed one at a time, in payload order (one lock per user around the
turn and its sending); different users proceed concurrently. Answers that Meta cannot take right
now (rate limits, outages) go to the outbox instead of being dropped. Messages outside a turn
(a caseworker's reply) go through :class:`WhatsAppOutbox`, which respects the 24-hour window.

WhatsApp cannot delete messages, so a quick exit sends only the engine's neutral cover line; the
outbox holds anything else for the user (no notice either) until they write again. Nothing here
logs message text or a phone number; ``wamid``s (which embed the number) are stored only as
keyed hashes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from bot.channels.lifecycle import bind_to_app
from bot.channels.whatsapp_api import GraphClient, GraphError, SendPolicy
from bot.channels.whatsapp_errors import Disposition, classify
from bot.channels.whatsapp_outbox import WhatsAppOutbox
from bot.channels.whatsapp_payload import (
    IncomingMessage,
    Notifications,
    StatusUpdate,
    read_notifications,
)
from bot.channels.whatsapp_send import Messenger
from bot.channels.whatsapp_store import (
    CHANNEL,
    apply_status,
    message_key,
    queue_replies,
    recipient,
    redeliver,
    release_held,
)
from bot.channels.whatsapp_templates import WhatsAppTexts
from bot.channels.whatsapp_window import WindowedDeliverer
from bot.config import ConfigError
from bot.content import ContentError
from bot.messages import Inbound, Outbound, QuickExit, Turn, UserRef
from bot.metrics import Metrics
from bot.outbox import mark_failed, mark_sent
from bot.outbox import release as release_turn
from bot.store.db import DatabaseUnavailable
from bot.store.repository import KeyedLocks

if TYPE_CHECKING:
    from bot.app import Sanad

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/whatsapp/webhook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY_BYTES = 3 * 1024 * 1024
"""Meta batches notifications into bodies of up to 3 MB; refusing one would lose them all."""
_SIGNATURE_PREFIX = "sha256="
FAST_ATTEMPTS = 2
"""Tries per message while Meta waits for the webhook's answer (the outbox retries longer)."""
SEND_BUDGET = 8.0
"""Seconds a turn's answers may take before the rest is left to the outbox sender."""


@dataclass(frozen=True, slots=True)
class Answered:
    """How far a turn's answers got: ``sent`` of them, then ``stopped_by`` (or all of them)."""

    sent: int
    stopped_by: GraphError | None


class WhatsAppChannel:
    """One WhatsApp business number: its Graph client, outbox sender and per-user ordering."""

    def __init__(self, sanad: Sanad, *, policy: SendPolicy | None = None,
                 metrics: Metrics | None = None, deliver_outbox: bool = True,
                 outbox_interval: float = 1.0, send_budget: float = SEND_BUDGET) -> None:
        settings = sanad.settings
        required = {
            "WHATSAPP_TOKEN": settings.whatsapp_token,
            "WHATSAPP_PHONE_NUMBER_ID": settings.whatsapp_phone_number_id,
            "WHATSAPP_APP_SECRET": settings.whatsapp_app_secret,
            "WHATSAPP_VERIFY_TOKEN": settings.whatsapp_verify_token,
        }
        missing = [name for name, value in required.items() if not value]
        if missing:
            raise ConfigError(f"the WhatsApp channel needs {', '.join(missing)}")
        try:
            texts = WhatsAppTexts.load(default_language=settings.default_language)
        except ContentError as exc:
            raise ConfigError(f"content/whatsapp_templates.yml is invalid: {exc}") from None
        self.sanad = sanad
        self.metrics = metrics
        self.phone_number_id = str(settings.whatsapp_phone_number_id)
        self._app_secret = str(settings.whatsapp_app_secret).encode()
        self._verify_token = str(settings.whatsapp_verify_token).encode()
        self.client = GraphClient(settings.whatsapp_api_base_url, self.phone_number_id,
                                  str(settings.whatsapp_token), policy)
        self.messenger = Messenger(self.client, texts)
        self.deliverer = WindowedDeliverer(sanad.store, self.messenger)
        self.outbox = WhatsAppOutbox(sanad.store, self.deliverer)
        self.deliver_outbox = deliver_outbox
        self.outbox_interval = outbox_interval
        self.send_budget = send_budget
        self._users = KeyedLocks()
        self._stop = asyncio.Event()
        self._outbox_task: asyncio.Task[None] | None = None

    # --- wiring into the web app ---------------------------------------------------------
    def mount(self, app: web.Application) -> None:
        """Add the webhook routes and start/stop with the app."""
        if self.metrics is None:
            from bot.web.app import METRICS

            self.metrics = app.get(METRICS)
        app.router.add_get(WEBHOOK_PATH, self.verify)
        app.router.add_post(WEBHOOK_PATH, self.webhook)
        bind_to_app(app, self)

    async def start(self) -> None:
        await self.client.start()
        if self.deliver_outbox:
            self._stop.clear()
            self._outbox_task = asyncio.create_task(
                self.outbox.run(self._stop, interval=self.outbox_interval), name="whatsapp-outbox")
        log.warning("whatsapp channel started")

    async def stop(self) -> None:
        self._stop.set()
        self.outbox.wake()
        if self._outbox_task is not None:
            await asyncio.gather(self._outbox_task, return_exceptions=True)
            self._outbox_task = None
        await self.client.close()

    # --- webhook -------------------------------------------------------------------------
    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription handshake: echo ``hub.challenge`` for the right verify token."""
        query = request.query
        token = query.get("hub.verify_token", "").encode()
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
                token, self._verify_token):
            self._count("webhook", "verify_refused")
            return web.Response(status=403, text="forbidden")
        challenge = query.get("hub.challenge", "")
        if not challenge or len(challenge) > 256:
            return web.Response(status=400, text="missing hub.challenge")
        return web.Response(text=challenge, content_type="text/plain")

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.clone(client_max_size=MAX_BODY_BYTES).read()
        if not signature_ok(body, request.headers.get(SIGNATURE_HEADER), self._app_secret):
            self._count("webhook", "unauthorized")
            return web.Response(status=401, text="unauthorized")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            self._count("webhook", "malformed")
            return web.Response(status=400, text="not a webhook notification")
        status = await self.handle(read_notifications(data, self.phone_number_id))
        self._count("webhook", "ok" if status == 200 else "database_unavailable")
        return web.Response(status=status)

    # --- processing ----------------------------------------------------------------------
    async def handle(self, found: Notifications) -> int:
        """Process one payload; the HTTP status to answer (200, or 503 to have it re-sent)."""
        self._count("messages", "ignored", found.ignored)
        self._count("messages", "malformed", found.malformed)
        for code in found.error_codes:
            log.warning("whatsapp: Meta reported error %s in a notification", code)
        by_user: dict[str, list[IncomingMessage]] = {}
        for message in found.messages:
            by_user.setdefault(message.wa_id, []).append(message)
        results = await asyncio.gather(
            *(self._serve_user(wa_id, queue) for wa_id, queue in by_user.items()),
            self._statuses(found.statuses),
        )
        return 503 if 503 in results else 200

    async def _serve_user(self, wa_id: str, queue: Sequence[IncomingMessage]) -> int:
        user = self.sanad.store.user_ref(CHANNEL, wa_id)
        async with self._users.hold(user.key):
            for message in queue:
                if await self._turn(user, message) != 200:
                    return 503  # later messages of this user wait for Meta's retry, in order
        return 200

    async def _turn(self, user: UserRef, message: IncomingMessage) -> int:
        store = self.sanad.store
        inbound = Inbound(
            user=user, text=message.text, button_id=message.button_id, media=message.media,
            message_id=f"wa:{message_key(store, message.wamid)}", received_at=message.received_at,
        )
        try:
            turn = await self.sanad.engine.handle_turn(inbound, address=message.wa_id)
        except DatabaseUnavailable:
            self._count("messages", "database_unavailable")
            return 503
        except Exception as exc:  # a bug must not cost the other messages of the payload
            log.error("whatsapp turn failed: %s at %s", type(exc).__name__, _where(exc))
            self._count("messages", "failed")
            await self._apologise(message.wa_id)
            return 200
        if turn.duplicate:
            self._count("messages", "duplicate")
            return 200
        await self.messenger.mark_read(message.wamid)
        answered = await self._answer(message.wa_id, user, turn.outbound)
        await self._settle(user, message, turn, answered)
        await self._after_turn(user, quick_exit=any(isinstance(e, QuickExit) for e in turn.events))
        self._count("messages", "processed" if answered.stopped_by is None else "send_failed")
        return 200

    async def _answer(self, wa_id: str, user: UserRef, outbound: Sequence[Outbound]) -> Answered:
        """Send a turn's answers in order, until one cannot go out now. Within a time budget
        and with few retries: Meta waits for our 200, and the outbox sender retries for longer.
        """
        language = await self._language(user)
        current = 0
        try:
            async with asyncio.timeout(self.send_budget):
                for current, item in enumerate(outbound):
                    try:
                        await self.messenger.send(wa_id, item, language, attempts=FAST_ATTEMPTS)
                    except GraphError as exc:
                        self._count_send_error(exc.disposition)
                        if exc.disposition is not Disposition.REJECTED:
                            return Answered(current, exc)
                        log.warning("whatsapp: an answer was refused (Graph error %s)", exc.code)
        except TimeoutError:
            log.warning("whatsapp: Meta too slow for the webhook; answers left to the outbox")
            return Answered(current, GraphError(None, 0))
        except Exception as exc:  # a bug: the outbox sender tries again, Meta gets its 200
            log.error("whatsapp send failed: %s at %s", type(exc).__name__, _where(exc))
            return Answered(current, GraphError(None, 0))
        return Answered(len(outbound), None)

    async def _settle(self, user: UserRef, message: IncomingMessage, turn: Turn,
                      answered: Answered) -> None:
        """Record the fast path's result on the outbox row the engine wrote with the turn.

        Sent: mark it sent. The user cannot receive: failed, and they are marked unreachable.
        Meta cannot take it now: the row (or, if part went out, the rest in a row of its own)
        goes to the outbox sender, which retries inside the window. If the database is down
        here, the row's lease runs out and the sender delivers it later.
        """
        store, ids, error = self.sanad.store, turn.outbox_ids, answered.stopped_by
        try:
            if error is None:
                await mark_sent(store, ids)
            elif error.disposition is Disposition.UNREACHABLE:
                await mark_failed(store, ids, error=f"whatsapp:{error.code}")
                await store.mark_unreachable(user)
            elif answered.sent == 0:
                await release_turn(store, ids, error=f"whatsapp:{error.code}")
            else:
                key = f"wa-rest:{message_key(store, message.wamid)}"
                await queue_replies(store, user.key, turn.outbound[answered.sent:], key)
                await mark_sent(store, ids)
        except DatabaseUnavailable:
            log.warning("whatsapp: outbox not updated (database unavailable)")
        if error is not None and error.disposition is not Disposition.UNREACHABLE:
            log.warning("whatsapp: answers left to the outbox after Graph error %s", error.code)

    async def _after_turn(self, user: UserRef, *, quick_exit: bool) -> None:
        """The user wrote, so the window is open: release what was held for it. Not after a
        quick exit: then everything queued waits (the deliverer holds it) until they write."""
        if quick_exit:
            return
        try:
            if await release_held(self.sanad.store, user.key):
                self.outbox.wake()
        except DatabaseUnavailable:
            log.warning("whatsapp: database unavailable after a turn; held messages wait")

    async def _statuses(self, statuses: Sequence[StatusUpdate]) -> int:
        store = self.sanad.store
        try:
            for update in statuses:
                self._count("statuses", update.status)
                key = message_key(store, update.wamid)
                tracked = await apply_status(store, key, update.status, update.error_code)
                if update.status != "failed":
                    continue
                disposition = classify(update.error_code, 400)
                log.info("whatsapp: a sent message failed (error %s)", update.error_code)
                if disposition is Disposition.UNREACHABLE and update.recipient:
                    await store.mark_unreachable(store.user_ref(CHANNEL, update.recipient))
                elif (disposition is Disposition.OUTSIDE_WINDOW and tracked is not None
                      and tracked.outbox_id is not None and tracked.kind == "message"):
                    await redeliver(store, tracked.outbox_id)
                    self.outbox.wake()
        except DatabaseUnavailable:
            self._count("statuses", "database_unavailable")
            return 503
        return 200

    async def _language(self, user: UserRef) -> str | None:
        try:
            who = await recipient(self.sanad.store, user.key)
        except DatabaseUnavailable:
            return None
        return who.language if who else None

    async def _apologise(self, wa_id: str) -> None:
        """Honest words and the emergency numbers, built without the database."""
        from bot.engine import apology

        lang = self.sanad.settings.default_language
        message = apology(self.sanad.ui, self.sanad.content, lang)
        try:
            await self.messenger.send(wa_id, message, lang)
        except GraphError as exc:
            log.warning("whatsapp: apology not sent (Graph error %s)", exc.code)

    # --- metrics ---------------------------------------------------------------------------
    def _count(self, what: str, outcome: str, amount: int = 1) -> None:
        if self.metrics is not None and amount:
            self.metrics.inc(f"sanad_whatsapp_{what}_total", f"WhatsApp {what} by outcome",
                             amount, outcome=outcome)

    def _count_send_error(self, disposition: Disposition) -> None:
        if self.metrics is not None:
            self.metrics.inc("sanad_whatsapp_send_errors_total",
                             "Graph API sends that failed after retries", kind=str(disposition))


def signature_ok(body: bytes, header: str | None, secret: bytes) -> bool:
    """``X-Hub-Signature-256`` is ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    if not header or not header.startswith(_SIGNATURE_PREFIX):
        return False
    given = header[len(_SIGNATURE_PREFIX):].strip().lower()
    if len(given) != 64 or any(c not in "0123456789abcdef" for c in given):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def _where(exc: BaseException) -> str:
    """File and line where ``exc`` was raised: enough to find a bug, without its message
    (which may quote the user's words)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
