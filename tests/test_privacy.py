"""'Delete my data' really deletes; 'what do you know about me' tells; retention purges."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from bot.app import Sanad, build
from bot.messages import DataErased, Inbound
from bot.store.models import (
    Case,
    CaseMessage,
    EventRecord,
    OutboxMessage,
    PlatformMessage,
    Progress,
    ScreeningResult,
    Session,
    Subscription,
    User,
)
from bot.store.repository import utcnow
from handoff.models import CaseNote
from nlu import EmbeddedNLU
from tests.conftest import make_settings

PERSONAL_TABLES = (Session, Progress, ScreeningResult, Subscription, PlatformMessage,
                   CaseMessage, CaseNote, OutboxMessage)


async def talk(app: Sanad, user: str, *steps: str) -> list[object]:
    events: list[object] = []
    ref = app.store.user_ref("terminal", user)
    for step in steps:
        button = step[4:] if step.startswith("tap:") else None
        turn = await app.engine.handle_turn(
            Inbound(user=ref, text="" if button else step, button_id=button), address=user)
        events.extend(turn.events)
    return events


async def count(app: Sanad, model: type) -> int:
    async with app.store.session() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def test_delete_my_data_leaves_nothing_that_identifies_the_user(
    tmp_path: Path, embedded_nlu: EmbeddedNLU
) -> None:
    db_file = tmp_path / "erase.db"
    app = await build(make_settings(f"sqlite+aiosqlite:///{db_file}"), nlu=embedded_nlu)
    user = "201055566677"
    await talk(app, user, "hello", "tap:menu:learn")
    topics = await app.engine.handle_turn(Inbound(user=app.store.user_ref("terminal", user),
                                                  text="1"))
    assert topics.outbound
    await talk(app, user, "tap:menu:check", "tap:sc:consent:yes", "tap:sc:age:18_24",
               *["yes"] * 14, "tap:sc:handoff:yes", "ERASE-CANARY my boss took my passport",
               "tap:sub:yes")
    await app.store.remember_messages(app.store.user_ref("terminal", user), ["11", "12"])
    async with app.store.session() as db:
        case_id = (await db.scalars(select(Case.id))).one()
        db.add(CaseNote(case_id=case_id, author="mona", kind="note", created_at=utcnow(),
                        text_enc=app.store.cipher.encrypt_text("NOTE-CANARY lives in Giza",
                                                               context=b"case_notes.text")))
    assert await count(app, ScreeningResult) == 1 and await count(app, CaseMessage) == 1

    events = await talk(app, user, "delete my data")
    assert not any(isinstance(e, DataErased) for e in events), "asks for confirmation first"
    events = await talk(app, user, "tap:pv:delete:yes")
    assert any(isinstance(e, DataErased) for e in events)
    # The WAL was checkpointed into the database (where secure_delete zeroes freed pages) and
    # truncated: no old page of the erased rows lingers in it while the bot keeps running.
    wal = tmp_path / "erase.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert (db_file.stat().st_mode & 0o777) == 0o600, "the database is readable by its owner only"

    for model in PERSONAL_TABLES:
        assert await count(app, model) == 0, f"{model.__tablename__} still has rows"
    async with app.store.session() as db:
        # Only a do-not-contact mark stays: the pseudonymous key and when contact was paused.
        mark = (await db.scalars(select(User))).one()
        assert mark.contact_paused_at is not None and mark.address_enc is None
        assert (mark.language, mark.age_band, mark.governorate, mark.joined_via) == (
            None, None, None, None)
        case = (await db.scalars(select(Case))).one()
        assert case.user_id is None and case.status == "closed" and case.indicators_enc is None
        assert await db.scalar(select(func.count()).select_from(EventRecord)
                               .where(EventRecord.user_id.is_not(None))) == 0
    await app.store.engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("erase.db*"))
    assert b"ERASE-CANARY" not in raw and b"NOTE-CANARY" not in raw


async def test_what_do_you_know_about_me(sanad_sqlite: Sanad) -> None:
    await talk(sanad_sqlite, "curious", "hello")
    ref = sanad_sqlite.store.user_ref("terminal", "curious")
    turn = await sanad_sqlite.engine.handle_turn(Inbound(user=ref, text="/mydata"))
    text = turn.outbound[0].text
    assert "English" in text and "pv:delete" in [b.id for b in turn.outbound[0].buttons]


async def test_is_this_confidential_is_answered_honestly(sanad_sqlite: Sanad) -> None:
    ref = sanad_sqlite.store.user_ref("terminal", "asker")
    turn = await sanad_sqlite.engine.handle_turn(Inbound(user=ref, text="هل الكلام ده سري؟"))
    text = "\n".join(m.text for m in turn.outbound)
    assert "مشفّرة" in text and "حدود السرية" in text


async def test_retention_purges_old_answers(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    await talk(app, "old", "hello", "tap:menu:check", "tap:sc:consent:yes", "tap:sc:age:18_24",
               *["no"] * 14)
    assert await count(app, ScreeningResult) == 1
    assert (await app.store.purge_expired(90))["screening_results"] == 0
    async with app.store.session() as db:
        await db.execute(update(ScreeningResult).values(created_at=utcnow() - timedelta(days=91)))
    assert (await app.store.purge_expired(90))["screening_results"] == 1
    assert await count(app, ScreeningResult) == 0


async def test_events_never_profile_a_person(sanad_sqlite: Sanad) -> None:
    """The analytics events keep counts and levels, never the yes-answers, age or place."""
    app = sanad_sqlite
    await talk(app, "profiled", "hello", "tap:menu:check", "tap:sc:consent:yes",
               "tap:sc:age:under_18", *["yes"] * 14)
    await talk(app, "profiled", "send me tips", "tap:sub:yes", "tap:sub:topic:all",
               "tap:sub:lang:en", "tap:sub:gov:giza", "tap:sub:age:skip")
    async with app.store.session() as db:
        rows = (await db.execute(select(EventRecord.name, EventRecord.data))).all()
    names = {name for name, _ in rows}
    assert {"ScreeningCompleted", "Subscribed"} <= names
    for name, data in rows:
        assert not {"indicators", "age_band", "governorate", "answers", "text"} & set(data or {}), \
            name
    screened = next(data for name, data in rows if name == "ScreeningCompleted")
    assert screened["risk_level"] in {"low", "medium", "high", "urgent"}, "levels still count"
