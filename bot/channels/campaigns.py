"""Campaign deliverers of the configured channels, for ``sanad worker`` and ``campaign send``.

The campaign sender (``bot.outreach.sender``) paces, leases and records; a deliverer only makes
the platform call and says what happened in the sender's terms (``bot.outreach.delivery``):
a flood answer becomes :class:`RateLimited` (the whole channel pauses, in every process), a
user who blocked us :class:`PermanentDeliveryError`, a WhatsApp user outside the 24-hour window
:class:`Held` (the WhatsApp channel releases the row when they write). No retries here: a retry
the sender does not know about could send a message twice or break the shared rate.

Telegram goes through PTB's ``Bot`` on our aiohttp request layer and the channel's renderer;
WhatsApp through the channel's Graph client and messenger. Message ids are remembered for the
quick exit (Telegram) and for delivery reports (WhatsApp), by the ``on_sent`` hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import insert
from telegram import Bot, LinkPreviewOptions
from telegram.error import BadRequest, Forbidden, RetryAfter

from bot.channels.telegram_render import render as render_telegram
from bot.channels.telegram_request import AiohttpRequest
from bot.channels.telegram_sender import retry_after_seconds
from bot.channels.whatsapp_api import GraphClient, GraphError
from bot.channels.whatsapp_errors import Disposition
from bot.channels.whatsapp_send import Messenger
from bot.channels.whatsapp_store import (
    CHANNEL as WHATSAPP,
)
from bot.channels.whatsapp_store import (
    Recipient,
    hidden_by_exit,
    message_key,
    notified_since,
    recipient,
    record_sent,
    stop_marketing,
)
from bot.channels.whatsapp_templates import WhatsAppTexts
from bot.channels.whatsapp_window import Delivered, WindowedDeliverer
from bot.config import Settings
from bot.messages import Outbound
from bot.outbox import PermanentDeliveryError
from bot.outreach.delivery import Deliverer, Held, OnSent, RateLimited, Refused, Sent
from bot.store.models import PlatformMessage
from bot.store.repository import Store, utcnow

log = logging.getLogger(__name__)

TELEGRAM = "telegram"
WHATSAPP_RATE_PAUSE = 2.0
"""Seconds the WhatsApp channel pauses on a Graph rate-limit code (Meta gives no retry-after)."""
OPERATOR_PAUSE = 60.0
"""Seconds the channel pauses when Meta says a person must act (token, account, template): the
messages wait instead of failing one by one."""
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


# --- Telegram ---------------------------------------------------------------------------------
class TelegramCampaignDeliverer:
    """One campaign message to one chat; returns the sent message ids."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> list[int]:
        chat_id = int(address)
        ids: list[int] = []
        for outbound in messages:
            for chunk in render_telegram(outbound):
                try:
                    sent = await self.bot.send_message(
                        chat_id, chunk.text, reply_markup=chunk.markup,
                        link_preview_options=_NO_PREVIEW)
                except RetryAfter as exc:
                    raise RateLimited(retry_after_seconds(exc), "telegram flood control") from None
                except Forbidden:
                    raise PermanentDeliveryError("the user blocked the bot") from None
                except BadRequest as exc:  # e.g. chat not found: sending again changes nothing
                    raise Refused(f"telegram bad request ({type(exc).__name__})") from None
                ids.append(sent.message_id)
        return ids


@dataclass
class RememberedIds:
    """Keeps sent Telegram message ids for the quick exit (which deletes them), written in
    batches: one transaction per ``delay`` instead of one per message."""

    store: Store
    delay: float = 0.5
    _pending: list[tuple[int, str]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def on_sent(self, sent: Sent) -> None:
        ids = sent.result if isinstance(sent.result, list) else []
        self._pending.extend((sent.user_id, str(i)) for i in ids)
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.delay)
        await self.flush()

    async def flush(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        now = utcnow()
        try:
            async with self.store.session() as db:
                await db.execute(insert(PlatformMessage), [
                    {"user_id": user_id, "message_id": message_id, "created_at": now}
                    for user_id, message_id in rows])
        except Exception as exc:  # a quick exit then deletes less; never fail a send for it
            log.warning("campaign: %d message id(s) not remembered (%s)", len(rows),
                        type(exc).__name__)

    async def aclose(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        await self.flush()


# --- WhatsApp ---------------------------------------------------------------------------------
class WhatsAppCampaignDeliverer:
    """Inside the 24-hour window: the campaign message. Outside it: the approved campaign
    template if ``content/whatsapp_templates.yml`` names one (once per pause), and the row
    waits (``Held``) until the user writes; without a template it just waits."""

    def __init__(self, store: Store, messenger: Messenger) -> None:
        self.store = store
        self.messenger = messenger
        self.window = WindowedDeliverer(store, messenger)

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> Delivered:
        who = await recipient(self.store, self.store.user_ref(WHATSAPP, address).key)
        if who is None:
            raise PermanentDeliveryError()  # erased meanwhile
        if await hidden_by_exit(self.store, who.user_id, who.last_inbound_at):
            raise Held("exit")  # the user hid the chat: nothing until they write
        if not await self.window.window_open(who):
            await self._invite(address, who)
            raise Held("window")
        sent: list[str] = []
        try:
            for message in messages:
                sent += await self.messenger.send(address, message, who.language, attempts=1)
        except GraphError as exc:
            if sent:  # part of it went out: retrying would repeat that part
                log.warning("whatsapp campaign: a message went out in part (Graph error %s)",
                            exc.code)
                return Delivered(who.user_id, sent)
            if exc.disposition is Disposition.MARKETING_STOPPED:  # 131050: they said so in-app
                await stop_marketing(self.store, self.store.user_ref(WHATSAPP, address))
            raise _campaign_error(exc) from None
        return Delivered(who.user_id, sent)

    async def _invite(self, address: str, who: Recipient) -> None:
        template = self.messenger.texts.campaign_notice(who.language)
        if template is None or await notified_since(self.store, who.user_id,
                                                    who.last_inbound_at):
            return
        try:
            wamid = await self.messenger.send_notice(address, who.language, template=template,
                                                     attempts=1)
        except GraphError as exc:
            raise _campaign_error(exc) from None
        if wamid:
            await record_sent(self.store, who.user_id, [message_key(self.store, wamid)],
                              kind="notice")


def _campaign_error(exc: GraphError) -> Exception:
    """A Graph error as the campaign sender understands it."""
    disposition = exc.disposition
    if disposition is Disposition.RATE_LIMITED:
        return RateLimited(WHATSAPP_RATE_PAUSE, f"whatsapp rate limit {exc.code}")
    if disposition is Disposition.OUTSIDE_WINDOW:
        return Held("window")
    if disposition is Disposition.MARKETING_LIMITED:  # 131049: goes when the user writes
        return Held("marketing_limit")
    if disposition is Disposition.MARKETING_STOPPED:
        return Refused(f"whatsapp:{exc.code}")
    if disposition is Disposition.UNREACHABLE:
        return PermanentDeliveryError()
    if disposition is Disposition.REJECTED:
        return Refused(f"whatsapp:{exc.code}")
    if disposition is Disposition.OPERATOR:
        log.error("whatsapp campaign: Graph error %s needs an operator; pausing the channel",
                  exc.code)
        return RateLimited(OPERATOR_PAUSE, f"whatsapp operator error {exc.code}")
    return exc  # Meta-side or network: retried with backoff by the sender


async def link_wamids(store: Store, sent: Sent) -> None:
    """So that Meta's delivery reports reach the campaign row (delivered, read)."""
    result = sent.result
    if isinstance(result, Delivered):
        keys = [message_key(store, w) for w in result.wamids if w]
        if keys:
            await record_sent(store, result.user_id, keys, kind="message",
                              outbox_id=sent.outbox_id)


# --- the registry -----------------------------------------------------------------------------
@dataclass
class CampaignChannels:
    """The deliverers (and their ``on_sent`` hooks and rates) of the configured channels."""

    deliverers: dict[str, Deliverer] = field(default_factory=dict)
    on_sent: dict[str, OnSent] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)


@asynccontextmanager
async def campaign_channels(settings: Settings, store: Store, *,
                            connections: int = 64) -> AsyncIterator[CampaignChannels]:
    """Open a deliverer for each channel configured in ``settings``; closed on exit."""
    channels = CampaignChannels(rates=dict(settings.campaign_rates))
    async with contextlib.AsyncExitStack() as stack:
        if settings.telegram_bot_token:
            bot = Bot(settings.telegram_bot_token,
                      base_url=settings.telegram_api_base_url or "https://api.telegram.org/bot",
                      request=AiohttpRequest(connection_pool_size=connections),
                      get_updates_request=AiohttpRequest(connection_pool_size=1))
            await bot.initialize()  # getMe: a wrong token stops here, not per message
            stack.push_async_callback(bot.shutdown)
            remembered = RememberedIds(store)
            stack.push_async_callback(remembered.aclose)
            channels.deliverers[TELEGRAM] = TelegramCampaignDeliverer(bot)
            channels.on_sent[TELEGRAM] = remembered.on_sent
        if settings.whatsapp_token and settings.whatsapp_phone_number_id:
            texts = WhatsAppTexts.load(default_language=settings.default_language)
            client = GraphClient(settings.whatsapp_api_base_url,
                                 settings.whatsapp_phone_number_id, settings.whatsapp_token)
            await client.start()
            stack.push_async_callback(client.close)

            async def on_whatsapp_sent(sent: Sent) -> None:
                await link_wamids(store, sent)

            channels.deliverers[WHATSAPP] = WhatsAppCampaignDeliverer(
                store, Messenger(client, texts))
            channels.on_sent[WHATSAPP] = on_whatsapp_sent
        yield channels
