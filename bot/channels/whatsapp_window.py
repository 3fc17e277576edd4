"""The 24-hour customer-service window: free-form messages only while it is open.

WhatsApp lets a business send free-form messages to a user for 24 hours after the user's last
message (``User.last_inbound_at``); after that only an approved template may go out. Messages
that arrive outside a turn (a caseworker's reply after a pause, a campaign) therefore go like
this:

* inside the window: sent as they are;
* outside it, or when Meta says so (error 131047, at once or later in a ``failed`` status): the
  neutral new-message template goes out (once per pause: not again until the user writes), and
  the message is *held* in the outbox. When the user replies, the window is open again and the
  channel releases it;
* after a quick exit (the user's last message hid the chat): held too, and no notice either,
  until the user writes again.

:class:`WindowedDeliverer` is the outbox's deliverer for WhatsApp; it signals "held" with
:class:`Held`, which :class:`bot.channels.whatsapp_outbox.WhatsAppOutbox` turns into the
row's ``held`` status.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.channels.whatsapp_api import GraphError
from bot.channels.whatsapp_errors import Disposition
from bot.channels.whatsapp_send import Messenger
from bot.channels.whatsapp_store import (
    CHANNEL,
    Recipient,
    closed_by_meta,
    hidden_by_exit,
    message_key,
    notified_since,
    recipient,
    record_sent,
)
from bot.messages import Outbound
from bot.outbox import PermanentDeliveryError
from bot.store.repository import Store, utcnow

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
MARGIN = timedelta(minutes=5)
"""Stop free-form messages a little early: one sent at 23:59:59 may reach Meta too late."""


class Held(Exception):
    """The message must wait until the user writes: outside the window (the user was
    notified), or after a quick exit (nobody is told anything)."""

    def __init__(self, reason: str, who: Recipient) -> None:
        super().__init__(reason)
        self.reason = reason
        self.who = who


class Rejected(Exception):
    """Meta refused the message for good, for a reason that is not the user's."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"refused by the Graph API (error {code})")
        self.code = code


@dataclass(frozen=True, slots=True)
class Delivered:
    """Who got a row's messages, and their ``wamid``s (to match Meta's delivery reports)."""

    user_id: int
    wamids: list[str]
    positions: list[int] = field(default_factory=list)
    """``positions[i]``: which of the row's messages ``wamids[i]`` was part of."""
    urgent: frozenset[int] = frozenset()
    """Positions of the messages that carried the emergency numbers."""


def never_urgent(message: Outbound) -> bool:
    return False


class WindowedDeliverer:
    """The outbox ``Deliverer`` of the WhatsApp channel."""

    def __init__(self, store: Store, messenger: Messenger, *,
                 clock: Callable[[], datetime] = utcnow,
                 is_urgent: Callable[[Outbound], bool] = never_urgent) -> None:
        self.store = store
        self.messenger = messenger
        self.clock = clock
        self.is_urgent = is_urgent

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> None:
        await self.deliver_tracked(address, messages)

    async def deliver_tracked(self, address: str, messages: Sequence[Outbound]) -> Delivered:
        """Send inside the window (who, and the ``wamid``s), or raise :class:`Held`.

        Raises :class:`PermanentDeliveryError` when the user cannot be reached,
        :class:`Rejected` when Meta refuses the message itself, and :class:`GraphError` when
        trying again later may work (the outbox backs off).
        """
        user = self.store.user_ref(CHANNEL, address)
        who = await recipient(self.store, user.key)
        if who is None:
            raise PermanentDeliveryError()  # erased meanwhile: nobody to deliver to
        if await hidden_by_exit(self.store, who.user_id, who.last_inbound_at):
            raise Held("exit", who)  # the user hid the chat: not even a notice until they write
        if not await self.window_open(who):
            await self.notify(address, who)
            raise Held("window", who)
        sent: list[str] = []
        positions: list[int] = []
        try:
            for position, message in enumerate(messages):
                wamids = await self.messenger.send(address, message, who.language)
                sent += wamids
                positions += [position] * len(wamids)
        except GraphError as exc:
            if exc.disposition is Disposition.OUTSIDE_WINDOW:
                await self.notify(address, who)
                raise Held("window", who) from None
            raise _outcome(exc) from None
        urgent = frozenset(i for i, message in enumerate(messages) if self.is_urgent(message))
        return Delivered(who.user_id, sent, positions, urgent)

    async def window_open(self, who: Recipient) -> bool:
        last = who.last_inbound_at
        if last is None or self.clock() - last >= WINDOW - MARGIN:
            return False
        return not await closed_by_meta(self.store, who.user_id, last)

    async def notify(self, address: str, who: Recipient) -> None:
        """Send the new-message template, unless one went out since the user last wrote."""
        if await notified_since(self.store, who.user_id, who.last_inbound_at):
            return
        try:
            wamid = await self.messenger.send_notice(address, who.language)
        except GraphError as exc:
            if exc.disposition in (Disposition.RATE_LIMITED, Disposition.RETRY):
                raise  # try again later; the message is not held yet
            if exc.disposition is Disposition.UNREACHABLE:
                raise PermanentDeliveryError() from None
            log.error("whatsapp: the new-message template was refused (Graph error %s); the "
                      "message waits until the user writes", exc.code)
            return
        key = message_key(self.store, wamid or uuid.uuid4().hex)  # no id: still "notified"
        await record_sent(self.store, who.user_id, [key], kind="notice")


REFUSED = frozenset({Disposition.REJECTED, Disposition.MARKETING_LIMITED,
                     Disposition.MARKETING_STOPPED})
"""Refused for good for this message, through no fault of the user's reachability (the two
marketing codes concern marketing templates, which only campaigns send)."""


def _outcome(exc: GraphError) -> Exception:
    """The exception the outbox understands for a send that failed after retries."""
    if exc.disposition is Disposition.UNREACHABLE:
        return PermanentDeliveryError()
    if exc.disposition in REFUSED:
        log.warning("whatsapp: a queued message was refused (Graph error %s)", exc.code)
        return Rejected(exc.code)
    if exc.disposition is Disposition.OPERATOR:
        log.error("whatsapp: sending needs an operator (Graph error %s); the message is kept",
                  exc.code)
    return exc

