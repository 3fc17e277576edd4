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
Every answer sent here is tracked by its (hashed) ``wamid``, so that a ``failed`` report that
comes later is acted on (:mod:`bot.channels.whatsapp_status`).

Senders are named by phone number or, for a user with a WhatsApp username, by business-scoped
user id only (:mod:`bot.channels.whatsapp_identity`); an edited message is a new turn with the
new words; a deleted one (``revoke``) is acknowledged and nothing is sent. WhatsApp's own
"stop / resume marketing messages" (the ``user_preferences`` field) opts the user out of
campaigns, or restores the opt-in that stop removed.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from bot.channels.lifecycle import bind_to_app
from bot.channels.runtime import ChannelRuntime, Job, Outcome, where
from bot.channels.whatsapp_api import GraphClient, GraphError, SendPolicy
from bot.channels.whatsapp_errors import Disposition
from bot.channels.whatsapp_identity import Identities
from bot.channels.whatsapp_outbox import WhatsAppOutbox
from bot.channels.whatsapp_payload import (
    IdentityChange,
    IncomingMessage,
    MarketingPreference,
    Notifications,
    read_notifications,
)
from bot.channels.whatsapp_send import Messenger
from bot.channels.whatsapp_status import DeliveryReports, EmergencyText, Recording
from bot.channels.whatsapp_store import (
    CHANNEL,
    SentMessage,
    message_key,
    queue_replies,
    recipient,
    release_held,
    resume_marketing,
    stop_marketing,
)
from bot.channels.whatsapp_store import answered as record_answers
from bot.channels.whatsapp_templates import WhatsAppTexts
from bot.channels.whatsapp_window import REFUSED, WindowedDeliverer
from bot.config import ConfigError
from bot.content import ContentError
from bot.messages import EmergencyTriggered, Inbound, Outbound, QuickExit, Turn, UserRef
from bot.metrics import Metrics
from bot.outbox import mark_failed
from bot.outbox import release as release_turn
from bot.sendbudget import TurnPriorities
from bot.sendbudget.config import open_budget
from bot.store.db import DatabaseUnavailable
from bot.web.keys import BODY_LIMITS

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
    """How far a turn's answers got: ``sent`` of them, then ``stopped_by`` (or all of them);
    ``messages``: what Meta accepted, to track."""

    sent: int
    stopped_by: GraphError | None
    messages: tuple[SentMessage, ...] = ()


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
        self.runtime = ChannelRuntime(sanad, CHANNEL, counter="sanad_whatsapp_messages_total",
                                      counter_help="WhatsApp messages by outcome",
                                      metrics=metrics)
        self.phone_number_id = str(settings.whatsapp_phone_number_id)
        self._app_secret = str(settings.whatsapp_app_secret).encode()
        self._verify_token = str(settings.whatsapp_verify_token).encode()
        # The number's send budget, shared by every process and asked in priority order
        # (bot.sendbudget); an explicit policy (tests, benchmarks) keeps sends unbudgeted.
        self.budget = (open_budget(CHANNEL, self.phone_number_id, sanad.store)
                       if policy is None else None)
        self.client = GraphClient(settings.whatsapp_api_base_url, self.phone_number_id,
                                  str(settings.whatsapp_token), policy, budget=self.budget)
        self.messenger = Messenger(self.client, texts)
        self.emergency = EmergencyText(sanad.ui)
        self.deliverer = WindowedDeliverer(sanad.store, self.messenger, is_urgent=self.emergency)
        self.recording = Recording()
        self.outbox = WhatsAppOutbox(sanad.store, self.deliverer, recording=self.recording)
        self.identities = Identities(sanad.store)
        self.reports = DeliveryReports(sanad.store, self.identities, wake=self.outbox.wake,
                                       count=self._count, recording=self.recording)
        self.deliver_outbox = deliver_outbox
        self.outbox_interval = outbox_interval
        self.send_budget = send_budget
        self._stop = asyncio.Event()
        self._outbox_task: asyncio.Task[None] | None = None

    @property
    def metrics(self) -> Metrics | None:
        return self.runtime.metrics

    # --- wiring into the web app ---------------------------------------------------------
    def mount(self, app: web.Application) -> None:
        """Add the webhook routes and start/stop with the app."""
        self.runtime.attach(app)
        app.router.add_get(WEBHOOK_PATH, self.verify)
        app.router.add_post(WEBHOOK_PATH, self.webhook)
        if BODY_LIMITS not in app:
            app[BODY_LIMITS] = {}
        app[BODY_LIMITS][WEBHOOK_PATH] = MAX_BODY_BYTES
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
        if self.budget is not None:
            await self.budget.aclose()

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
        body = await request.read()  # over MAX_BODY_BYTES: aiohttp answers 413
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
        self._count("messages", "revoked", found.revoked)
        for code in found.error_codes:
            log.warning("whatsapp: Meta reported error %s in a notification", code)
        changed = await self._identity_changes(found.changes)
        senders: dict[tuple[str | None, str | None], list[IncomingMessage]] = {}
        for message in found.messages:
            senders.setdefault((message.wa_id, message.bsuid), []).append(message)
        users = await asyncio.gather(*(self._resolve(*sender) for sender in senders))
        by_user: dict[str, tuple[UserRef, list[IncomingMessage]]] = {}
        unresolved = False
        for user, queue in zip(users, senders.values(), strict=True):
            if user is None:
                unresolved = True  # the database is down: Meta sends these again
                continue
            by_user.setdefault(user.key, (user, []))[1].extend(queue)
        results = await asyncio.gather(
            *(self._serve_user(user, queue) for user, queue in by_user.values()),
            self.reports.apply(found.statuses),
            self._preferences(found.preferences),
        )
        return 503 if 503 in results or unresolved or changed == 503 else 200

    async def _resolve(self, phone: str | None, bsuid: str | None) -> UserRef | None:
        try:
            return await self.identities.resolve(phone, bsuid)
        except DatabaseUnavailable:
            self._count("messages", "database_unavailable")
            return None

    async def _serve_user(self, user: UserRef, queue: Sequence[IncomingMessage]) -> int:
        async with self.runtime.ordered(user.key):
            for message in queue:
                if await self._turn(user, message) != 200:
                    return 503  # later messages of this user wait for Meta's retry, in order
        return 200

    async def _turn(self, user: UserRef, message: IncomingMessage) -> int:
        inbound = Inbound(
            user=user, text=message.text, button_id=message.button_id, media=message.media,
            message_id=f"wa:{message_key(self.sanad.store, message.wamid)}",
            received_at=message.received_at,
        )
        job = Job(inbound, message.address)
        return (await self.runtime.serve(_Reply(self, message), job)).status

    async def _deliver_turn(self, job: Job, turn: Turn, message: IncomingMessage) -> Outcome:
        """Answer one message of the payload and record how far that got."""
        user = job.inbound.user
        if message.edited:
            self._count("messages", "edited")
        await self.messenger.mark_read(message.wamid)
        urgent = any(isinstance(e, EmergencyTriggered) for e in turn.events)
        answered = await self._answer(message.address, user, turn.outbound, urgent=urgent,
                                      priorities=TurnPriorities(turn.events))
        await self._settle(user, message, turn, answered)
        await self._after_turn(user, quick_exit=any(isinstance(e, QuickExit) for e in turn.events))
        await self._learn(user, message)
        return Outcome.SENT if answered.stopped_by is None else Outcome.QUEUED

    async def _answer(self, address: str, user: UserRef, outbound: Sequence[Outbound], *,
                      urgent: bool = False,
                      priorities: TurnPriorities | None = None) -> Answered:
        """Send a turn's answers in order, until one cannot go out now. Within a time budget
        and with few retries: Meta waits for our 200, and the outbox sender retries for longer.
        ``priorities``: the send budget's order for the turn's messages (safety first, then
        first replies); a wait in the budget counts against the time budget.
        """
        language = await self._language(user)
        order = priorities or TurnPriorities(())
        current = 0
        sent: list[SentMessage] = []
        try:
            async with asyncio.timeout(self.send_budget):
                for current, item in enumerate(outbound):
                    try:
                        with order.next():
                            wamids = await self.messenger.send(address, item, language,
                                                               attempts=FAST_ATTEMPTS)
                    except GraphError as exc:
                        self._count_send_error(exc.disposition)
                        if exc.disposition not in REFUSED:
                            return Answered(current, exc, tuple(sent))
                        log.warning("whatsapp: an answer was refused (Graph error %s)", exc.code)
                        continue
                    keys = [message_key(self.sanad.store, w) for w in wamids if w]
                    self.recording.sent(keys)
                    marked = urgent or self.emergency(item)
                    sent += [SentMessage(k, current, marked) for k in keys]
        except TimeoutError:
            log.warning("whatsapp: Meta too slow for the webhook; answers left to the outbox")
            return Answered(current, GraphError(None, 0), tuple(sent))
        except Exception as exc:  # a bug: the outbox sender tries again, Meta gets its 200
            log.error("whatsapp send failed: %s at %s", type(exc).__name__, where(exc))
            return Answered(current, GraphError(None, 0), tuple(sent))
        return Answered(len(outbound), None, tuple(sent))

    async def _settle(self, user: UserRef, message: IncomingMessage, turn: Turn,
                      answered: Answered) -> None:
        """Record the fast path's result on the outbox row the engine wrote with the turn.

        Sent: mark it sent. The user cannot receive: failed, and they are marked unreachable.
        Meta cannot take it now: the row (or, if part went out, the rest in a row of its own)
        goes to the outbox sender, which retries inside the window. If the database is down
        here, the row's lease runs out and the sender delivers it later.
        """
        error = answered.stopped_by
        try:
            await self._record(user, message, turn, answered)
        finally:
            self.recording.recorded(m.key for m in answered.messages)
        if error is not None and error.disposition is not Disposition.UNREACHABLE:
            log.warning("whatsapp: answers left to the outbox after Graph error %s", error.code)

    async def _record(self, user: UserRef, message: IncomingMessage, turn: Turn,
                      answered: Answered) -> None:
        store, ids, error = self.sanad.store, turn.outbox_ids, answered.stopped_by
        try:
            if error is None:
                await record_answers(store, user.key, ids, answered.messages)
            elif error.disposition is Disposition.UNREACHABLE:
                await mark_failed(store, ids, error=f"whatsapp:{error.code}")
                await store.mark_unreachable(user)
            elif answered.sent == 0:
                await release_turn(store, ids, error=f"whatsapp:{error.code}")
            else:
                key = f"wa-rest:{message_key(store, message.wamid)}"
                await queue_replies(store, user.key, turn.outbound[answered.sent:], key)
                await record_answers(store, user.key, ids, answered.messages)
        except DatabaseUnavailable:
            log.warning("whatsapp: outbox not updated (database unavailable)")

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

    async def _learn(self, user: UserRef, message: IncomingMessage) -> None:
        """Remember whose BSUID this is, for when Meta stops sharing the phone number."""
        try:
            await self.identities.learn(user, message.bsuid)
        except DatabaseUnavailable:
            log.warning("whatsapp: database unavailable; a user's id is learnt next time")

    async def _identity_changes(self, changes: Sequence[IdentityChange]) -> int:
        """A user's phone number or BSUID changed: carry their conversation over."""
        try:
            for change in changes:
                carried = await self.identities.change(change)
                self._count("identity_changes", "carried" if carried else "unknown")
        except DatabaseUnavailable:
            self._count("identity_changes", "database_unavailable")
            return 503
        return 200

    async def _preferences(self, preferences: Sequence[MarketingPreference]) -> int:
        """WhatsApp's "stop / resume marketing messages": nothing is sent back."""
        store = self.sanad.store
        try:
            for preference in preferences:
                user = await self.identities.resolve(preference.phone, preference.bsuid)
                if preference.value == "stop":
                    changed = await stop_marketing(store, user)
                else:
                    changed = await resume_marketing(store, user)
                self._count("marketing", preference.value if changed else "unchanged")
        except DatabaseUnavailable:
            self._count("marketing", "database_unavailable")
            return 503
        return 200

    async def _language(self, user: UserRef) -> str | None:
        try:
            who = await recipient(self.sanad.store, user.key)
        except DatabaseUnavailable:
            return None
        return who.language if who else None

    # --- metrics ---------------------------------------------------------------------------
    def _count(self, what: str, outcome: str, amount: int = 1) -> None:
        if what == "messages":
            self.runtime.count(outcome, amount)
        elif self.metrics is not None and amount:
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


@dataclass(frozen=True, slots=True)
class _Reply:
    """The runtime's adapter for one message of a payload: Meta's answer goes to its sender."""

    channel: WhatsAppChannel
    message: IncomingMessage

    async def deliver_turn(self, job: Job, turn: Turn) -> Outcome:
        return await self.channel._deliver_turn(job, turn, self.message)

    async def send_apology(self, job: Job, message: Outbound) -> None:
        lang = self.channel.sanad.settings.default_language
        try:
            await self.channel.messenger.send(job.address, message, lang)
        except GraphError as exc:
            log.warning("whatsapp: apology not sent (Graph error %s)", exc.code)
