"""What the queue shows of a thread without opening it: the last message, cut short, and how
many messages the person sent since the case's holder last read it.

"Read" means an audited read of the whole thread (``READ_ACTIONS``): the audit trail already
says who read which case when, so the unread count needs no table of its own and can never
disagree with the trail. A claimed case counts from its holder's last read; a case no one
holds counts from anyone's last read (what no person has seen yet).

Nothing here checks roles or audits: :func:`handoff.reads.previews_for` does both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import user_keys
from bot.store.crypto import DecryptionError, FieldCipher
from bot.store.models import Case, CaseMessage, UserKey
from bot.store.repository import as_utc
from handoff.models import AuditEntry

PREVIEW_CHARS = 80
READ_ACTIONS = ("case.view", "case.thread", "api.messages")
"""Audit actions that showed a person the whole thread (a preview is not one of them)."""
_CONTEXT = b"case_messages.text"


@dataclass(frozen=True)
class Preview:
    """One line of a case's thread for the queue, and its unread count."""

    sender: str
    """user | caseworker | bot: who wrote the last message."""
    text: str
    """The last message, whitespace folded, at most ``PREVIEW_CHARS`` (then "…")."""
    at: datetime
    unread: int
    """Messages from the person after the holder's (or anyone's) last read of the thread."""


def shorten(text: str, limit: int = PREVIEW_CHARS) -> str:
    folded = " ".join(text.split())
    return folded if len(folded) <= limit else folded[:limit - 1].rstrip() + "…"


async def unread_counts(db: AsyncSession, case_ids: Sequence[int]) -> dict[int, int]:
    """Per case: the person's messages after the holder's last read (any reader's last read
    when no one holds the case). One statement; cases with none are left out."""
    if not case_ids:
        return {}
    reader = or_(Case.assignee.is_(None), AuditEntry.actor == Case.assignee)
    last_read = (select(func.max(AuditEntry.at))
                 .where(AuditEntry.case_id == Case.id, AuditEntry.action.in_(READ_ACTIONS),
                        reader)
                 .correlate(Case).scalar_subquery())
    count = (select(func.count()).select_from(CaseMessage)
             .where(CaseMessage.case_id == Case.id, CaseMessage.sender == "user",
                    or_(last_read.is_(None), CaseMessage.created_at > last_read))
             .correlate(Case).scalar_subquery())
    rows = await db.execute(select(Case.id, count).where(Case.id.in_(case_ids)))
    return {int(case_id): int(n) for case_id, n in rows if n}


async def last_messages(db: AsyncSession, master: FieldCipher,
                        case_ids: Sequence[int]) -> dict[int, tuple[str, str, datetime]]:
    """Per case: the last message's sender, shortened text and time, each person's data key
    unwrapped once. A thread whose key is gone (erased) shows nothing."""
    if not case_ids:
        return {}
    newest = (select(CaseMessage.case_id, func.max(CaseMessage.id).label("id"))
              .where(CaseMessage.case_id.in_(case_ids))
              .group_by(CaseMessage.case_id).subquery("newest"))
    query = (select(CaseMessage, UserKey.key_enc)
             .join(newest, newest.c.id == CaseMessage.id)
             .join(Case, Case.id == CaseMessage.case_id)
             .outerjoin(UserKey, UserKey.user_id == Case.user_id))
    ring = user_keys.KeyRing(master)
    found: dict[int, tuple[str, str, datetime]] = {}
    for message, key_enc in await db.execute(query):
        try:
            text = ring.cipher(key_enc).decrypt_text(message.text_enc, context=_CONTEXT)
        except DecryptionError:
            continue
        found[message.case_id] = (message.sender, shorten(text), as_utc(message.created_at))
    return found


async def previews(db: AsyncSession, master: FieldCipher,
                   case_ids: Sequence[int]) -> dict[int, Preview]:
    """The queue's line and unread count for each case that has a readable message."""
    counts = await unread_counts(db, case_ids)
    return {case_id: Preview(sender, text, at, counts.get(case_id, 0))
            for case_id, (sender, text, at) in (await last_messages(db, master,
                                                                    case_ids)).items()}
