"""The engine end to end on a real database: state, de-duplication, concurrency, robustness."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from bot.app import Sanad, build
from bot.messages import Inbound, QuickExit
from bot.store.models import EventRecord, Session
from nlu import EmbeddedNLU
from tests.conftest import make_settings


def inbound(sanad: Sanad, user: str, text: str = "", **kw: object) -> Inbound:
    return Inbound(user=sanad.store.user_ref("terminal", user), text=text, **kw)  # type: ignore[arg-type]


async def test_conversation_survives_a_restart(sqlite_url: str, embedded_nlu: EmbeddedNLU) -> None:
    first = await build(make_settings(sqlite_url), nlu=embedded_nlu)
    await first.engine.handle_turn(inbound(first, "u1", "hello"))
    await first.engine.handle_turn(inbound(first, "u1", button_id="menu:check"))
    await first.store.engine.dispose()

    second = await build(make_settings(sqlite_url), nlu=embedded_nlu)
    turn = await second.engine.handle_turn(inbound(second, "u1", "yes"))
    await second.store.engine.dispose()
    # Consent was pending before the restart: "yes" now moves on to the age question.
    assert any(b.id.startswith("sc:age:") for m in turn.outbound for b in m.buttons)


async def test_duplicate_deliveries_are_processed_once(sanad: Sanad) -> None:
    first = await sanad.engine.handle_turn(inbound(sanad, "u2", "hello", message_id="tg:77"))
    again = await sanad.engine.handle_turn(inbound(sanad, "u2", "hello", message_id="tg:77"))
    assert first.outbound and not first.duplicate
    assert again.duplicate and not again.outbound
    async with sanad.store.session() as db:
        assert await db.scalar(select(func.count()).select_from(Session)) == 1


async def test_concurrent_turns_of_one_user_are_serialised(sanad: Sanad) -> None:
    texts = ["hello", "menu", "thanks", "hi", "what can you do", "merci", "salam", "ok"]
    turns = await asyncio.gather(*(
        sanad.engine.handle_turn(inbound(sanad, "u3", t, message_id=f"m{i}"))
        for i, t in enumerate(texts)
    ))
    assert all(t.outbound for t in turns)
    async with sanad.store.session() as db:
        version = await db.scalar(select(Session.version))
    assert version == len(texts), "every turn must see the state the previous one wrote"


async def test_hostile_input_never_crashes(sanad_sqlite: Sanad) -> None:
    junk = [
        "", " ", "\x00\x01\x02", "A" * 20_000, "🙂" * 3000, "\ud800".encode(
            "utf-8", "surrogatepass").decode("utf-8", "replace"), "\u202e\u200f" * 50,
        "ا" * 10_000, "/" * 100, "/start " + "x" * 5000, "1" * 50,
    ]
    for number, text in enumerate(junk):
        turn = await sanad_sqlite.engine.handle_turn(inbound(sanad_sqlite, "u4", text))
        assert turn.outbound, f"input {number} got no answer"
        assert all(len(m.text) <= 4096 for m in turn.outbound)


async def test_quick_exit_from_any_state(sanad_sqlite: Sanad) -> None:
    for setup in ([], ["menu:check"], ["menu:learn"], ["menu:privacy", "pv:delete"]):
        user = f"exit-{len(setup)}-{setup[:1]}"
        await sanad_sqlite.engine.handle_turn(inbound(sanad_sqlite, user, "مرحبا"))
        for button in setup:
            await sanad_sqlite.engine.handle_turn(inbound(sanad_sqlite, user, button_id=button))
        turn = await sanad_sqlite.engine.handle_turn(inbound(sanad_sqlite, user, "خروج"))
        assert any(isinstance(e, QuickExit) for e in turn.events)
        assert len(turn.outbound) == 1 and not turn.outbound[0].buttons


async def test_secret_text_is_encrypted_at_rest_and_absent_from_logs(
    tmp_path: Path, embedded_nlu: EmbeddedNLU, caplog: object,
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)  # type: ignore[attr-defined]
    db_file = tmp_path / "canary.db"
    app = await build(make_settings(f"sqlite+aiosqlite:///{db_file}"), nlu=embedded_nlu)
    canary = "CANARY-Zq81 محمود بيحبسني في شقة المعادي 01001234567"
    user = "201009998877"
    await app.engine.handle_turn(inbound(app, user, "hello"), address=user)
    await app.engine.handle_turn(inbound(app, user, button_id="menu:human"), address=user)
    await app.engine.handle_turn(inbound(app, user, canary), address=user)
    await app.store.engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("canary.db*"))
    for secret in ("CANARY-Zq81", "01001234567", "بيحبسني", user):
        assert secret.encode() not in raw, f"{secret!r} stored in plaintext"
        assert secret not in caplog.text, f"{secret!r} logged"  # type: ignore[attr-defined]


async def test_events_carry_no_free_text(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    await app.engine.handle_turn(inbound(app, "u5", button_id="menu:human"))
    await app.engine.handle_turn(inbound(app, "u5", "CANARY-relay-text"))
    async with app.store.session() as db:
        rows = list(await db.scalars(select(EventRecord)))
    assert rows and all("CANARY" not in str(r.data) for r in rows)
