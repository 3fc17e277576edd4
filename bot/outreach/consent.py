"""Campaign opt-in changed outside the chat, by the platform on the user's behalf.

Inside the chat, ``Unsubscribed`` and ``Subscribed`` events do this in the turn's transaction
(``bot.effects``). A platform can also say it: WhatsApp's ``user_preferences`` webhook tells us
that a user stopped (or resumed) marketing messages from this business in the app. Outside a
turn there is no ``TurnTransaction``, so these functions do the same two things in the caller's
session: the ``Subscription`` row (its absence is the opt-out) and the event the campaign
reports count (``opted_out`` counts ``Unsubscribed``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Subscribed, Unsubscribed, UserRef
from bot.store.models import EventRecord, Subscription, User
from bot.store.repository import utcnow


async def opt_out(db: AsyncSession, user: UserRef) -> tuple[str, ...] | None:
    """Remove the user's opt-in; the topics they had, or ``None`` if they had none."""
    found = (await db.execute(
        select(Subscription, User.language).join(User, User.id == Subscription.user_id)
        .where(User.key == user.key))).first()
    if found is None:
        return None
    subscription, language = found
    topics = tuple(str(t) for t in subscription.topics or ())
    await db.delete(subscription)
    _record(db, subscription.user_id, Unsubscribed.__name__, user.channel, language, {})
    return topics


async def opt_in(db: AsyncSession, user: UserRef, topics: Sequence[str]) -> bool:
    """Restore an opt-in with these topics (never a new one: opting in happens in the chat);
    False when the user is unknown or already subscribed."""
    found = (await db.execute(select(User.id, User.language).where(User.key == user.key))).first()
    if found is None or await db.get(Subscription, found.id) is not None:
        return False
    db.add(Subscription(user_id=found.id, topics=list(topics), created_at=utcnow()))
    _record(db, found.id, Subscribed.__name__, user.channel, found.language,
            {"topics": list(topics), "governorate": None, "age_band": None})
    return True


def _record(db: AsyncSession, user_id: int, name: str, channel: str, language: str | None,
            data: dict[str, object]) -> None:
    db.add(EventRecord(user_id=user_id, name=name, channel=channel, language=language,
                       data=data, created_at=utcnow()))
