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
from bot.store import user_keys
from bot.store.crypto import FieldCipher
from bot.store.models import Case, CaseMessage, OutboxMessage
from bot.store.repository import PAUSED, as_utc, utcnow

_CONTEXT = b"case_messages.text"


class CaseNotOpen(Exception):
    """The case is missing, closed, or its user erased their data."""


DELIVERY = {"pending": "queued", "sending": "queued", "sent": "sent", "delivered": "delivered",
            "read": "read", "held": "held", PAUSED: "held", "failed": "failed"}
"""What the thread shows of a caseworker reply's outbox status: a held reply is never
shown as sent."""


@dataclass(frozen=True)
class ThreadMessage:
    sender: str  # user | caseworker | bot
    text: str
    at: datetime
    author: str | None
    delivery: str | None = None
    """Caseworker replies (``status`` in the API): queued | sent | delivered | read | held |
    failed."""

    def to_dict(self) -> dict[str, str]:
        shown = {"from": self.sender, "text": self.text, "at": self.at.isoformat()}
        if self.delivery is not None:
            shown["status"] = self.delivery
        return shown


async def reply(
    db: AsyncSession, *, cipher: FieldCipher, ui: UiCatalog, case_id: int, author: str,
    text: str,
) -> None:
    """Store a caseworker's reply in the thread and queue it for the user's channel."""
    case = await db.get(Case, case_id)
    if case is None or case.status == "closed" or case.user_id is None:
        raise CaseNotOpen(case_id)
    key = f"case:{case.id}:{uuid.uuid4().hex}"
    # The thread is the person's: sealed under their data key (crypto-shredded on erasure).
    thread_cipher = await user_keys.cipher_for_user(db, cipher, case.user_id)
    db.add(CaseMessage(case_id=case.id, sender="caseworker", author=author,
                       text_enc=thread_cipher.encrypt_text(text, context=_CONTEXT),
                       created_at=utcnow(), outbox_key=key))
    message = Outbound(
        text=ui.text(case.language, "handoff.caseworker_says", text=text),
        buttons=(Button(id="ho:end", title=ui.text(case.language, "handoff.end_button")),),
    )
    await enqueue(db, thread_cipher, user_id=case.user_id, channel=case.channel, kind="caseworker",
                  messages=[message], idempotency_key=key)


async def thread(db: AsyncSession, *, cipher: FieldCipher, case_id: int) -> list[ThreadMessage]:
    cipher = await user_keys.cipher_for_case(db, cipher, case_id)  # the person's data key
    rows = await db.execute(
        select(CaseMessage, OutboxMessage.status)
        .outerjoin(OutboxMessage, OutboxMessage.idempotency_key == CaseMessage.outbox_key)
        .where(CaseMessage.case_id == case_id)
        .order_by(CaseMessage.created_at, CaseMessage.id))
    return [ThreadMessage(r.sender, cipher.decrypt_text(r.text_enc, context=_CONTEXT),
                          as_utc(r.created_at), r.author,
                          _delivery(r, status))
            for r, status in rows]


def _delivery(message: CaseMessage, status: str | None) -> str | None:
    if message.sender != "caseworker" or message.outbox_key is None:
        return None
    return DELIVERY.get(status, "queued") if status is not None else "unknown"
