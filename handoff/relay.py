"""Two-way relay between a case thread and the user's own chat.

A caseworker's reply is stored (encrypted) in the thread and queued in the outbox in the same
transaction, so it either reaches the user or stays visibly queued: it is never silently lost.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import UiCatalog
from bot.messages import Button, Outbound
from bot.outbox import enqueue
from bot.store.crypto import FieldCipher
from bot.store.models import Case, CaseMessage
from bot.store.repository import as_utc, utcnow

_CONTEXT = b"case_messages.text"


class CaseNotOpen(Exception):
    """The case is missing, closed, or its user erased their data."""


@dataclass(frozen=True)
class ThreadMessage:
    sender: str  # user | caseworker | bot
    text: str
    at: datetime
    author: str | None

    def to_dict(self) -> dict[str, str]:
        return {"from": self.sender, "text": self.text, "at": self.at.isoformat()}


async def reply(
    db: AsyncSession, *, cipher: FieldCipher, ui: UiCatalog, case_id: int, author: str,
    text: str,
) -> None:
    """Store a caseworker's reply in the thread and queue it for the user's channel."""
    case = await db.get(Case, case_id)
    if case is None or case.status == "closed" or case.user_id is None:
        raise CaseNotOpen(case_id)
    db.add(CaseMessage(case_id=case.id, sender="caseworker", author=author,
                       text_enc=cipher.encrypt_text(text, context=_CONTEXT),
                       created_at=utcnow()))
    message = Outbound(
        text=ui.text(case.language, "handoff.caseworker_says", text=text),
        buttons=(Button(id="ho:end", title=ui.text(case.language, "handoff.end_button")),),
    )
    await enqueue(db, cipher, user_id=case.user_id, channel=case.channel, kind="caseworker",
                  messages=[message], idempotency_key=f"case:{case.id}:{uuid.uuid4().hex}")


async def thread(db: AsyncSession, *, cipher: FieldCipher, case_id: int) -> list[ThreadMessage]:
    rows = await db.scalars(select(CaseMessage).where(CaseMessage.case_id == case_id)
                            .order_by(CaseMessage.created_at, CaseMessage.id))
    return [ThreadMessage(r.sender, cipher.decrypt_text(r.text_enc, context=_CONTEXT),
                          as_utc(r.created_at), r.author) for r in rows]
