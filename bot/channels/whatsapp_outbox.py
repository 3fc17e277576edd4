"""The outbox sender of the WhatsApp channel: the shared one, plus two outcomes WhatsApp needs.

:class:`bot.outbox.OutboxSender` knows "sent", "retry later" and "refused: the user is
unreachable". WhatsApp adds "held until the user writes" (outside the 24-hour window, or after
a quick exit) and "refused, but not the user's fault" (the row fails without marking the user
unreachable). It also links each sent message to its row, so that Meta's delivery reports
update the row, and it can be woken when held rows are released instead of waiting a round.

Run WhatsApp's outbox with this class, not the plain ``OutboxSender``: the plain one would
retry a held message until it gave up on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.channels.whatsapp_status import Recording
from bot.channels.whatsapp_store import CHANNEL, hold, message_key, record_sent, reject
from bot.channels.whatsapp_window import Held, Rejected, WindowedDeliverer
from bot.outbox import OutboxSender, PermanentDeliveryError
from bot.store.repository import Store

log = logging.getLogger(__name__)


class WhatsAppOutbox(OutboxSender):
    def __init__(self, store: Store, deliverer: WindowedDeliverer, *, batch: int = 20,
                 recording: Recording | None = None) -> None:
        super().__init__(store, CHANNEL, deliverer, batch=batch)
        self.windowed = deliverer
        self.recording = recording or Recording()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Deliver now (rows were released), not at the next round."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                sent = await self.run_once()
            except Exception as exc:  # the loop must survive a database outage
                log.warning("whatsapp outbox: round failed (%s); retrying", type(exc).__name__)
                sent = 0
            if not sent and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)

    async def run_once(self) -> int:
        delivered = 0
        for row in await self._lease():
            try:
                delivered_to = await self.windowed.deliver_tracked(row.address, row.messages)
            except Held as held:
                if not await hold(self.store, row.id, f"held:{held.reason}",
                                  user_id=held.who.user_id,
                                  seen_inbound_at=held.who.last_inbound_at):
                    self.wake()  # the user wrote meanwhile: deliver it now
                continue
            except Rejected as exc:
                await reject(self.store, row.id, exc.code)
                continue
            except PermanentDeliveryError:
                await self._settle(row, error="refused", permanent=True)
                continue
            except Exception as exc:
                await self._settle(row, error=type(exc).__name__[:64])
                continue
            sent = [(message_key(self.store, w), p) for w, p in zip(
                delivered_to.wamids, delivered_to.positions or [0] * len(delivered_to.wamids),
                strict=True) if w]
            keys = [k for k, _ in sent]
            self.recording.sent(keys)  # a report arriving meanwhile waits for the record
            try:
                await self._settle(row)
                if sent:  # so that Meta's delivery reports find their row (and its message)
                    await record_sent(self.store, delivered_to.user_id, keys, kind="message",
                                      outbox_id=row.id, positions=[p for _, p in sent],
                                      urgent=delivered_to.urgent)
            finally:
                self.recording.recorded(keys)
            delivered += 1
        return delivered
