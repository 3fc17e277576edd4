"""Retention leaves no personal row older than its period in any table (bot.store.retention)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.app import Sanad
from bot.messages import Inbound
from bot.store.models import (
    Case,
    CaseMessage,
    EventRecord,
    OutboxMessage,
    PlatformMessage,
    ProcessedInbound,
    ScreeningResult,
    Session,
    User,
)
from bot.store.repository import utcnow
from handoff import relay
from handoff.actions import claim, close
from handoff.models import AuditEntry, CaseNote, LoginThrottle
from tests.test_subscribe import Chat, subscribe_all

OLD = timedelta(days=100)


async def talk(app: Sanad, user: str, *steps: str) -> None:
    ref = app.store.user_ref("terminal", user)
    for n, step in enumerate(steps):
        button = step[4:] if step.startswith("tap:") else None
        await app.engine.handle_turn(
            Inbound(user=ref, text="" if button else step, button_id=button,
                    message_id=f"{user}-{n}"), address=user)


async def count(app: Sanad, model: type, *where: object) -> int:
    async with app.store.session() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_every_table_forgets_on_time(sanad: Sanad) -> None:
    app = sanad
    # An old, finished story: screened, talked to a caseworker, case closed, long gone.
    await talk(app, "old", "hello", "tap:menu:check", "tap:sc:consent:yes",
               "tap:sc:age:18_24", *["yes"] * 14, "tap:sc:handoff:yes", "my boss has my passport")
    await app.store.remember_messages(app.store.user_ref("terminal", "old"), ["41", "42"])
    async with app.store.session() as db:
        case_id = (await db.scalars(select(Case.id))).one()
        await relay.reply(db, cipher=app.store.cipher, ui=app.ui, case_id=case_id,
                          author="mona", text="we can help")
        db.add(CaseNote(case_id=case_id, author="mona", kind="note", created_at=utcnow(),
                        text_enc=app.store.cipher.encrypt_text("note", context=b"case_notes.text")))
        db.add(LoginThrottle(key="k" * 64, failures=1, window_start=utcnow()))
        db.add(AuditEntry(actor="mona", action="case.view", case_id=case_id, at=utcnow()))
    async with app.store.session() as db:
        await claim(db, case_id, "mona")
    async with app.store.session() as db:
        await close(db, case_id, "mona", "referred")
        await db.execute(update(OutboxMessage).values(status="sent"))
    # A subscriber who was also away for long, and someone active today.
    chat = Chat(app, "subscriber")
    await subscribe_all(chat)
    await talk(app, "today", "hello")

    long_ago = utcnow() - OLD
    async with app.store.session() as db:
        old_ids = select(User.id).where(User.key.in_([
            app.store.user_ref("terminal", u).key for u in ("old", "subscriber")]))
        for model, column in ((ScreeningResult, "created_at"), (CaseMessage, "created_at"),
                              (OutboxMessage, "created_at"), (ProcessedInbound, "created_at"),
                              (PlatformMessage, "created_at"), (EventRecord, "created_at")):
            await db.execute(update(model).values({column: long_ago}))
        await db.execute(update(Session).where(Session.user_id.in_(old_ids))
                         .values(updated_at=long_ago))
        await db.execute(update(User).where(User.id.in_(old_ids)).values(last_active_at=long_ago))
        await db.execute(update(Case).values(closed_at=long_ago))
        await db.execute(update(LoginThrottle).values(window_start=long_ago))
        await db.execute(update(AuditEntry).values(at=utcnow() - timedelta(days=400)))

    purged = await app.store.purge_expired(90)

    assert all(purged[name] > 0 for name in (
        "screening_results", "case_messages", "case_notes", "outbox", "sessions", "events",
        "users.address_enc", "platform_messages", "processed_inbound", "login_throttles",
        "audit_log")), purged
    for model in (ScreeningResult, CaseMessage, CaseNote, OutboxMessage, PlatformMessage,
                  LoginThrottle, AuditEntry):
        assert await count(app, model) == 0, model.__tablename__
    assert await count(app, EventRecord, EventRecord.user_id.is_not(None)) == 0
    today = app.store.user_ref("terminal", "today").key
    async with app.store.session() as db:
        addresses = dict((await db.execute(select(User.key, User.address_enc))).all())
        sessions = await db.scalar(select(func.count()).select_from(Session))
    assert addresses[app.store.user_ref("terminal", "old").key] is None
    assert addresses[app.store.user_ref("terminal", "subscriber").key] is not None, \
        "a subscriber still expects tips"
    assert addresses[today] is not None and sessions == 1, "today's person is untouched"
    assert await count(app, Case) == 1, "the case keeps its outcome for statistics"
