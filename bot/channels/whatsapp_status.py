"""Meta's delivery reports (``statuses``) for messages we sent, and what a late failure means.

Every message we send is tracked (:mod:`bot.channels.whatsapp_store`), the turn's own answers
included, so a ``failed`` report is acted on whatever path the message took:

* a failure that may pass (Meta overloaded, a rate limit): the message goes out again through
  the outbox, as a failed outbox delivery would (replies and caseworker messages; campaigns
  keep their own accounting);
* outside the 24-hour window (131047): the row comes back, the window notice goes, it is held;
* the user cannot receive (131026): they are marked unreachable;
* the user's marketing limit (131049): a campaign message is held until the user writes;
* the user stopped marketing messages in WhatsApp (131050): an opt-out of campaigns;
* a message that carried the emergency numbers (the turn raised ``EmergencyTriggered``, or it
  is the emergency text) and did not arrive: a warning in the log (no number, no text) and
  ``sanad_whatsapp_emergency_total{outcome="undelivered"}``, so that someone looks.

Codes: developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from bot.channels.whatsapp_errors import Disposition, classify
from bot.channels.whatsapp_identity import Identities
from bot.channels.whatsapp_payload import StatusUpdate
from bot.channels.whatsapp_store import (
    CHANNEL,
    Tracked,
    apply_status,
    campaign_row_undelivered,
    message_key,
    redeliver,
    stop_marketing,
    user_key_of,
)
from bot.config import SUPPORTED_LANGUAGES
from bot.i18n import UiCatalog
from bot.messages import Outbound, UserRef
from bot.store.db import DatabaseUnavailable
from bot.store.repository import Store
from handoff.queue import raise_to_urgent

log = logging.getLogger(__name__)

Count = Callable[[str, str], None]
_PASSING = frozenset({Disposition.RETRY, Disposition.RATE_LIMITED})


class EmergencyText:
    """Recognises a message that carries the emergency numbers, in any language: the
    emergency flow's opening words, or the apology sent when the bot cannot answer."""

    KEYS = ("emergency.intro", "errors.unavailable")

    def __init__(self, ui: UiCatalog) -> None:
        self.openings = tuple({ui.text(lang, key) for lang in SUPPORTED_LANGUAGES
                               for key in self.KEYS})

    def __call__(self, message: Outbound) -> bool:
        return any(opening in message.text for opening in self.openings)


class Recording:
    """Messages this process sent and has not recorded yet (keyed ``wamid`` s).

    Meta may report a failure before our own write of the ``wamid`` is committed; a report
    about one of these waits for that write (at most :attr:`WAIT` seconds after the send), so
    that it finds the message instead of passing unnoticed.
    """

    WAIT = 10.0
    MAX_PENDING = 10_000

    def __init__(self) -> None:
        self._pending: dict[str, tuple[float, asyncio.Event]] = {}

    def sent(self, keys: Iterable[str]) -> None:
        if len(self._pending) > self.MAX_PENDING:  # writes that failed: forget the old ones
            cutoff = time.monotonic() - self.WAIT
            self._pending = {k: v for k, v in self._pending.items() if v[0] > cutoff}
        for key in keys:
            self._pending.setdefault(key, (time.monotonic(), asyncio.Event()))

    def recorded(self, keys: Iterable[str]) -> None:
        for key in keys:
            entry = self._pending.pop(key, None)
            if entry is not None:
                entry[1].set()

    async def written(self, key: str) -> None:
        entry = self._pending.get(key)
        if entry is None:
            return
        left = self.WAIT - (time.monotonic() - entry[0])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(entry[1].wait(), timeout=max(0.0, left))
        self._pending.pop(key, None)


class DeliveryReports:
    def __init__(self, store: Store, identities: Identities, *, wake: Callable[[], None],
                 count: Count, recording: Recording | None = None) -> None:
        self.store = store
        self.identities = identities
        self.wake = wake
        self.count = count
        self.recording = recording or Recording()

    async def apply(self, statuses: Sequence[StatusUpdate]) -> int:
        """Record each report; the HTTP status to answer (503: Meta sends them again)."""
        try:
            for update in statuses:
                self.count("statuses", update.status)
                await self._one(update)
        except DatabaseUnavailable:
            self.count("statuses", "database_unavailable")
            return 503
        return 200

    async def _one(self, update: StatusUpdate) -> None:
        disposition = (classify(update.error_code, 400) if update.status == "failed"
                       else None)
        key = message_key(self.store, update.wamid)
        await self.recording.written(key)
        tracked = await apply_status(self.store, key, update.status, update.error_code,
                                     retry=disposition in _PASSING)
        if disposition is None:
            return
        log.info("whatsapp: a sent message failed (error %s)", update.error_code)
        if tracked is None:
            self.count("statuses", "failed_untracked")
        if tracked is not None and tracked.urgent:
            log.warning("whatsapp: a message with the emergency numbers was not delivered "
                        "(Graph error %s; %s); raising an urgent case", update.error_code,
                        "sent again" if tracked.retried else "not sent again")
            self.count("emergency", "undelivered")
            async with self.store.session() as db:  # a person must follow up
                await raise_to_urgent(db, user_id=tracked.user_id)
        if tracked is not None and tracked.retried:
            self.count("statuses", "retried")
            self.wake()
        if disposition is Disposition.UNREACHABLE:
            user = await self._user(update, tracked)
            if user is not None:
                await self.store.mark_unreachable(user)
        elif (disposition is Disposition.OUTSIDE_WINDOW and tracked is not None
              and tracked.outbox_id is not None and tracked.kind == "message"):
            await redeliver(self.store, tracked.outbox_id)
            self.wake()
        elif disposition in (Disposition.MARKETING_LIMITED, Disposition.MARKETING_STOPPED):
            await self._marketing(update, tracked, disposition)

    async def _marketing(self, update: StatusUpdate, tracked: Tracked | None,
                         disposition: Disposition) -> None:
        stopped = disposition is Disposition.MARKETING_STOPPED
        if tracked is not None and tracked.row_kind == "campaign" and tracked.outbox_id:
            await campaign_row_undelivered(self.store, tracked.outbox_id, held=not stopped,
                                           error=f"whatsapp:{update.error_code}")
        if stopped:
            user = await self._user(update, tracked)
            if user is not None and await stop_marketing(self.store, user):
                self.count("marketing", "stopped")

    async def _user(self, update: StatusUpdate, tracked: Tracked | None) -> UserRef | None:
        """Whom a report is about: the tracked message's user, else the recipient's ids."""
        if tracked is not None:
            key = await user_key_of(self.store, tracked.user_id)
            return UserRef(CHANNEL, key) if key else None
        if update.recipient is None and update.recipient_bsuid is None:
            return None
        return await self.identities.resolve(update.recipient, update.recipient_bsuid)
