"""The user's side of a handoff: honest about who is there, and about the queue."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import Sanad
from bot.messages import Inbound
from bot.store.repository import utcnow
from handoff.models import Caseworker, ConsoleSession


async def ask_for_a_person(app: Sanad, user: str) -> str:
    ref = app.store.user_ref("terminal", user)
    await app.engine.handle_turn(Inbound(user=ref, text="hello"))
    turn = await app.engine.handle_turn(Inbound(user=ref, button_id="menu:human"))
    return turn.outbound[0].text


async def test_nobody_on_duty_is_said_with_the_emergency_numbers(sanad: Sanad) -> None:
    text = await ask_for_a_person(sanad, "alone")
    assert "No caseworker is online right now" in text
    assert "122" in text and "123" in text


async def test_staff_on_duty_and_the_queue_ahead(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    await ask_for_a_person(app, "first")  # one case already waiting
    now = utcnow()
    async with app.store.session() as db:
        mona = Caseworker(name="mona", role="caseworker", active=True, created_at=now)
        db.add(mona)
        await db.flush()
        db.add(ConsoleSession(id_hash="x" * 64, caseworker_id=mona.id, csrf_token="c",
                              lang="ar", created_at=now, last_seen_at=now))
    app.engine.staff._cached = None  # type: ignore[union-attr]  # skip the cache interval
    text = await ask_for_a_person(app, "second")
    assert "A caseworker is online. People waiting before you: 1." in text
    async with app.store.session() as db:
        assert (await db.scalar(select(Caseworker.name))) == "mona"
