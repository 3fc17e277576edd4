"""What the WhatsApp channel remembers: sent messages and their delivery state, held outbox rows.

``whatsapp_messages`` maps a sent message to its outbox row so that Meta's status webhooks
(sent → delivered → read, or failed) update that row. It stores a keyed hash of the ``wamid``,
never the ``wamid`` itself: a ``wamid`` is base64 around the recipient's phone number.

Outbox rows of this channel gain one status, ``held``: a message that may not be sent outside
the 24-hour window waits, untouched by the outbox's retries, until the user writes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.channels.whatsapp_errors import OUTSIDE_WINDOW_CODES
from bot.messages import Outbound, QuickExit
from bot.outbox import enqueue
from bot.store.models import Base, EventRecord, OutboxMessage, User
from bot.store.repository import Store, as_utc, utcnow

CHANNEL = "whatsapp"
HELD = "held"
_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
_TRACKED = ("sent", "delivered", "read")
"""Outbox statuses that a delivery report may move forward."""


class WhatsAppMessage(Base):
    """A message we sent on WhatsApp (an outbox delivery or a window notice) and its fate."""

    __tablename__ = "whatsapp_messages"

    message_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Keyed hash of the ``wamid`` (which embeds the phone number)."""
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # message | notice
    status: Mapped[str] = mapped_column(String(12))  # sent | delivered | read | failed
    error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class Recipient:
    """What deciding how to reach a user needs (no address: the outbox hands that over)."""

    user_id: int
    language: str | None
    last_inbound_at: datetime | None


@dataclass(frozen=True, slots=True)
class Tracked:
    """A sent message a status report was about."""

    user_id: int
    outbox_id: int | None
    kind: str


def message_key(store: Store, wamid: str) -> str:
    """The keyed, one-way name of a ``wamid``: for de-duplication and delivery reports."""
    return store.pseudonyms.user_key("whatsapp-message", wamid)


async def recipient(store: Store, user_key: str) -> Recipient | None:
    async with store.session() as db:
        row = (await db.execute(
            select(User.id, User.language, User.last_inbound_at).where(User.key == user_key)
        )).first()
    if row is None:
        return None
    last = row.last_inbound_at
    return Recipient(row.id, row.language, as_utc(last) if last else None)


async def notified_since(store: Store, user_id: int, since: datetime | None) -> bool:
    """Was a window notice sent after ``since`` (the user's last message)?"""
    query = select(func.count()).select_from(WhatsAppMessage).where(
        WhatsAppMessage.user_id == user_id, WhatsAppMessage.kind == "notice")
    if since is not None:
        query = query.where(WhatsAppMessage.created_at > since)
    async with store.session() as db:
        return bool(await db.scalar(query))


async def closed_by_meta(store: Store, user_id: int, since: datetime) -> bool:
    """Did Meta answer "outside the window" (131047) for a message sent after ``since``?"""
    async with store.session() as db:
        found = await db.scalar(select(func.count()).select_from(WhatsAppMessage).where(
            WhatsAppMessage.user_id == user_id,
            WhatsAppMessage.error_code.in_(OUTSIDE_WINDOW_CODES),
            WhatsAppMessage.created_at > since,
        ))
    return bool(found)


async def record_sent(store: Store, user_id: int, message_keys: Sequence[str], *, kind: str,
                      outbox_id: int | None = None) -> None:
    now = utcnow()
    async with store.session() as db:
        known = set(await db.scalars(select(WhatsAppMessage.message_key).where(
            WhatsAppMessage.message_key.in_(message_keys))))
        db.add_all(WhatsAppMessage(
            message_key=key, user_id=user_id, outbox_id=outbox_id, kind=kind, status="sent",
            created_at=now, updated_at=now,
        ) for key in dict.fromkeys(message_keys) if key not in known)


async def apply_status(store: Store, message_key: str, status: str,
                       error_code: int | None) -> Tracked | None:
    """Record a delivery report (never moving backwards) and roll it up into the outbox row:
    its status is the least advanced of its messages', or ``failed`` if one failed."""
    async with store.session() as db:
        message = await db.get(WhatsAppMessage, message_key)
        if message is None:
            return None  # an answer within a turn, or a row erased since: nothing to update
        if _RANK.get(status, 0) > _RANK.get(message.status, 0):
            message.status, message.updated_at = status, utcnow()
            if error_code is not None:
                message.error_code = error_code
        tracked = Tracked(message.user_id, message.outbox_id, message.kind)
        if message.outbox_id is not None:
            await db.flush()
            await _roll_up(db, message.outbox_id)
    return tracked


async def _roll_up(db: AsyncSession, outbox_id: int) -> None:
    statuses = list(await db.scalars(select(WhatsAppMessage.status).where(
        WhatsAppMessage.outbox_id == outbox_id, WhatsAppMessage.kind == "message")))
    if not statuses:
        return
    failed = "failed" in statuses
    overall = "failed" if failed else min(statuses, key=lambda s: _RANK.get(s, 0))
    codes = await db.scalars(select(WhatsAppMessage.error_code).where(
        WhatsAppMessage.outbox_id == outbox_id, WhatsAppMessage.error_code.is_not(None)))
    code = next(iter(codes), None)
    await db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id, OutboxMessage.status.in_(_TRACKED))
        .values(status=overall, last_error=f"whatsapp:{code}" if failed else None)
    )


async def hold(store: Store, outbox_id: int, reason: str, *, user_id: int,
               seen_inbound_at: datetime | None) -> bool:
    """Park a row until the user writes (the lease's attempt is given back: nothing failed).

    Unless the user wrote since the decision to hold was taken (``seen_inbound_at``): their
    turn's release may already have run and missed this row, so it is due again at once. The
    user's row is locked as a turn locks it, so a turn and a hold never interleave. False when
    the row was made due instead of held.
    """
    async with store.session() as db:
        query = select(User.last_inbound_at).where(User.id == user_id)
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        last = await db.scalar(query)
        wrote = last is not None and (seen_inbound_at is None or as_utc(last) > seen_inbound_at)
        values: dict[str, object] = (
            {"status": "pending", "next_attempt_at": utcnow(), "last_error": None} if wrote
            else {"status": HELD, "last_error": reason})
        await db.execute(
            update(OutboxMessage).where(OutboxMessage.id == outbox_id)
            .values(lease_until=None, **values,
                    attempts=case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1),
                                  else_=0))
        )
    return not wrote


async def release_held(store: Store, user_key: str) -> int:
    """The user wrote: their held rows are due now (inside the new window)."""
    user_id = select(User.id).where(User.key == user_key).scalar_subquery()
    async with store.session() as db:
        result = await db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.user_id == user_id, OutboxMessage.channel == CHANNEL,
                   OutboxMessage.status == HELD)
            .values(status="pending", last_error=None, next_attempt_at=utcnow())
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def hidden_by_exit(store: Store, user_id: int, since: datetime | None) -> bool:
    """Was the user's last message a quick exit? (The engine records a ``QuickExit`` event in
    the same turn that sets ``last_inbound_at``; a later message moves that time past it.)"""
    query = select(func.count()).select_from(EventRecord).where(
        EventRecord.user_id == user_id, EventRecord.name == QuickExit.__name__)
    if since is not None:
        query = query.where(EventRecord.created_at >= since)
    async with store.session() as db:
        return bool(await db.scalar(query))


async def redeliver(store: Store, outbox_id: int) -> None:
    """Meta bounced a delivered row as outside the window: deliver it again (the deliverer
    now sees the window closed, notifies and holds it)."""
    async with store.session() as db:
        await db.execute(
            update(OutboxMessage).where(OutboxMessage.id == outbox_id)
            .values(status="pending", next_attempt_at=utcnow(), lease_until=None,
                    last_error="whatsapp:window")
        )


async def reject(store: Store, outbox_id: int, code: int | None) -> None:
    """Meta refused this row for good, for a reason that is not the user's: failed, but the
    user stays reachable."""
    async with store.session() as db:
        await db.execute(
            update(OutboxMessage).where(OutboxMessage.id == outbox_id)
            .values(status="failed", lease_until=None, last_error=f"whatsapp:{code}")
        )


async def queue_replies(store: Store, user_key: str, messages: Sequence[Outbound],
                        idempotency_key: str) -> bool:
    """Hand the rest of a turn's answers to the outbox (Meta failed after some went out)."""
    async with store.session() as db:
        user_id = await db.scalar(select(User.id).where(User.key == user_key))
        if user_id is None:
            return False
        return await enqueue(db, store.cipher, user_id=user_id, channel=CHANNEL, kind="reply",
                             messages=messages, idempotency_key=idempotency_key)
