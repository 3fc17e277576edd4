"""A quick exit (or an erasure) pauses all contact until the person comes back and says so.

Whoever holds the phone after a quick exit may be the person the user hid the chat from: a
caseworker's reply, a campaign or a held message must not arrive, the console must show why,
and only a "yes" to a neutral question asked *after* the exit resumes contact.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import Sanad
from bot.messages import (
    ContactCheckAsked,
    ContactResumed,
    EmergencyTriggered,
    Inbound,
    QuickExit,
    Turn,
)
from bot.outbox import OutboxSender, held_for_pause
from bot.outreach.campaigns import count_matching
from bot.store.models import OutboxMessage, User
from bot.store.repository import PAUSED, utcnow
from handoff import relay
from handoff.queue import list_cases
from tests.test_relay import Recorder, caseworker_says, open_case
from tests.test_subscribe import Chat, subscribe_all

NEUTRAL_FORBIDDEN = ("again", "تاني", "de nouveau", "caseworker", "case", "trafficking",
                     "أخصائي", "الاتجار", "danger")


async def say(app: Sanad, user: str, text: str = "", button: str | None = None) -> Turn:
    ref = app.store.user_ref("terminal", user)
    return await app.engine.handle_turn(Inbound(user=ref, text=text, button_id=button),
                                        address=user)


def names(turn: Turn) -> set[str]:
    return {type(e).__name__ for e in turn.events}


async def paused_rows(app: Sanad) -> list[str]:
    async with app.store.session() as db:
        return list(await db.scalars(select(OutboxMessage.status)
                                     .where(OutboxMessage.kind == "caseworker")))


async def test_after_a_quick_exit_a_reply_waits_until_the_person_says_it_is_ok(
    sanad: Sanad,
) -> None:
    case_id = await open_case(sanad, "pause-1")
    exit_turn = await say(sanad, "pause-1", "exit")
    assert QuickExit.__name__ in names(exit_turn)

    await caseworker_says(sanad, case_id, "Hello, I am Mona. Are you safe now?")
    recorder = Recorder()
    sender = OutboxSender(sanad.store, "terminal", recorder)
    assert await sender.run_once() == 0 and recorder.delivered == []
    assert await paused_rows(sanad) == [PAUSED]
    async with sanad.store.session() as db:
        [summary] = [c for c in await list_cases(db) if c.id == case_id]
        thread = await relay.thread(db, cipher=sanad.store.cipher, case_id=case_id)
    assert summary.contact_paused and summary.to_dict()["contact_paused"] is True
    assert thread[-1].to_dict()["status"] == "held", "a held reply is never shown as sent"

    # The person (or whoever holds the phone) writes: a neutral question, nothing delivered.
    check = await say(sanad, "pause-1", "hi")
    assert ContactCheckAsked.__name__ in names(check)
    text = "\n".join(m.text for m in check.outbound).casefold()
    assert not any(word in text for word in NEUTRAL_FORBIDDEN), text
    assert await sender.run_once() == 0

    # A button left on screen from before the exit does not count ...
    old_tap = await say(sanad, "pause-1", button="ho:end")
    assert ContactCheckAsked.__name__ in names(old_tap)
    assert await sender.run_once() == 0
    # ... the "yes" of the question on screen does, and the held reply goes out exactly once.
    [yes_button, _] = old_tap.outbound[0].buttons
    resumed = await say(sanad, "pause-1", button=yes_button.id)
    assert ContactResumed.__name__ in names(resumed)
    assert await sender.run_once() == 1 and await sender.run_once() == 0
    [(address, [message])] = recorder.delivered
    assert address == "pause-1" and "Are you safe now?" in message.text
    assert not message.text.casefold().startswith(("👤", "caseworker"))
    async with sanad.store.session() as db:
        assert not next(c for c in await list_cases(db) if c.id == case_id).contact_paused
    # Back in line: the person's next words reach the case again.
    await say(sanad, "pause-1", "thank you, I am ok now")
    async with sanad.store.session() as db:
        thread = await relay.thread(db, cipher=sanad.store.cipher, case_id=case_id)
    assert thread[-1].sender == "user" and thread[-1].text == "thank you, I am ok now"


async def test_no_keeps_contact_paused_and_an_earlier_question_cannot_resume(
    sanad_sqlite: Sanad,
) -> None:
    app = sanad_sqlite
    case_id = await open_case(app, "pause-2")
    await say(app, "pause-2", "exit")
    await caseworker_says(app, case_id, "are you there?")
    first = await say(app, "pause-2", "hello")
    first_yes = first.outbound[0].buttons[0].id
    no = await say(app, "pause-2", button=first.outbound[0].buttons[1].id)
    assert not ({ContactResumed.__name__, ContactCheckAsked.__name__} & names(no))
    typed_no_later = await say(app, "pause-2", "what?")
    assert ContactCheckAsked.__name__ in names(typed_no_later)
    # The first question's "yes" is stale now: a new token was issued.
    stale = await say(app, "pause-2", button=first_yes)
    assert ContactResumed.__name__ not in names(stale)
    assert await OutboxSender(app.store, "terminal", Recorder()).run_once() == 0
    typed_yes = await say(app, "pause-2", "yes")
    assert ContactResumed.__name__ in names(typed_yes)
    assert await paused_rows(app) == ["pending"]


async def test_danger_is_answered_at_once_while_contact_is_paused(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    await say(app, "pause-3", "hello")
    await say(app, "pause-3", "exit")
    turn = await say(app, "pause-3", "help me they locked me in the room and took my phone")
    assert EmergencyTriggered.__name__ in names(turn)
    assert ContactCheckAsked.__name__ not in names(turn)
    # Asking for a person from the emergency answer is consent to be written to here.
    human = await say(app, "pause-3", button="em:human")
    assert ContactResumed.__name__ not in names(human)
    async with app.store.session() as db:
        assert await db.scalar(select(User.contact_paused_at)) is None


async def test_erasure_leaves_a_do_not_contact_mark_and_asks_first(sanad: Sanad) -> None:
    await say(sanad, "pause-4", "hello")
    await say(sanad, "pause-4", "/delete")
    await say(sanad, "pause-4", button="pv:delete:yes")
    turn = await say(sanad, "pause-4", "hello")
    assert ContactCheckAsked.__name__ in names(turn)
    assert not any(w in turn.outbound[0].text.casefold() for w in NEUTRAL_FORBIDDEN)
    resumed = await say(sanad, "pause-4", "yes")
    assert ContactResumed.__name__ in names(resumed)
    async with sanad.store.session() as db:
        assert await db.scalar(select(User.contact_paused_at)) is None


async def test_deleting_data_still_works_while_paused(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    await say(app, "pause-5", "hello")
    await say(app, "pause-5", "exit")
    turn = await say(app, "pause-5", "/delete")
    assert "pv:delete:yes" in [b.id for b in turn.outbound[0].buttons]


async def test_campaigns_skip_a_paused_person(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    chat = Chat(app, "pause-6")
    await subscribe_all(chat)
    async with app.store.session() as db:
        assert await count_matching(db, "", utcnow(), "en") == 1
    await chat("exit")
    async with app.store.session() as db:
        assert await count_matching(db, "", utcnow(), "en") == 0


def test_only_the_answers_to_what_the_person_wrote_after_the_pause_go_out() -> None:
    paused_at = utcnow()
    before, after = paused_at - timedelta(seconds=1), paused_at + timedelta(seconds=1)

    def row(kind: str, created: object) -> OutboxMessage:
        return OutboxMessage(kind=kind, created_at=created)

    assert not held_for_pause(row("caseworker", before), None)
    assert held_for_pause(row("caseworker", before), paused_at)
    assert held_for_pause(row("caseworker", after), paused_at)
    assert held_for_pause(row("campaign", after), paused_at)
    assert held_for_pause(row("reply", before), paused_at), "a reply to an earlier message"
    assert not held_for_pause(row("reply", after), paused_at), "the answer they wait for"
