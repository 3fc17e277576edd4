"""The Telegram channel: updates in (webhook or polling), the engine's turn out, nothing lost.

Updates arrive on ``POST /telegram/webhook`` of ``sanad serve`` (or from ``getUpdates`` with
``serve --polling`` in development). Each update's turn runs *before* the webhook answers:

* 200 once the turn is committed (its replies are then in the outbox) and its replies were
  sent, or the reply grace (``SANAD_TELEGRAM_REPLY_GRACE``) after the commit with the sends
  still waiting in the send budget:
  they go on in the background, and the outbox delivers them if this process dies (or the
  update needs nothing: a group, an unknown type, a duplicate — the engine de-duplicates on
  ``tg:<bot id>:<update_id>`` in the database);
* 503 when the database is down: nothing was sent or stored, and Telegram delivers it again;
* 400 for a body that is not an update (not a JSON object with an integer ``update_id``), 401
  without the secret token, 413 above the app's ``client_max_size``; never a 500 for bad input.

An update with an integer ``update_id`` is always acknowledged (200), also when PTB cannot build
it or one of its fields has the wrong type (a newer Bot API shape, an older one): Telegram
re-sends anything but a 2xx for a day, and a retry would not read any better. It is logged
(its kind and the failing field, no text, no ids) and what its JSON still says is used: a
private chat's text is answered as usual (:func:`read_raw`).

A chat's updates are processed one at a time, in order (one lock per chat around the turn, and
its sends after the previous turn's), while different chats proceed concurrently; under a rush
the channel runtime's turn gate lets the safety layer's flagged messages in first. PTB's
``Bot`` (on our aiohttp request layer) parses updates and talks to the Bot API; its
``Application``/handler machinery is not used: it queues updates and answers the webhook
before processing, which would lose an update when the database is down. On the webhook's hot
path a plain text message or tap is read from the JSON without building PTB's ``Update``
(:func:`read_plain`), and a tap's ``answerCallbackQuery`` rides in the 200 answer.

Configuration (see CONTRACT.md): ``TELEGRAM_BOT_TOKEN`` enables the channel;
``TELEGRAM_API_BASE_URL`` is PTB's ``base_url`` (the token is appended); ``TELEGRAM_WEBHOOK_URL``
makes start-up call ``setWebhook`` (never called without it); ``TELEGRAM_WEBHOOK_SECRET`` is the
``X-Telegram-Bot-Api-Secret-Token`` every webhook call must carry (constant-time compare). With
``SANAD_ENV=production`` the webhook refuses to start without a secret; in development it starts
with a warning and accepts any caller. Both are checked as Telegram checks them before any call,
and a refusal by Telegram is a configuration error too (``bot/channels/telegram_webhook.py``).

Nothing here logs text, names or chat ids; the bot token is in every Bot API URL, so PTB, httpx
and aiohttp request logs stay at WARNING (see ``bot.cli.configure_logging``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from telegram import Bot, BotCommand, LinkPreviewOptions, Update
from telegram.error import BadRequest, InvalidToken, RetryAfter, TelegramError

from bot.channels import telegram_webhook
from bot.channels.lifecycle import bind_to_app
from bot.channels.runtime import ChannelRuntime, Job, Outcome, secret_ok, where
from bot.channels.telegram_commands import load_commands
from bot.channels.telegram_render import Chunk, render
from bot.channels.telegram_request import AiohttpRequest
from bot.channels.telegram_sender import Sender, SendPolicy, UserBlockedBot, retry_after_seconds
from bot.channels.telegram_updates import (
    Action,
    Blocked,
    Incoming,
    LeaveChat,
    Malformed,
    Uncommon,
    read_plain,
    read_raw,
    read_update,
)
from bot.config import SUPPORTED_LANGUAGES, ConfigError
from bot.messages import Outbound, QuickExit, Turn, UserRef
from bot.metrics import Metrics
from bot.outbox import OutboxSender, PermanentDeliveryError
from bot.sendbudget import TurnPriorities
from bot.sendbudget.config import open_budget
from bot.store.db import DatabaseUnavailable

if TYPE_CHECKING:
    from bot.app import Sanad

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
DELETE_WINDOW = timedelta(hours=48)
"""Telegram lets a bot delete messages of a private chat for 48 hours."""
DELETE_BATCH = 100
# The reply grace (``Settings.telegram_reply_grace``, ``SANAD_TELEGRAM_REPLY_GRACE``, 0.5 s):
# how long the webhook waits, after the commit, for the turn's replies to be sent. Quick sends
# (an idle bot) finish within it, so the answer comes after them as before; under a rush, when
# the sends wait in the send budget, the webhook is answered without them: a webhook held for
# seconds makes Telegram hold back the bot's later updates (``max_connections``) and retry.
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class TelegramChannel:
    """One bot: its PTB ``Bot``, the sending policy, and the per-chat ordering."""

    def __init__(self, sanad: Sanad, *, polling: bool = False, policy: SendPolicy | None = None,
                 poll_timeout: int = 30, metrics: Metrics | None = None,
                 reply_grace: float | None = None, turns_at_once: int | None = None) -> None:
        settings = sanad.settings
        if not settings.telegram_bot_token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is required for the Telegram channel")
        self.sanad = sanad
        self.polling = polling
        self.poll_timeout = poll_timeout
        self.runtime = ChannelRuntime(sanad, CHANNEL, counter="sanad_telegram_updates_total",
                                      counter_help="Telegram updates by outcome",
                                      metrics=metrics, turns_at_once=turns_at_once)
        self.reply_grace = (reply_grace if reply_grace is not None
                            else settings.telegram_reply_grace)
        self._poll_request = AiohttpRequest(connection_pool_size=1)
        self.bot = Bot(
            settings.telegram_bot_token,
            base_url=settings.telegram_api_base_url or "https://api.telegram.org/bot",
            request=AiohttpRequest(),
            get_updates_request=self._poll_request,
        )
        self._bot_id = settings.telegram_bot_token.split(":", 1)[0]
        # The bot's send budget, shared by every process (bot.sendbudget); an explicit policy
        # (tests, benchmarks) keeps the process-local limiter instead.
        self.budget = (open_budget(CHANNEL, self._bot_id, sanad.store) if policy is None
                       else None)
        self.sender = Sender(policy, budget=self.budget)
        self._poller: asyncio.Task[None] | None = None
        self._outbox: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def metrics(self) -> Metrics | None:
        return self.runtime.metrics

    # --- wiring into the web app ---------------------------------------------------------
    def mount(self, app: web.Application) -> None:
        """Add the webhook route (not when polling) and start/stop with the app."""
        self.runtime.attach(app)
        if not self.polling:
            app.router.add_post(WEBHOOK_PATH, self.webhook)
        bind_to_app(app, self)

    async def start(self) -> None:
        """Check the configuration, introduce the bot (getMe, commands), then receive."""
        settings = self.sanad.settings
        secret = settings.telegram_webhook_secret
        if not self.polling:
            if secret is None and settings.environment == "production":
                raise ConfigError("TELEGRAM_WEBHOOK_SECRET is required in production: without "
                                  "it anyone could post updates to /telegram/webhook")
            telegram_webhook.check_secret(secret)
            if settings.telegram_webhook_url:
                telegram_webhook.check_url(settings.telegram_webhook_url)
            if secret is None:
                log.warning("TELEGRAM_WEBHOOK_SECRET is not set: the webhook accepts updates "
                            "from anyone (development only)")
        menus = load_commands()
        try:
            await self._introduce(menus)
        except BaseException:
            await self.bot.shutdown()
            raise
        if self.polling:
            self._poller = asyncio.create_task(self.poll(), name="telegram-polling")
        self._stopping.clear()
        await self.runtime.start()
        outbox = OutboxSender(self.sanad.store, CHANNEL, self, keeper=self.runtime.leases)
        self._outbox = asyncio.create_task(outbox.run(self._stopping), name="telegram-outbox")
        log.info("telegram channel started (%s)", "polling" if self.polling else "webhook")

    async def _introduce(self, menus: dict[str, list[BotCommand]]) -> None:
        settings = self.sanad.settings
        try:
            await self.sender.call(self.bot.initialize, what="getMe")
        except InvalidToken:
            # PTB's message quotes the token: never let it reach a log.
            raise ConfigError("TELEGRAM_BOT_TOKEN was rejected by the Bot API") from None
        except (TelegramError, UserBlockedBot) as exc:
            where = settings.telegram_api_base_url or "api.telegram.org"  # no token in it
            raise ConfigError(f"cannot reach the Telegram Bot API at {where} "
                              f"({type(exc).__name__}); check TELEGRAM_API_BASE_URL") from None
        await self._set_commands(menus)
        if settings.telegram_webhook_url and not self.polling:
            await self._set_webhook(settings.telegram_webhook_url)

    async def _set_webhook(self, url: str) -> None:
        try:
            await self.sender.call(lambda: self.bot.set_webhook(
                url, secret_token=self.sanad.settings.telegram_webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
            ), what="setWebhook")
        except BadRequest as exc:  # "bad webhook: ...": what we checked, or what Telegram found
            raise telegram_webhook.refusal(exc) from None
        except (TelegramError, UserBlockedBot) as exc:
            where = self.sanad.settings.telegram_api_base_url or "api.telegram.org"
            raise ConfigError(f"setWebhook failed at {where} ({type(exc).__name__}); "
                              "check TELEGRAM_WEBHOOK_URL and TELEGRAM_API_BASE_URL") from None
        log.info("telegram webhook registered")

    async def stop(self) -> None:
        self._stopping.set()
        if self._outbox is not None:
            await asyncio.gather(self._outbox, return_exceptions=True)
            self._outbox = None
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        await self.runtime.stop()  # the replies still being sent, then the lease keeper
        if self.budget is not None:
            await self.budget.aclose()
        await self.bot.shutdown()

    async def _set_commands(self, menus: dict[str, list[BotCommand]]) -> None:
        """The "/" menu in each language, and the default language's for everyone else."""
        default = self.sanad.settings.default_language
        calls: list[tuple[str | None, list[BotCommand]]] = [
            (lang, menus[lang]) for lang in SUPPORTED_LANGUAGES
        ]
        calls.append((None, menus[default]))

        async def set_menu(lang: str | None, menu: list[BotCommand]) -> bool:
            return await self.sender.call(
                lambda: self.bot.set_my_commands(menu, language_code=lang), what="setMyCommands"
            )

        results = await asyncio.gather(*(set_menu(lang, menu) for lang, menu in calls),
                                       return_exceptions=True)
        if any(isinstance(r, BaseException) for r in results):
            log.warning("telegram: could not set the command menu in every language")

    # --- webhook -------------------------------------------------------------------------
    async def webhook(self, request: web.Request) -> web.Response:
        secret = self.sanad.settings.telegram_webhook_secret
        if secret is not None and not secret_ok(request.headers.get(SECRET_HEADER), secret):
            self._count("unauthorized")
            return web.Response(status=401, text="unauthorized")
        body = await request.read()  # over client_max_size: aiohttp raises 413
        data = _json_object(body)
        if data is None:
            self._count("malformed")
            return web.Response(status=400, text="not a Telegram update")
        if not any(kind in data for kind in ALLOWED_UPDATES):
            self._count("ignored")  # a kind we did not ask for: acknowledge, never parse
            return web.Response(status=200)
        action = self.action(data)
        status = await self.handle(action, callback_in_answer=True)
        if status == 200 and isinstance(action, Incoming) and action.callback_query_id:
            return web.Response(body=_answer_callback_body(action.callback_query_id),
                                content_type="application/json")
        return web.Response(status=status)

    def action(self, data: Mapping[str, Any]) -> Action | None:
        """What an update (a JSON object with an integer ``update_id``) asks for: the plain
        reading on the hot path, PTB's otherwise. Never raises."""
        plain = read_plain(data, self._bot_id, self._user_ref)
        return self.read(data) if isinstance(plain, Uncommon) else plain

    def read(self, data: Mapping[str, Any]) -> Action | None:
        """PTB's reading of an update with an integer ``update_id``; where PTB cannot build
        it, or a field has the wrong type, what its JSON still says (:func:`read_raw`).
        Never raises: such an update is acknowledged, not refused (Telegram would re-send a
        4xx for a day, and a retry reads no better)."""
        try:
            return read_update(Update.de_json(dict(data), self.bot), self._user_ref)
        except Exception as exc:  # bad input, not our failure: PTB raises anything on junk
            self._unreadable(data, exc)
            return read_raw(data, self._bot_id, self._user_ref)

    def _unreadable(self, data: Mapping[str, Any], exc: Exception) -> None:
        """Log an update we could not read: its kind and the failing field or frame, never
        a value (PTB's messages may quote the text)."""
        kind = next((k for k in ALLOWED_UPDATES if k in data), "update")
        reason = f"field {exc}" if isinstance(exc, Malformed) else type(exc).__name__
        log.warning("telegram: a %s update could not be read (%s at %s); acknowledged, "
                    "read from its JSON where possible", kind, reason, where(exc))
        self._count("unreadable")

    # --- processing ----------------------------------------------------------------------
    async def handle(self, action: Action | None, *, callback_in_answer: bool = False) -> int:
        """Process what an update asks for; the HTTP status for the webhook (200, or 503 to
        retry). ``callback_in_answer``: the caller answers a tap's callback query in its 200
        response (the webhook does), so no ``answerCallbackQuery`` request is made then."""
        try:
            if isinstance(action, Incoming):
                return await self._serve(action, callback_in_answer=callback_in_answer)
            if isinstance(action, LeaveChat):
                await self._leave(action.chat_id)
            elif isinstance(action, Blocked):
                await self.sanad.store.mark_unreachable(action.user)
                self._count("blocked")
            else:
                self._count("ignored")
        except DatabaseUnavailable:
            self._count("database_unavailable")
            return 503
        return 200

    def _user_ref(self, chat_id: int) -> UserRef:
        return self.sanad.store.user_ref(CHANNEL, chat_id)

    async def _serve(self, incoming: Incoming, *, callback_in_answer: bool) -> int:
        status: int | None = None
        try:
            if incoming.inbound is None:
                self._count("ignored")
                status = 200
            else:
                job = Job(incoming.inbound, str(incoming.chat_id), incoming.language_hint,
                          user_message_id=_str_or_none(incoming.user_message_id))
                async with self.runtime.ordered(job.address):
                    served = await self.runtime.serve(self, job,
                                                      answer_within=self.reply_grace)
                    status = served.status
            return status
        finally:
            # The webhook's 200 answer carries the callback's answer; otherwise call the API.
            if incoming.callback_query_id is not None and not (callback_in_answer
                                                               and status == 200):
                await self._answer_callback(incoming.callback_query_id)

    async def deliver_turn(self, job: Job, turn: Turn) -> Outcome:
        """Send the turn's messages (after hiding the chat on quick exit) and remember ids:
        ``sent`` (rows marked with the ids), ``sent_unmarked``, ``blocked`` or ``failed``."""
        user = job.inbound.user
        chat_id = int(job.address)
        ids = [] if job.user_message_id is None else [int(job.user_message_id)]
        if any(isinstance(e, QuickExit) for e in turn.events):
            await self._hide_chat(chat_id, user, ids)
            ids = []
        elif turn.erased_message_ids:  # "delete my data" also clears what the chat shows
            await self._delete_ids(chat_id, [*turn.erased_message_ids, *map(str, ids)])
            ids = []
        delivered = False
        priorities = TurnPriorities(turn.events)  # safety first, then first replies
        try:
            for outbound in turn.outbound:
                for chunk in render(outbound):
                    with priorities.next():
                        ids.append(await self._send(chat_id, chunk))
            delivered = True
        except UserBlockedBot:
            return Outcome.BLOCKED
        except TelegramError as exc:
            log.warning("telegram: a reply could not be sent: %s", type(exc).__name__)
            self._count_send_error(exc)
            return Outcome.FAILED
        finally:
            # all sent: the outbox rows are marked sent in the same transaction
            delivered = await self._remember(user, ids, turn.outbox_ids if delivered else ())
        return Outcome.SENT if delivered else Outcome.SENT_UNMARKED

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> None:
        """Outbox delivery (a caseworker's reply), in order with the chat's own turns."""
        chat_id = int(address)
        ids: list[int] = []
        async with self.runtime.ordered(address):
            await self.runtime.sends.settled(address)  # after the chat's turns' replies
            try:
                for outbound in messages:
                    for chunk in render(outbound):
                        ids.append(await self._send(chat_id, chunk))
            except UserBlockedBot as exc:
                raise PermanentDeliveryError("the user blocked the bot") from exc
            finally:
                await self._remember(self._user_ref(chat_id), ids)

    async def _send(self, chat_id: int, chunk: Chunk) -> int:
        # PTB's own POST (its request layer maps errors to RetryAfter, Forbidden, ...), without
        # building a ``Message`` from the result: only its message_id is needed.
        data: dict[str, Any] = {"chat_id": chat_id, "text": chunk.text,
                                "link_preview_options": _NO_PREVIEW}
        if chunk.keyboard is not None:
            data["reply_markup"] = chunk.keyboard
        result = await self.sender.call(lambda: self.bot._post("sendMessage", dict(data)),
                                        chat_id=chat_id, what="sendMessage", guarded=True)
        return int(result["message_id"])

    async def _hide_chat(self, chat_id: int, user: UserRef, extra: Sequence[int]) -> None:
        """Quick exit: delete what we remember of the chat (and the exit message itself).

        The neutral cover message sent afterwards *is* remembered: the next quick exit deletes
        it too, so at most one harmless line is ever left in the chat.
        """
        try:
            remembered = await self.sanad.store.take_messages(user, newer_than=DELETE_WINDOW)
        except DatabaseUnavailable:
            log.warning("telegram quick exit: database unavailable, deleting the last message only")
            remembered = []
        await self._delete_ids(chat_id, [*remembered, *map(str, extra)])
        if self.metrics is not None:
            self.metrics.inc("sanad_telegram_quick_exits_total", "Chats hidden by a quick exit")

    async def _delete_ids(self, chat_id: int, message_ids: Sequence[str]) -> None:
        ids = sorted({int(i) for i in message_ids if i.isdigit()})
        for start in range(0, len(ids), DELETE_BATCH):
            await self._delete(chat_id, ids[start:start + DELETE_BATCH])

    async def _delete(self, chat_id: int, batch: list[int]) -> None:
        try:
            await self.sender.call(lambda: self.bot.delete_messages(chat_id, batch),
                                   what="deleteMessages")
        except (TelegramError, UserBlockedBot) as exc:
            log.warning("telegram quick exit: deleteMessages failed: %s", type(exc).__name__)

    async def _remember(self, user: UserRef, ids: Sequence[int],
                        sent_outbox_ids: Sequence[int] = ()) -> bool:
        """Remember the chat's message ids (and mark ``sent_outbox_ids`` sent); True when
        stored (nothing to store counts as stored)."""
        if not ids and not sent_outbox_ids:
            return True
        try:
            await self.sanad.store.remember_messages(user, [str(i) for i in ids],
                                                     sent_outbox_ids=sent_outbox_ids)
        except DatabaseUnavailable:
            log.warning("telegram: message ids not remembered (database unavailable)")
            return False
        return True

    async def _answer_callback(self, callback_query_id: str) -> None:
        try:
            await self.sender.call(lambda: self.bot.answer_callback_query(callback_query_id),
                                   what="answerCallbackQuery")
        except (TelegramError, UserBlockedBot) as exc:
            log.info("telegram: answerCallbackQuery failed: %s", type(exc).__name__)

    async def send_apology(self, job: Job, message: Outbound) -> None:
        try:
            for chunk in render(message):
                await self._send(int(job.address), chunk)
        except (TelegramError, UserBlockedBot) as exc:
            log.warning("telegram: apology not sent: %s", type(exc).__name__)

    async def _leave(self, chat_id: int) -> None:
        try:
            await self.sender.call(lambda: self.bot.leave_chat(chat_id), what="leaveChat")
        except (TelegramError, UserBlockedBot) as exc:
            log.info("telegram: leaveChat failed: %s", type(exc).__name__)
        self._count("left_group")

    # --- polling (development) -----------------------------------------------------------
    async def poll(self) -> None:
        """``getUpdates`` in a loop; the offset moves past an update only once it is processed.

        PTB's ``Updater`` acknowledges updates as soon as it has fetched them, which would lose
        them when the database is down; here a 503-worthy update is fetched and tried again.
        """
        await self.sender.call(self.bot.delete_webhook, what="deleteWebhook")
        offset = 0
        failures = 0
        while True:
            try:
                updates = await self._get_updates(offset)
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
                continue
            except TelegramError as exc:  # network, Conflict (another poller), 5xx
                failures += 1
                log.warning("telegram getUpdates failed: %s", type(exc).__name__)
                await asyncio.sleep(self._poll_backoff(failures))
                continue
            if not updates:
                failures = 0
                continue
            retry_from = await self.process_batch(updates)
            if retry_from is None:
                offset = updates[-1]["update_id"] + 1
                failures = 0
            else:
                offset = retry_from
                failures += 1
                await asyncio.sleep(self._poll_backoff(failures))

    def _poll_backoff(self, failures: int) -> float:
        return float(min(30.0, self.sender.policy.backoff * 2 ** min(failures, 6)))

    async def _get_updates(self, offset: int) -> list[dict[str, Any]]:
        """``getUpdates`` as JSON, each update then read as the webhook reads it: PTB's
        ``get_updates`` builds the whole batch at once, so one update it cannot build would
        stop polling for good."""
        result = await self.bot._post(
            "getUpdates", {"offset": offset, "timeout": self.poll_timeout,
                           "allowed_updates": list(ALLOWED_UPDATES)},
            read_timeout=(self._poll_request.read_timeout or 0) + self.poll_timeout)
        if not isinstance(result, list):
            return []
        return [u for u in result if isinstance(u, dict) and type(u.get("update_id")) is int]

    async def process_batch(self, updates: Sequence[Mapping[str, Any]]) -> int | None:
        """Process updates (JSON objects with an integer ``update_id``) concurrently across
        chats, in order within a chat; the first update id that must be fetched again
        (database down), or ``None``."""
        by_chat: dict[object, list[tuple[int, Action | None]]] = {}
        for update in updates:
            action = self.action(update)
            chat = ("update", update["update_id"]) if action is None else action.chat_id
            by_chat.setdefault(chat, []).append((update["update_id"], action))

        async def chat_in_order(queue: list[tuple[int, Action | None]]) -> int | None:
            for update_id, action in queue:
                if await self.handle(action) != 200:
                    return update_id  # later updates of this chat wait for it
            return None

        failed = [f for f in await asyncio.gather(*map(chat_in_order, by_chat.values()))
                  if f is not None]
        return min(failed) if failed else None

    # --- metrics ---------------------------------------------------------------------------
    def _count(self, outcome: str) -> None:
        self.runtime.count(outcome)

    def _count_send_error(self, exc: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.inc("sanad_telegram_send_errors_total",
                             "Bot API calls that failed after retries", kind=type(exc).__name__)


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object with an integer ``update_id``, or ``None``."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        return None
    return data


def _answer_callback_body(callback_query_id: str) -> bytes:
    """``answerCallbackQuery`` in the webhook's answer: Telegram performs a method named in a
    webhook response, which saves a request per button tap (~4% of a webhook's CPU). Its
    result is not seen, as was already the case in effect: a failed answer only stops the
    button's spinner later, and was only logged."""
    return orjson.dumps({"method": "answerCallbackQuery", "callback_query_id": callback_query_id})


def _str_or_none(value: int | None) -> str | None:
    return None if value is None else str(value)
