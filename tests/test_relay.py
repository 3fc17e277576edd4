"""A caseworker's reply reaches the user on their own channel, once, even through failures."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence

from sqlalchemy import select

from bot.app import Sanad
from bot.channels.terminal import TerminalChannel
from bot.messages import Inbound, Outbound
from bot.outbox import OutboxSender, PermanentDeliveryError
from bot.store.models import OutboxMessage, User
from handoff import relay
from handoff.queue import list_cases


class Recorder:
    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.delivered: list[tuple[str, list[Outbound]]] = []
        self.failures = failures or []

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append((address, list(messages)))


async def open_case(app: Sanad, user: str, channel: str = "terminal") -> int:
    ref = app.store.user_ref(channel, user)
    await app.engine.handle_turn(Inbound(user=ref, text="hello"), address=user)
    await app.engine.handle_turn(Inbound(user=ref, button_id="menu:human"), address=user)
    await app.engine.handle_turn(Inbound(user=ref, text="I need advice about my contract"),
                                 address=user)
    async with app.store.session() as db:
        return (await list_cases(db))[-1].id


async def caseworker_says(app: Sanad, case_id: int, text: str) -> None:
    async with app.store.session() as db:
        await relay.reply(db, cipher=app.store.cipher, ui=app.ui, case_id=case_id,
                          author="mona", text=text)


async def test_reply_is_threaded_and_delivered_exactly_once(sanad: Sanad) -> None:
    case_id = await open_case(sanad, "relay-1")
    await caseworker_says(sanad, case_id, "Hello, I am Mona. Are you safe now?")
    async with sanad.store.session() as db:
        thread = await relay.thread(db, cipher=sanad.store.cipher, case_id=case_id)
    assert [m.sender for m in thread] == ["user", "caseworker"]
    assert thread[0].text == "I need advice about my contract"

    recorder = Recorder()
    sender = OutboxSender(sanad.store, "terminal", recorder)
    assert await sender.run_once() == 1
    assert await sender.run_once() == 0
    [(address, messages)] = recorder.delivered
    assert address == "relay-1" and "Are you safe now?" in messages[0].text
    assert [b.id for b in messages[0].buttons] == ["ho:end"]


async def test_transient_failures_are_retried_and_refusals_mark_the_user_unreachable(
    sanad_sqlite: Sanad,
) -> None:
    app = sanad_sqlite
    first = await open_case(app, "relay-2")
    await caseworker_says(app, first, "one")
    recorder = Recorder(failures=[ConnectionError("down")])
    sender = OutboxSender(app.store, "terminal", recorder)
    assert await sender.run_once() == 0
    async with app.store.session() as db:
        row = await db.scalar(select(OutboxMessage).where(OutboxMessage.kind == "caseworker"))
        assert row is not None and row.status == "pending" and row.attempts == 1
        row.next_attempt_at = row.created_at  # skip the backoff wait
    assert await sender.run_once() == 1 and len(recorder.delivered) == 1

    await caseworker_says(app, first, "two")
    refusing = OutboxSender(app.store, "terminal", Recorder(failures=[PermanentDeliveryError()]))
    assert await refusing.run_once() == 0
    async with app.store.session() as db:
        assert (await db.scalar(select(User.unreachable))) is True
        statuses = sorted(await db.scalars(
            select(OutboxMessage.status).where(OutboxMessage.kind == "caseworker")))
    assert statuses == ["failed", "sent"]


async def test_closed_cases_refuse_replies(sanad_sqlite: Sanad) -> None:
    case_id = await open_case(sanad_sqlite, "relay-3")
    ref = sanad_sqlite.store.user_ref("terminal", "relay-3")
    await sanad_sqlite.engine.handle_turn(Inbound(user=ref, button_id="ho:end"))
    await sanad_sqlite.engine.handle_turn(Inbound(user=ref, button_id="ho:end:yes"))
    try:
        await caseworker_says(sanad_sqlite, case_id, "late")
    except relay.CaseNotOpen:
        pass
    else:
        raise AssertionError("a closed case accepted a reply")


async def test_terminal_prints_caseworker_replies_as_async_lines(sanad_sqlite: Sanad) -> None:
    case_id = await open_case(sanad_sqlite, "term-user")

    class SlowInput(io.StringIO):
        """stdin that ends only after the reply had time to arrive."""

        def readline(self, *args: object) -> str:
            import time

            time.sleep(2.5)
            return ""

    out = io.StringIO()
    channel = TerminalChannel(sanad_sqlite, user_id="term-user", as_json=True,
                              stdin=SlowInput(), stdout=out)
    await caseworker_says(sanad_sqlite, case_id, "مرحبا، أنا منى")
    await asyncio.wait_for(channel.run(), timeout=20)
    import json

    [line] = out.getvalue().splitlines()
    payload = json.loads(line)
    assert payload["async"] is True and "أنا منى" in payload["messages"][0]["text"]


async def test_an_emergency_during_a_handoff_reaches_the_thread_as_urgent(sanad: Sanad) -> None:
    case_id = await open_case(sanad, "relay-4")
    ref = sanad.store.user_ref("terminal", "relay-4")
    turn = await sanad.engine.handle_turn(
        Inbound(user=ref, text="help me they locked me in the room"))
    assert "122" in turn.outbound[0].text
    async with sanad.store.session() as db:
        thread = await relay.thread(db, cipher=sanad.store.cipher, case_id=case_id)
        [case] = await list_cases(db)
    assert thread[-1].text == "help me they locked me in the room"
    assert case.priority == "urgent"


async def test_a_committed_answer_survives_a_crash_before_sending(sanad: Sanad) -> None:
    """The process dies after the turn committed, before the channel sent the reply: once the
    lease runs out, the outbox sender delivers it, exactly once."""
    ref = sanad.store.user_ref("terminal", "crashy")
    turn = await sanad.engine.handle_turn(Inbound(user=ref, text="hello", message_id="m1"),
                                          address="crashy")
    assert turn.outbox_ids
    recorder = Recorder()
    sender = OutboxSender(sanad.store, "terminal", recorder)
    assert await sender.run_once() == 0, "still leased by the (dead) process"
    async with sanad.store.session() as db:
        row = await db.get(OutboxMessage, turn.outbox_ids[0])
        assert row is not None
        row.lease_until = row.created_at  # the lease runs out
    assert await sender.run_once() == 1
    assert await sender.run_once() == 0
    [(address, messages)] = recorder.delivered
    assert address == "crashy" and [m.text for m in messages] == [m.text for m in turn.outbound]
    again = await sanad.engine.handle_turn(Inbound(user=ref, text="hello", message_id="m1"))
    assert again.duplicate and not again.outbox_ids
