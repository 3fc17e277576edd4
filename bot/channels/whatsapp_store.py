"""What the WhatsApp channel remembers: sent messages and their fate, held rows, other ids.

``whatsapp_messages`` maps *every* message we sent (a turn's answers on the webhook's fast path,
outbox deliveries, window notices) to its outbox row and its place in it, so that Meta's status
webhooks (sent → delivered → read, or failed) update that row, and a late ``failed`` can be
retried or raised. It stores a keyed hash of the ``wamid``, never the ``wamid`` itself: a
``wamid`` is base64 around the recipient's phone number.

``whatsapp_identities`` says which user a business-scoped user id (BSUID) belongs to, as keyed
hashes too, so that a user first known by their phone number is still themselves when Meta
hides the number (``bot.channels.whatsapp_identity``). ``whatsapp_marketing_stops`` keeps the
topics of an opt-out that came from WhatsApp's "stop marketing messages", to restore them if
the user resumes there.

Outbox rows of this channel gain one status, ``held``: a message that may not be sent outside
the 24-hour window waits, untouched by the outbox's retries, until the user writes again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.channels.whatsapp_errors import OUTSIDE_WINDOW_CODES
from bot.messages import Outbound, QuickExit, UserRef
from bot.outbox import MAX_ATTEMPTS, enqueue
from bot.outbox import _open as open_payload  # as bot.outreach.sender does: one payload format
from bot.outreach import consent, records
from bot.outreach.models import CampaignDelivery
from bot.store import direct, user_keys
from bot.store.models import Base, EventRecord, OutboxMessage, User
from bot.store.repository import (
    Store,
    as_utc,
    dialect_insert,
    mark_outbox_sent,
    table_of,
    utcnow,
)

CHANNEL = "whatsapp"
HELD = "held"
_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
_TRACKED = ("sent", "delivered", "read")
"""Outbox statuses that a delivery report may move forward."""
RETRIED_KINDS = frozenset({"reply", "caseworker"})
"""Outbox rows whose messages are sent again after a late, passing failure (campaigns are
not: their sender keeps its own accounting, and a repeated tip is worse than a missing one)."""
RETRY_PREFIX = "wa-retry:"


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
    position: Mapped[int] = mapped_column(Integer, default=0)
    """Which of the outbox row's messages this is (to send that one again)."""
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    """It carried the emergency numbers: a failure must be seen."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WhatsAppIdentity(Base):
    """A business-scoped user id (keyed hash) and the user it belongs to."""

    __tablename__ = "whatsapp_identities"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WhatsAppMarketingStop(Base):
    """The user stopped marketing messages in WhatsApp: the topics their opt-in had."""

    __tablename__ = "whatsapp_marketing_stops"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    topics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
    urgent: bool = False
    row_kind: str | None = None
    """The outbox row's kind (reply, caseworker, campaign), if the message had a row."""
    retried: bool = False
    """A failure that may pass: the message was queued again."""


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message of an outbox row that Meta accepted."""

    key: str
    """The keyed hash of its ``wamid`` (:func:`message_key`)."""
    position: int
    urgent: bool = False


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
                      outbox_id: int | None = None, positions: Sequence[int] = (),
                      urgent: Collection[int] = ()) -> None:
    """Track sent messages; ``positions[i]`` is the row message that ``message_keys[i]`` was
    part of, ``urgent`` the positions that carried the emergency numbers."""
    now = utcnow()
    places = dict(zip(message_keys, positions, strict=False))
    async with store.session() as db:
        known = set(await db.scalars(select(WhatsAppMessage.message_key).where(
            WhatsAppMessage.message_key.in_(message_keys))))
        db.add_all(WhatsAppMessage(
            message_key=key, user_id=user_id, outbox_id=outbox_id, kind=kind, status="sent",
            position=places.get(key, 0), urgent=places.get(key, 0) in urgent,
            created_at=now, updated_at=now,
        ) for key in dict.fromkeys(message_keys) if key not in known)


def _track_query(dialect: str) -> Any:
    """``INSERT ... SELECT``: the user's id from their key, nothing if the message is known."""
    table, users = table_of(WhatsAppMessage), table_of(User)
    names = ("message_key", "outbox_id", "kind", "status", "position", "urgent", "created_at",
             "updated_at")
    source = select(users.c.id, *(bindparam(n, type_=table.c[n].type) for n in names)
                    ).where(users.c.key == bindparam("user_key"))
    return (dialect_insert(dialect, WhatsAppMessage)
            .from_select(["user_id", *names], source).on_conflict_do_nothing())


_TRACK = direct.Statement("whatsapp-track", _track_query)


async def answered(store: Store, user_key: str, outbox_ids: Sequence[int],
                   sent: Sequence[SentMessage]) -> None:
    """The webhook's fast path delivered a turn's rows: mark them sent and track each message,
    in one short transaction (as ``bot.outbox.mark_sent`` alone did before). A turn without a
    row (the user erased their data in it) leaves nothing behind."""
    now = utcnow()
    row = outbox_ids[0] if outbox_ids else None
    tracked = [{"user_key": user_key, "message_key": m.key,
                "outbox_id": row, "kind": "message", "status": "sent", "position": m.position,
                "urgent": m.urgent, "created_at": now, "updated_at": now}
               for m in sent] if row is not None else []

    def write(cursor: direct.Cursor) -> None:
        mark_outbox_sent(cursor, outbox_ids)
        if tracked:
            cursor.executemany(_TRACK, tracked)

    await store.write(write)


async def apply_status(store: Store, message_key: str, status: str,
                       error_code: int | None, *, retry: bool = False) -> Tracked | None:
    """Record a delivery report (never moving backwards) and roll it up into the outbox row:
    its status is the least advanced of its messages', or ``failed`` if one failed.

    ``retry``: the failure may pass (Meta overloaded, a rate limit), so the message goes out
    again through the outbox, if its row is a reply or a caseworker's (:func:`_send_again`).
    """
    async with store.session() as db:
        message = await db.get(WhatsAppMessage, message_key)
        if message is None:
            return None  # a row erased since, or not ours: nothing to update
        moved = _RANK.get(status, 0) > _RANK.get(message.status, 0)
        if moved:
            message.status, message.updated_at = status, utcnow()
            if error_code is not None:
                message.error_code = error_code
        row = (await db.get(OutboxMessage, message.outbox_id)
               if message.outbox_id is not None else None)
        retried = (moved and retry and status == "failed" and row is not None
                   and message.kind == "message" and row.kind in RETRIED_KINDS
                   and await _send_again(db, store, message, row, error_code))
        tracked = Tracked(message.user_id, message.outbox_id, message.kind, message.urgent,
                          row.kind if row is not None else None, retried)
        if row is not None:
            await db.flush()
            await _roll_up(db, row.id)
    return tracked


async def _send_again(db: AsyncSession, store: Store, message: WhatsAppMessage,
                      row: OutboxMessage, code: int | None) -> bool:
    """A row of one message goes out again as it is, after a backoff (its tracked messages
    are let go: the new sending speaks for it), while it has attempts left. From a row of
    several, only the failed one, in a row of its own: what did arrive is not repeated."""
    cipher = await user_keys.cipher_for_user(db, store.cipher, row.user_id)  # the user's key
    messages = open_payload(cipher, row.payload_enc)
    error = f"whatsapp:{code}"
    if len(messages) <= 1:
        if row.attempts >= MAX_ATTEMPTS:
            return False
        await db.execute(update(WhatsAppMessage).where(WhatsAppMessage.outbox_id == row.id)
                         .values(outbox_id=None))
        row.status, row.lease_until, row.last_error = "pending", None, error
        row.next_attempt_at = utcnow() + timedelta(seconds=min(300, 5 * 2 ** row.attempts))
        return True
    if not 0 <= message.position < len(messages):
        return False
    message.outbox_id = None
    return await enqueue(db, cipher, user_id=row.user_id, channel=CHANNEL, kind=row.kind,
                         messages=[messages[message.position]],
                         idempotency_key=f"{RETRY_PREFIX}{message.message_key}"[:96])


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
        cipher = await user_keys.cipher_for_user(db, store.cipher, user_id)  # the user's key
        return await enqueue(db, cipher, user_id=user_id, channel=CHANNEL, kind="reply",
                             messages=messages, idempotency_key=idempotency_key)


# --- who is who: business-scoped user ids ----------------------------------------------------
async def identity_owner(store: Store, identity_key: str) -> str | None:
    """The key of the user a BSUID (its keyed hash) belongs to, if we know."""
    async with store.session() as db:
        return await db.scalar(
            select(User.key).join(WhatsAppIdentity, WhatsAppIdentity.user_id == User.id)
            .where(WhatsAppIdentity.key == identity_key))


async def existing_user(store: Store, user_keys: Sequence[str]) -> str | None:
    """The first of these user keys that names a user."""
    async with store.session() as db:
        found = set(await db.scalars(select(User.key).where(User.key.in_(user_keys))))
    return next((key for key in user_keys if key in found), None)


async def remember_identity(store: Store, identity_key: str, user_key: str, *,
                            replace: bool = False) -> bool:
    """This BSUID belongs to this user (``replace``: even if it named someone else before)."""
    async with store.session() as db:
        user_id = await db.scalar(select(User.id).where(User.key == user_key))
        if user_id is None:
            return False
        known = await db.get(WhatsAppIdentity, identity_key)
        if known is None:
            db.add(WhatsAppIdentity(key=identity_key, user_id=user_id, created_at=utcnow()))
        elif replace:
            known.user_id = user_id
    return True


async def forget_identity(store: Store, identity_key: str) -> None:
    async with store.session() as db:
        await db.execute(delete(WhatsAppIdentity).where(WhatsAppIdentity.key == identity_key))


async def move_user(store: Store, user_key: str, new_key: str, address: str) -> bool:
    """The user's id changed (Meta said so): key them by the new one and reach them there.
    Not when the new id already has a user of its own (they wrote from it first): both stay."""
    async with store.session() as db:
        if await db.scalar(select(User.id).where(User.key == new_key)) is not None:
            return False
        user_id = await db.scalar(select(User.id).where(User.key == user_key))
        cipher = await user_keys.cipher_for_user(db, store.cipher, user_id)  # the user's key
        sealed = cipher.encrypt_text(address, context=b"users.address")
        result = await db.execute(update(User).where(User.key == user_key)
                                  .values(key=new_key, address_enc=sealed))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- WhatsApp's own "stop / resume marketing messages" ---------------------------------------
async def stop_marketing(store: Store, user: UserRef) -> bool:
    """An opt-out of campaigns; the topics are kept to restore on a "resume". False when the
    user had no opt-in (nothing to stop)."""
    async with store.session() as db:
        topics = await consent.opt_out(db, user)
        if topics is None:
            return False
        user_id = await db.scalar(select(User.id).where(User.key == user.key))
        if user_id is not None and await db.get(WhatsAppMarketingStop, user_id) is None:
            db.add(WhatsAppMarketingStop(user_id=user_id, topics=list(topics),
                                         created_at=utcnow()))
    return True


async def resume_marketing(store: Store, user: UserRef) -> bool:
    """Restore the opt-in a WhatsApp "stop" removed, with its topics; never a new one (opting
    in happens in the chat). False when there was nothing to restore."""
    async with store.session() as db:
        stop = await db.scalar(select(WhatsAppMarketingStop).join(
            User, User.id == WhatsAppMarketingStop.user_id).where(User.key == user.key))
        if stop is None:
            return False
        topics = [str(t) for t in stop.topics or ()]
        await db.delete(stop)
        return await consent.opt_in(db, user, topics)


async def campaign_row_undelivered(store: Store, outbox_id: int, *, held: bool,
                                   error: str) -> None:
    """Meta accepted a campaign message, then did not deliver it for a marketing reason: the
    user's marketing limit (``held``: it goes when they write, as a window-held row does), or
    they stopped marketing messages (skipped, like someone who opted out)."""
    async with store.session() as db:
        delivery_id = await db.scalar(select(CampaignDelivery.id).where(
            CampaignDelivery.outbox_id == outbox_id))
        deliveries = [delivery_id] if delivery_id is not None else []
        if held:
            await records.finish(db, [outbox_id], deliveries, outbox=HELD, delivery="held",
                                 error=error)
        else:
            await records.finish(db, [outbox_id], deliveries, outbox="failed",
                                 delivery="skipped", error=error)


async def user_key_of(store: Store, user_id: int) -> str | None:
    async with store.session() as db:
        return await db.scalar(select(User.key).where(User.id == user_id))
