"""The outbox: messages for a user that are not the answer to their current message.

Producers (a caseworker's reply, a campaign) write a row in their own transaction; an
:class:`OutboxSender` per channel leases due rows, hands them to the channel's deliverer and
records the result, retrying with backoff. Delivery is at least once; the idempotency key makes
enqueueing the same message twice a no-op.

The crash window: a row is marked ``sent`` only after the platform answered. If the process
dies (``kill -9``) after the platform accepted a message but before that mark is committed, the
row's lease (``SANAD_OUTBOX_LEASE_SECONDS``) runs out and the message is sent again: Telegram
has no idempotency key. At most the rows in flight at the kill are repeated: one per sender
(it delivers one row at a time) plus one per chat whose turn was being answered. A message the
platform never accepted is simply sent after the lease: never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.messages import Button, Outbound
from bot.sendbudget.priority import of_outbox_kind, sending_as
from bot.store import direct, user_keys
from bot.store.crypto import FieldCipher
from bot.store.models import OutboxMessage, User, UserKey
from bot.store.repository import PAUSED, Store, as_utc, mark_outbox_sent, table_of, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
"""The default lease; ``SANAD_OUTBOX_LEASE_SECONDS`` changes it through :func:`configure`."""
_lease = LEASE
DEFAULT_KINDS = ("caseworker", "reply")
"""Rows the generic sender delivers; campaigns have their own paced sender."""
MAX_ATTEMPTS = 8
_PAYLOAD_CONTEXT = b"outbox.payload"


class PermanentDeliveryError(Exception):
    """The platform refused for good (the user blocked the bot): do not retry."""


class LeaseLost(Exception):
    """A row's lease could not be kept while its send waited (another process may take it
    now): the send is dropped here and the row left to whoever holds it."""


class Deliverer(Protocol):
    async def deliver(self, address: str, messages: Sequence[Outbound]) -> None: ...


def configure(lease_seconds: int) -> None:
    """Set the process-wide default lease (from ``Settings.outbox_lease_seconds``)."""
    global _lease
    _lease = timedelta(seconds=lease_seconds)


def current_lease() -> timedelta:
    return _lease


def _seal(cipher: FieldCipher, messages: Sequence[Outbound]) -> bytes:
    payload = [{"text": m.text, "buttons": [[b.id, b.title] for b in m.buttons]}
               for m in messages]
    return cipher.encrypt(orjson.dumps(payload), context=_PAYLOAD_CONTEXT)


def _open(cipher: FieldCipher, blob: bytes) -> list[Outbound]:
    payload = json.loads(cipher.decrypt(blob, context=_PAYLOAD_CONTEXT))
    return [Outbound(text=m["text"], buttons=tuple(Button(id=i, title=t) for i, t in m["buttons"]))
            for m in payload]


async def enqueue(
    db: AsyncSession, cipher: FieldCipher, *, user_id: int, channel: str, kind: str,
    messages: Sequence[Outbound], idempotency_key: str,
) -> bool:
    """Queue ``messages`` for a user in the caller's transaction; False if already queued."""
    exists = await db.scalar(select(OutboxMessage.id).where(
        OutboxMessage.idempotency_key == idempotency_key))
    if exists is not None:
        return False
    now = utcnow()
    db.add(OutboxMessage(
        user_id=user_id, channel=channel, kind=kind, idempotency_key=idempotency_key,
        payload_enc=_seal(cipher, messages), status="pending", attempts=0,
        next_attempt_at=now, created_at=now,
    ))
    return True


async def record_turn_replies(
    db: AsyncConnection, cipher: FieldCipher, *, user_id: int, channel: str,
    messages: Sequence[Outbound], idempotency_key: str, lease: timedelta | None = None,
) -> int:
    """A turn's replies, in the turn's transaction, already leased to the calling process.

    The channel sends them at once and calls :func:`mark_sent`; if the process dies first, the
    lease runs out and an :class:`OutboxSender` delivers them: a committed turn's answer is
    never lost.
    """
    now = utcnow()
    values = {
        "user_id": user_id, "channel": channel, "kind": "reply",
        "idempotency_key": idempotency_key, "payload_enc": _seal(cipher, messages),
        "status": "sending", "attempts": 1, "next_attempt_at": now,
        "lease_until": now + (lease or _lease), "created_at": now,
    }
    row = await direct.run(db, lambda cursor: cursor.one(_INSERT_REPLY, values))
    assert row is not None
    return int(row[0])


def _insert_reply(dialect: str) -> Any:
    table = table_of(OutboxMessage)
    columns = ("user_id", "channel", "kind", "idempotency_key", "payload_enc", "status",
               "attempts", "next_attempt_at", "lease_until", "created_at")
    return (insert(table).values({name: bindparam(name) for name in columns})
            .returning(table.c.id))


_INSERT_REPLY = direct.Statement("outbox-reply", _insert_reply)
"""A hot statement of the turn (bot.store.direct): no ORM object, no flush here."""


async def mark_sent(store: Store, ids: Sequence[int]) -> None:
    """The channel delivered these rows itself (the fast path of a turn's replies)."""
    if ids:
        await store.write(lambda cursor: mark_outbox_sent(cursor, ids))


async def mark_failed(store: Store, ids: Sequence[int], *, error: str) -> None:
    """The platform refused for good (the user blocked the bot): never retry."""
    if ids:
        async with store.session() as db:
            await db.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(
                status="failed", lease_until=None, last_error=error[:64]))


async def release(store: Store, ids: Sequence[int], *, error: str) -> None:
    """The channel could not deliver: hand the rows to the background sender to retry."""
    if ids:
        async with store.session() as db:
            await db.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(
                status="pending", lease_until=None, last_error=error[:64],
                next_attempt_at=utcnow() + timedelta(seconds=5)))


_guard: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "sanad_outbox_lease_guard", default=None)


def check_lease() -> None:
    """Raise :class:`LeaseLost` when the rows being sent here are no longer surely ours. A
    sender calls it right before the platform call, after any wait (the send budget's)."""
    check = _guard.get()
    if check is not None and not check():
        raise LeaseLost()


class LeaseKeeper:
    """Keeps the leases of the outbox rows this process is sending while their sends wait.

    Under a rush a send may wait in the send budget's queue longer than the lease; without
    renewal another process's :class:`OutboxSender` would take the row and send it too. Every
    ``lease / 3`` the keeper extends the lease of each row it holds, in one statement per
    attempt count. A row is held with the ``attempts`` its lease was taken at, and a renewal
    only touches a row still ``sending`` at those attempts: a claim by anyone else adds an
    attempt (in the same transaction as its lease), so a row taken meanwhile is never renewed,
    only dropped. A row counts as ours until ``margin`` (default ``lease / 3``) before the end of
    the lease we know of (measured from *before* the statement that set it); a send checks this
    right before the platform call (:func:`check_lease`). So two processes never both hold a
    lease on a row they send, as long as a platform call takes less than ``margin``.
    """

    def __init__(self, store: Store, *, lease: timedelta | None = None,
                 margin: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._lease = lease
        self._margin = margin
        self.clock = clock
        self._held: dict[int, tuple[int, float]] = {}
        """Row id -> (its attempts when leased, the lease's end on ``clock``)."""

    @property
    def lease(self) -> timedelta:
        """The lease a renewal gives (default: the process's, :func:`configure`)."""
        return self._lease or _lease

    @property
    def margin(self) -> float:
        return self.lease.total_seconds() / 3 if self._margin is None else self._margin

    def hold(self, ids: Sequence[int], *, attempts: int, since: float,
             lease: timedelta | None = None) -> None:
        """Rows leased (for ``lease``, default the keeper's) at ``attempts`` by a transaction
        that began at ``since`` (``clock``)."""
        end = since + (lease or self.lease).total_seconds()
        for row_id in ids:
            self._held[row_id] = (attempts, end)

    def drop(self, ids: Sequence[int]) -> None:
        for row_id in ids:
            self._held.pop(row_id, None)

    def holds(self, ids: Sequence[int]) -> bool:
        now = self.clock()
        return all(row_id in self._held and self._held[row_id][1] - self.margin > now
                   for row_id in ids)

    def held(self) -> int:
        return len(self._held)

    @contextlib.contextmanager
    def sending(self, ids: Sequence[int]) -> Iterator[None]:
        """Sends in this block go out only while these rows are ours; let go of them after."""
        rows = tuple(ids)
        token = _guard.set(lambda: self.holds(rows))
        try:
            yield
        finally:
            _guard.reset(token)
            self.drop(rows)

    async def renew(self) -> int:
        """Extend the lease of every held row still ours; drop the others. Rows renewed."""
        asked = dict(self._held)
        if not asked:
            return 0
        by_attempts: dict[int, list[int]] = {}
        for row_id, (attempts, _) in asked.items():
            by_attempts.setdefault(attempts, []).append(row_id)
        began = self.clock()
        until = utcnow() + self.lease
        kept: set[int] = set()
        table = table_of(OutboxMessage)
        async with self.store.session() as db:
            for attempts, ids in by_attempts.items():
                for start in range(0, len(ids), 500):
                    result = await db.execute(
                        update(table).where(table.c.id.in_(ids[start:start + 500]),
                                            table.c.status == "sending",
                                            table.c.attempts == attempts)
                        .values(lease_until=until).returning(table.c.id))
                    kept.update(int(i) for i in result.scalars())
        end = began + self.lease.total_seconds()
        for row_id, (attempts, _) in asked.items():
            if row_id not in self._held:
                continue  # sent and let go meanwhile
            if row_id in kept:
                self._held[row_id] = (attempts, end)
            else:
                del self._held[row_id]  # settled, or taken by another process
        return len(kept)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.lease.total_seconds() / 3)
            if stop.is_set():
                return
            try:
                await self.renew()
            except Exception as exc:  # the rows' sends stop once the leases run short
                log.warning("outbox: leases not renewed (%s)", type(exc).__name__)


def held_for_pause(message: OutboxMessage, paused_at: datetime | None) -> bool:
    """Whether contact being paused stops this row. Everything is held while the user has
    not said it is OK to continue here, except the answers to what they wrote after the
    pause (a turn's own replies): those they are waiting for, on the screen they hold."""
    if paused_at is None:
        return False
    return message.kind != "reply" or as_utc(message.created_at) <= as_utc(paused_at)


@dataclass(frozen=True)
class _Leased:
    id: int
    user_key: str
    address: str
    messages: list[Outbound]
    kind: str = "reply"
    attempts: int = 1


class OutboxSender:
    """Delivers one channel's due outbox rows (optionally only one user's, for the terminal)."""

    def __init__(self, store: Store, channel: str, deliverer: Deliverer, *,
                 user_key: str | None = None, batch: int = 20,
                 kinds: tuple[str, ...] = DEFAULT_KINDS, lease: timedelta | None = None,
                 keeper: LeaseKeeper | None = None) -> None:
        self.store = store
        self.lease = lease or _lease
        self.keeper = keeper
        """Keeps the leased rows' leases while their sends wait (the send budget)."""
        self.channel = channel
        self.deliverer = deliverer
        self.user_key = user_key
        self.batch = batch
        self.kinds = kinds

    async def run(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception as exc:  # the loop must survive a database outage
                log.warning("outbox: delivery round failed (%s); retrying", type(exc).__name__)
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)

    async def run_once(self) -> int:
        """Lease, deliver and settle one batch; returns how many rows were delivered."""
        since = time.monotonic()
        leased = await self._lease()
        keeper = self.keeper
        if keeper is not None:
            for row in leased:
                keeper.hold([row.id], attempts=row.attempts, since=since, lease=self.lease)
        delivered = 0
        for row in leased:
            try:
                with sending_as(of_outbox_kind(row.kind)), (  # the send budget's priority
                        keeper.sending([row.id]) if keeper is not None
                        else contextlib.nullcontext()):
                    await self.deliverer.deliver(row.address, row.messages)
            except LeaseLost:
                log.warning("outbox: message %s left to the process holding it now", row.id)
                continue
            except PermanentDeliveryError:
                await self._settle(row, error="refused", permanent=True)
                continue
            except Exception as exc:
                await self._settle(row, error=type(exc).__name__[:64])
                continue
            await self._settle(row)
            delivered += 1
        return delivered

    async def _lease(self) -> list[_Leased]:
        now = utcnow()
        async with self.store.session() as db:
            due = and_(
                OutboxMessage.channel == self.channel, OutboxMessage.kind.in_(self.kinds),
                or_(and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
                    and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now)),
            )
            query = (select(OutboxMessage, User.key, User.address_enc, User.contact_paused_at,
                            UserKey.key_enc)
                     .join(User, User.id == OutboxMessage.user_id)
                     .outerjoin(UserKey, UserKey.user_id == OutboxMessage.user_id).where(due)
                     .order_by(OutboxMessage.id).limit(self.batch))
            if self.user_key is not None:
                query = query.where(User.key == self.user_key)
            if db.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=OutboxMessage)
            rows = (await db.execute(query)).all()
            leased = []
            ring = user_keys.KeyRing(self.store.cipher)  # address, replies: the user's key
            for message, key, address_enc, paused_at, key_enc in rows:
                if held_for_pause(message, paused_at):
                    message.status, message.last_error = PAUSED, "contact paused"
                    continue
                message.status, message.lease_until = "sending", now + self.lease
                message.attempts += 1
                if address_enc is None:
                    message.status, message.last_error = "failed", "no address"
                    continue
                cipher = ring.cipher(key_enc)
                leased.append(_Leased(
                    message.id, key,
                    cipher.decrypt_text(address_enc, context=b"users.address"),
                    _open(cipher, message.payload_enc), message.kind, message.attempts,
                ))
        return leased

    async def _settle(self, row: _Leased, *, error: str | None = None,
                      permanent: bool = False) -> None:
        async with self.store.session() as db:
            message = await db.get(OutboxMessage, row.id)
            if message is None:  # erased meanwhile
                return
            if error is None:
                message.status, message.sent_at, message.lease_until = "sent", utcnow(), None
                return
            message.last_error = error
            if permanent or message.attempts >= MAX_ATTEMPTS:
                message.status = "failed"
                if permanent:
                    await db.execute(update(User).where(User.key == row.user_key)
                                     .values(unreachable=True))
                log.warning("outbox: message %s failed for good (%s)", row.id, error)
                return
            backoff = timedelta(seconds=min(300, 2 ** message.attempts))
            message.status, message.lease_until = "pending", None
            message.next_attempt_at = as_utc(utcnow()) + backoff
