"""Reading and writing review decisions (``content_reviews``), and refreshing a library.

Callers own the transaction and the audit row (the console and the CLI each record who
did what in the same transaction as the decision).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .loader import ContentLibrary
from .review import DECISIONS, Approvals, Item, Review, stored
from .review_models import ContentReview, ContentReviewer

log = logging.getLogger(__name__)

COMMENT_MAX = 2000


class ReviewError(ValueError):
    """A decision that cannot be recorded (unknown item, stale version, bad comment)."""


def _review(row: ContentReview) -> Review:
    return Review(kind=row.kind, item_id=row.item_id, lang=row.lang, digest=row.digest,
                  decision=row.decision, reviewer=row.reviewer, comment=row.comment or "",
                  at=row.at, snapshot=json.loads(row.snapshot) if row.snapshot else None)


async def load_approvals(db: AsyncSession) -> Approvals:
    """Every decision ever taken (a few per item: small), as an ``Approvals`` view."""
    rows = (await db.scalars(select(ContentReview).order_by(ContentReview.at.desc(),
                                                            ContentReview.id.desc()))).all()
    return Approvals(tuple(_review(row) for row in rows))


async def decide(db: AsyncSession, item: Item, *, decision: str, reviewer: str,
                 comment: str, at: datetime, expected_digest: str | None = None) -> Review:
    """Record ``decision`` on the item's current version.

    ``expected_digest`` is the hash the reviewer was shown: if the YAML changed in between,
    the decision is refused rather than applied to a text nobody read.
    """
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise ReviewError(f"the comment is longer than {COMMENT_MAX} characters")
    if decision == "changes_requested" and not comment:
        raise ReviewError("say what should change")
    if expected_digest is not None and expected_digest != item.digest:
        raise ReviewError("the content changed while you were reviewing it")
    row = ContentReview(kind=item.kind, item_id=item.item_id, lang=item.lang,
                        digest=item.digest, decision=decision, reviewer=reviewer,
                        comment=comment, at=at,
                        snapshot=stored(item.data) if decision == "approved" else None)
    db.add(row)
    await db.flush()
    return _review(row)


async def refresh(library: ContentLibrary, db: AsyncSession) -> Approvals:
    """Load the approvals and apply them to ``library`` (no-op when drafts are shown)."""
    approvals = await load_approvals(db)
    library.apply_approvals(approvals)
    return approvals


# --- the review capability of accounts with another role -----------------------------------
async def is_granted(db: AsyncSession, account_id: int) -> bool:
    return await db.get(ContentReviewer, account_id) is not None


async def grant(db: AsyncSession, account_id: int, *, by: str, at: datetime) -> bool:
    """Grant the review capability; False if the account already had it."""
    if await is_granted(db, account_id):
        return False
    db.add(ContentReviewer(caseworker_id=account_id, granted_by=by, granted_at=at))
    await db.flush()
    return True


async def revoke(db: AsyncSession, account_id: int) -> bool:
    """Withdraw the capability; False if the account did not have it."""
    result = await db.execute(delete(ContentReviewer)
                              .where(ContentReviewer.caseworker_id == account_id))
    return bool(getattr(result, "rowcount", 0))


def report_hidden(library: ContentLibrary) -> list[str]:
    """Warning lines for start-up: what production hides or serves frozen (never any user
    data: item ids and languages only). Empty when drafts are shown or all is approved."""
    served = library.served
    if served is None:
        return []
    lines: list[str] = []
    if served.hidden:
        lines.append(f"content review: production hides {len(served.hidden)} unapproved "
                     f"item(s) (approve them in /console/content): " + "; ".join(served.hidden))
    if served.frozen:
        lines.append(f"content review: {len(served.frozen)} item(s) changed since approval "
                     "and are served as last approved: " + "; ".join(served.frozen))
    lines.extend(f"content review: {note}" for note in served.notes)
    return lines


async def start_gated(library: ContentLibrary, db: AsyncSession) -> None:
    """Apply the stored approvals at start-up and log, as a warning, what stays hidden."""
    await refresh(library, db)
    for line in report_hidden(library):
        log.warning("%s", line)
