"""Canned replies in the database: supervisors add, edit, retire and restore them per reply
language in the console (:mod:`handoff.console_canned`); caseworkers pick the ones in the
case's language.

The table starts from ``handoff/canned_replies.yml`` the first time it is read empty; after
that the console owns the wording (editing the YAML changes nothing for a running service,
retired texts are not brought back).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.loader import ContentLibrary
from bot.store.repository import utcnow
from handoff import placeholders
from handoff.models import CannedReplyText
from handoff.texts import REPLY_LANGUAGES, CannedReply

KEY_RE = re.compile(r"^[a-z0-9_]{2,48}$")
MAX_TITLE = 120
MAX_TEXT = 3000  # as a reply (handoff.api.MAX_REPLY_CHARS)
SEEDED_BY = "canned_replies.yml"

log = logging.getLogger(__name__)


class CannedInvalid(ValueError):
    """A field is missing, too long, or not one of the allowed codes."""


class CannedConflict(ValueError):
    """The reply already has a text in that language, or the text does not exist."""


@dataclass(frozen=True)
class Choice:
    """What the case page offers: the reply's id, its title for the console, the text sent."""

    key: str
    title: str
    text: str


async def ensure_seeded(db: AsyncSession, seed: Sequence[CannedReply]) -> None:
    """Fill an empty table from the YAML (each reply in every reply language). Two first
    readers at once: one inserts, the other's insert is rolled back to its savepoint."""
    if await db.scalar(select(func.count()).select_from(CannedReplyText)):
        return
    now = utcnow()
    try:
        async with db.begin_nested():
            for reply in seed:
                for lang in REPLY_LANGUAGES:
                    db.add(CannedReplyText(
                        key=reply.id, language=lang,
                        title=reply.title.get(lang) or reply.title.get("en") or reply.id,
                        text=reply.text_for(lang), updated_by=SEEDED_BY, updated_at=now))
    except IntegrityError:
        pass


async def every_text(db: AsyncSession, seed: Sequence[CannedReply]) -> list[CannedReplyText]:
    """All texts, retired ones too, by reply then language (the supervisors' page)."""
    await ensure_seeded(db, seed)
    rows = list(await db.scalars(select(CannedReplyText)))
    order = {lang: i for i, lang in enumerate(REPLY_LANGUAGES)}
    return sorted(rows, key=lambda r: (r.key, order.get(r.language, 99)))


async def choices(db: AsyncSession, seed: Sequence[CannedReply], *, case_language: str,
                  console_language: str, content: ContentLibrary) -> list[Choice]:
    """The live replies a caseworker can send in the case's language (a reply retired in
    that language is not offered in another), titled in the console's language where that
    text is live, with service details filled in; a reply whose placeholder no longer fills
    (its service was unverified since) is not offered."""
    await ensure_seeded(db, seed)
    live = list(await db.scalars(select(CannedReplyText).where(
        CannedReplyText.retired_at.is_(None)).order_by(CannedReplyText.id)))
    by = {(r.key, r.language): r for r in live}
    found: list[Choice] = []
    for key in dict.fromkeys(r.key for r in live):
        sent = by.get((key, case_language))
        if sent is None:
            continue
        titled = by.get((key, console_language)) or sent
        try:
            text = placeholders.fill(content, sent.text, case_language)
        except placeholders.PlaceholderError as bad:
            log.warning("canned reply %s/%s not offered: %s", key, case_language, bad)
            continue
        found.append(Choice(key, titled.title, text))
    return found


async def text_of(db: AsyncSession, seed: Sequence[CannedReply], key: str,
                  case_language: str, content: ContentLibrary) -> str | None:
    """A live reply's text for a form that sent only its id (no JavaScript)."""
    for choice in await choices(db, seed, case_language=case_language,
                                console_language=case_language, content=content):
        if choice.key == key:
            return choice.text
    return None


def _fields(title: str, text: str) -> tuple[str, str]:
    title, text = title.strip(), text.strip()
    if not title or not text or len(title) > MAX_TITLE or len(text) > MAX_TEXT:
        raise CannedInvalid("title or text")
    return title, text


async def add(db: AsyncSession, seed: Sequence[CannedReply], *, key: str, language: str,
              title: str, text: str, by: str, now: datetime | None = None) -> CannedReplyText:
    """A new reply, or an existing reply's text in another language."""
    key = key.strip().lower()
    if not KEY_RE.match(key) or language not in REPLY_LANGUAGES:
        raise CannedInvalid("key or language")
    title, text = _fields(title, text)
    await ensure_seeded(db, seed)
    if await db.scalar(select(CannedReplyText.id).where(
            CannedReplyText.key == key, CannedReplyText.language == language)):
        raise CannedConflict(f"{key}/{language}")
    row = CannedReplyText(key=key, language=language, title=title, text=text, updated_by=by,
                          updated_at=now or utcnow())
    db.add(row)
    await db.flush()
    return row


async def _row(db: AsyncSession, text_id: int) -> CannedReplyText:
    row = await db.get(CannedReplyText, text_id)
    if row is None:
        raise CannedConflict(str(text_id))
    return row


async def edit(db: AsyncSession, text_id: int, *, title: str, text: str, by: str,
               now: datetime | None = None) -> CannedReplyText:
    row = await _row(db, text_id)
    row.title, row.text = _fields(title, text)
    row.updated_by, row.updated_at = by, now or utcnow()
    return row


async def retire(db: AsyncSession, text_id: int, *, by: str, retired: bool = True,
                 now: datetime | None = None) -> CannedReplyText:
    """Retire (or with ``retired=False`` restore) one language's text: a retired text is no
    longer offered to caseworkers."""
    row = await _row(db, text_id)
    moment = now or utcnow()
    row.retired_at = moment if retired else None
    row.updated_by, row.updated_at = by, moment
    return row
