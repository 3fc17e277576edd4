"""The audit trail: one row per case read or back-office action, written in the same
transaction as the read or action it records, so neither can happen without the other.

Tamper evidence: when the transaction commits, its rows are chained: each gets the next
sequence number and ``row_hash = SHA-256(prev_hash, the row's fields)``, where ``prev_hash`` is
the previous row's hash, and the chain's end is kept in the one ``audit_head`` row. Chaining
happens last, just before the commit, under the head row's lock (a row lock on PostgreSQL, the
write lock on SQLite), so two transactions never both extend the same end, and the head lock
is the last lock a transaction takes (it cannot be part of a deadlock cycle). :func:`verify`
walks the chain: an edited row no longer matches its hash, a deleted row breaks the links (or,
the last one, no longer matches the head).

The client address and the stated reason come from the request being served
(:func:`serving`), so the many places that record a read need not pass them along.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import orjson
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.store.repository import as_utc, dialect_insert, utcnow
from handoff.models import AuditEntry, AuditHead

GENESIS = "0" * 64
HEAD_ID = 1
REASONS = ("assigned", "supervision", "safeguarding", "quality", "complaint", "legal")
"""Why someone opens a case (``?reason=`` or ``X-Access-Reason``): fixed codes, never text."""
_CHAINED = "sanad.audit.chained"


@dataclass(frozen=True)
class RequestInfo:
    client: str | None = None
    reason: str | None = None


_serving: ContextVar[RequestInfo | None] = ContextVar("sanad_audit_request", default=None)
"""The request being served by this task (each asyncio task has its own copy): not shared."""


@contextmanager
def serving(info: RequestInfo) -> Iterator[None]:
    """Audit rows written while the block runs carry ``info`` (used by the guard middleware)."""
    token = _serving.set(info)
    try:
        yield
    finally:
        _serving.reset(token)


def clean_reason(value: str | None) -> str | None:
    return value if value in REASONS else None


def record(
    db: AsyncSession, actor: str, action: str, case_id: int | None = None,
    detail: str | None = None, *, client: str | None = None, reason: str | None = None,
) -> None:
    """Add an audit row (actor, action, case, time, an optional fixed code; never text)."""
    info = _serving.get() or RequestInfo()
    db.add(AuditEntry(actor=actor, action=action, case_id=case_id, detail=detail, at=utcnow(),
                      client=(client or info.client or None), reason=reason or info.reason))
    _chain_on_commit(db.sync_session)


def _chain_on_commit(session: Session) -> None:
    if not session.info.get(_CHAINED):
        event.listen(session, "before_commit", _chain)
        session.info[_CHAINED] = True


def row_digest(prev_hash: str, row: AuditEntry) -> str:
    """The hash of a row: its fields in a fixed JSON form, after the previous row's hash."""
    fields = [row.seq, row.actor, row.action, row.case_id, row.detail,
              as_utc(row.at).isoformat(timespec="microseconds"), row.client, row.reason]
    return hashlib.sha256(prev_hash.encode() + orjson.dumps(fields)).hexdigest()


def _chain(session: Session) -> None:
    """``before_commit``: give this transaction's new rows their place in the chain."""
    session.flush()
    rows = list(session.scalars(select(AuditEntry).where(AuditEntry.seq.is_(None))
                                .order_by(AuditEntry.id)))
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    session.execute(dialect_insert(dialect, AuditHead).values(id=HEAD_ID, seq=0, hash=GENESIS)
                    .on_conflict_do_nothing(index_elements=["id"]))
    seq, prev = session.execute(
        update(AuditHead).where(AuditHead.id == HEAD_ID)
        .values(seq=AuditHead.seq + len(rows)).returning(AuditHead.seq, AuditHead.hash)
    ).one()
    seq = int(seq) - len(rows)
    for row in rows:
        seq += 1
        row.seq, row.prev_hash = seq, prev
        row.row_hash = prev = row_digest(prev, row)
    session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(hash=prev))
    session.flush()


# --- verification ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    seq: int | None
    what: str


@dataclass(frozen=True)
class Verdict:
    rows: int
    first_seq: int | None
    head_seq: int
    head_hash: str
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(db: AsyncSession, *, batch: int = 5000,
                 anchors: tuple[str, ...] = ()) -> Verdict:
    """Walk the chain in order. The first row's ``prev_hash`` is taken on trust (retention
    deletes the oldest rows); every later row must follow the one before without a gap.

    ``anchors``: head hashes printed by earlier runs and kept elsewhere. Each must still be a
    row's hash: whoever rewrites a row and recomputes every later hash changes them all."""
    problems: list[Problem] = []
    for anchor in anchors:
        if await db.scalar(select(AuditEntry.seq).where(AuditEntry.row_hash == anchor)) is None:
            problems.append(Problem(None, f"the recorded hash {anchor[:16]}... is no longer in "
                                          "the chain: rows up to it were rewritten or removed"))
    head = await db.get(AuditHead, HEAD_ID)
    head_seq, head_hash = (int(head.seq), head.hash) if head else (0, GENESIS)
    unchained = int(await db.scalar(select(func.count()).select_from(AuditEntry)
                                    .where(AuditEntry.seq.is_(None))) or 0)
    if unchained:
        problems.append(Problem(None, f"{unchained} rows outside the chain"))
    count, first, prev_seq, prev_hash = 0, None, None, None
    async for row in _in_order(db, batch):
        count += 1
        seq = int(row.seq or 0)
        if first is None:
            first = seq
        elif seq != (prev_seq or 0) + 1:
            problems.append(Problem(seq, f"rows {(prev_seq or 0) + 1}-{seq - 1} missing"))
        elif row.prev_hash != prev_hash:
            problems.append(Problem(row.seq, "does not follow the previous row"))
        if row.row_hash != row_digest(row.prev_hash or "", row):
            problems.append(Problem(row.seq, "edited: the row does not match its hash"))
        prev_seq, prev_hash = seq, row.row_hash
    if count == 0 and head_seq:
        problems.append(Problem(None, f"no rows left, but the head says {head_seq}"))
    elif (prev_seq or 0) != head_seq or (prev_seq is not None and prev_hash != head_hash):
        problems.append(Problem(prev_seq, f"the chain ends at {prev_seq or 0} but the head "
                                          f"says {head_seq}: rows at the end were removed"))
    return Verdict(count, first, head_seq, head_hash, tuple(problems))


async def _in_order(db: AsyncSession, batch: int) -> AsyncIterator[AuditEntry]:
    after = -1
    while True:
        rows = list(await db.scalars(select(AuditEntry).where(AuditEntry.seq > after)
                                     .order_by(AuditEntry.seq).limit(batch)))
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after = int(rows[-1].seq or 0)
