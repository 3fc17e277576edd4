"""``kill -9`` of ``sanad worker`` in the middle of the retention purge, then a restart.

The database holds many expired rows (de-duplication ids, screening answers, case threads) and
overdue urgent cases. A real ``python -m bot worker --once`` child is killed with SIGKILL while
the purge's transaction holds the write lock and has already written pages. Afterwards the
database is intact and the purge is all or nothing (here: nothing, the transaction was rolled
back); a restarted worker completes the purge and the SLA escalation, and keeps recent data.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bot.store.db import create_engine, upgrade
from bot.store.models import Case, CaseMessage, ProcessedInbound, ScreeningResult, User
from bot.store.repository import utcnow
from tests.reliability.support import eventually, process, sanad_env

OLD_INBOUND = 120_000
OLD_SCREENINGS = 20_000
OLD_CASE_MESSAGES = 20_000
RECENT = 500
OVERDUE_CASES = 40


async def seed(url: str) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    now = utcnow()
    old = now - timedelta(days=400)
    async with engine.begin() as conn:
        user_id = (await conn.execute(insert(User).values(
            key="k" * 64, channel="telegram", language="ar", created_at=now, last_active_at=now,
        ).returning(User.id))).scalar_one()
        await conn.execute(insert(ProcessedInbound), [
            {"channel": "telegram", "message_id": f"old-{i}", "created_at": old}
            for i in range(OLD_INBOUND)] + [
            {"channel": "telegram", "message_id": f"new-{i}", "created_at": now}
            for i in range(RECENT)])
        await conn.execute(insert(ScreeningResult), [
            {"user_id": user_id, "risk_level": "low", "score": 1, "answers_enc": b"x" * 200,
             "created_at": old if i < OLD_SCREENINGS else now}
            for i in range(OLD_SCREENINGS + RECENT)])
        cases: list[dict[str, object]] = [{
                  "user_id": user_id, "alias": f"S-{i:05d}", "status": "waiting",
                  "priority": "urgent" if i < OVERDUE_CASES else "normal", "priority_rank": 0,
                  "reason": "asked", "language": "ar", "channel": "telegram",
                  "created_at": now - timedelta(hours=2)} for i in range(OVERDUE_CASES * 2)]
        case_ids = list((await conn.execute(insert(Case).returning(Case.id), cases)).scalars())
        await conn.execute(insert(CaseMessage), [
            {"case_id": case_ids[i % len(case_ids)], "sender": "user", "text_enc": b"y" * 200,
             "created_at": old if i < OLD_CASE_MESSAGES else now}
            for i in range(OLD_CASE_MESSAGES + RECENT)])
    await engine.dispose()


async def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    cutoff = utcnow() - timedelta(days=90)
    try:
        async with engine.connect() as conn:
            async def count(model: type, *where: object) -> int:
                return int(await conn.scalar(select(func.count()).select_from(model)
                                             .where(*where)) or 0)  # type: ignore[arg-type]
            return {
                "old_inbound": await count(ProcessedInbound, ProcessedInbound.created_at < cutoff),
                "new_inbound": await count(ProcessedInbound, ProcessedInbound.created_at >= cutoff),
                "old_screenings": await count(ScreeningResult,
                                              ScreeningResult.created_at < cutoff),
                "new_screenings": await count(ScreeningResult,
                                              ScreeningResult.created_at >= cutoff),
                "old_case_messages": await count(CaseMessage, CaseMessage.created_at < cutoff),
                "new_case_messages": await count(CaseMessage, CaseMessage.created_at >= cutoff),
                "escalated": await count(Case, Case.escalated_at.is_not(None)),
            }
    finally:
        await engine.dispose()


def writing(path: Path) -> bool:
    """Someone holds the write lock and has written a good part of the purge into the WAL."""
    wal = path.with_name(path.name + "-wal")
    if not wal.exists() or wal.stat().st_size < 4 * 1024 * 1024:
        return False
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:  # database is locked: the purge is in its transaction
        return True
    finally:
        conn.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


async def test_kill_9_during_retention_purge_is_all_or_nothing_and_the_restart_completes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sanad.db"
    url = f"sqlite+aiosqlite:///{path}"
    await seed(url)
    # checkpoint the seed so the WAL only grows with the purge's own writes
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = await counts(url)
    assert before["old_inbound"] == OLD_INBOUND and before["escalated"] == 0
    env = sanad_env(url, SANAD_RETENTION_DAYS="90", SANAD_SLA_URGENT_MIN="5")

    with process(["worker", "--once"], env, tmp_path / "worker-1.log") as first:
        await eventually(lambda: writing(path), 120, "the purge to be half-way written")
        first.kill9()

    assert integrity(path) == "ok"
    after_kill = await counts(url)
    assert after_kill == before, "a killed purge leaves nothing half-done"

    with process(["worker", "--once"], env, tmp_path / "worker-2.log") as second:
        assert second.proc is not None
        code = await asyncio.to_thread(second.proc.wait, 300)
        log = second.output()
    assert code == 0, log[-2000:]
    assert integrity(path) == "ok"
    done = await counts(url)
    assert done == {
        "old_inbound": 0, "new_inbound": RECENT, "old_screenings": 0, "new_screenings": RECENT,
        "old_case_messages": 0, "new_case_messages": RECENT, "escalated": OVERDUE_CASES,
    }
    assert "Traceback" not in log
