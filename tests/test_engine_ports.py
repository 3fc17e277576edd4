"""The engine runs on its ports alone (#22): an in-memory store, back office and outbox, no
database. What needs the back office (a case, an erasure) reaches it through the ports, in the
turn's own transaction object."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.app import load_content
from bot.core.state import Conversation, Profile, Staffing
from bot.engine import Engine
from bot.messages import HandoffRequested, Inbound, Outbound, UserRef
from nlu import EmbeddedNLU
from tests.conftest import make_settings


@dataclass
class MemoryTx:
    """One turn's transaction over a dict: what the engine and the effects may call."""

    store: MemoryStore
    user: UserRef
    profile: Profile | None = None
    events: list[str] = field(default_factory=list)

    async def load(self, *, claim: str | None = None, address: str | None = None
                   ) -> tuple[Profile, Conversation] | None:
        if claim is not None and claim in self.store.claimed:
            return None
        if claim is not None:
            self.store.claimed.add(claim)
        known = self.user.key in self.store.profiles
        self.profile = self.store.profiles.setdefault(
            self.user.key, Profile(user_id=len(self.store.profiles) + 1,
                                   channel=self.user.channel, is_new=not known,
                                   language="en", language_locked=True))
        return self.profile, self.store.conversations.get(self.user.key, Conversation())

    def set_language(self, language: str, *, locked: bool) -> None:
        assert self.profile is not None
        self.profile.language = language

    def save(self, conversation: Conversation) -> None:
        self.store.conversations[self.user.key] = conversation

    def record_events(self, names_and_data: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self.events.extend(name for name, _ in names_and_data)
        self.store.events.extend(self.events[len(self.store.events):])

    async def set_progress(self, module_id: str, *, position: int | None = None,
                           completed: bool | None = None, useful: bool | None = None) -> None:
        pass

    def add_screening_result(self, risk_level: str, score: int,
                             payload: dict[str, Any]) -> None:
        pass

    def set_age_band(self, age_band: str) -> None:
        pass

    def set_governorate(self, governorate: str) -> None:
        pass

    def set_joined_via(self, code: str) -> None:
        pass

    def pause_contact(self) -> None:
        pass

    async def resume_contact(self) -> int:
        return 0

    async def subscribe(self, topics: tuple[str, ...]) -> None:
        pass

    async def unsubscribe(self) -> None:
        pass

    async def erase_user(self) -> tuple[str, ...]:
        self.store.profiles.pop(self.user.key, None)
        self.store.conversations.pop(self.user.key, None)
        return ("m1", "m2")


@dataclass
class MemoryStore:
    profiles: dict[str, Profile] = field(default_factory=dict)
    conversations: dict[str, Conversation] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)
    events: list[str] = field(default_factory=list)
    erasures: int = 0
    turns: list[MemoryTx] = field(default_factory=list)

    @asynccontextmanager
    async def turn(self, user: UserRef) -> AsyncIterator[MemoryTx]:
        tx = MemoryTx(self, user)
        self.turns.append(tx)
        yield tx

    async def after_erasure(self) -> None:
        self.erasures += 1


@dataclass
class BackOffice:
    """The case queue and referrals ports, recording what they were asked in which turn."""

    calls: list[tuple[str, MemoryTx, object]] = field(default_factory=list)

    async def open_or_join(self, tx: MemoryTx, request: HandoffRequested) -> object:
        self.calls.append(("open_or_join", tx, request))
        return None

    async def add_user_message(self, tx: MemoryTx, text: str) -> None:
        self.calls.append(("add_user_message", tx, text))

    async def end_by_user(self, tx: MemoryTx) -> None:
        self.calls.append(("end_by_user", tx, None))

    async def forget_user(self, tx: MemoryTx) -> None:
        self.calls.append(("forget_user", tx, None))

    async def answer_in_chat(self, tx: MemoryTx, *, referral_id: int, token: str,
                             answer: str) -> object:
        self.calls.append(("answer_in_chat", tx, answer))
        return "sent"


@dataclass
class MemoryOutbox:
    rows: list[tuple[MemoryTx, str, tuple[Outbound, ...]]] = field(default_factory=list)

    async def record_turn_replies(self, tx: MemoryTx, *, channel: str,
                                  messages: Sequence[Outbound], idempotency_key: str) -> int:
        self.rows.append((tx, idempotency_key, tuple(messages)))
        return 100 + len(self.rows)


@dataclass
class Parts:
    engine: Engine[MemoryTx]
    store: MemoryStore
    office: BackOffice
    outbox: MemoryOutbox


@pytest.fixture
def parts(embedded_nlu: EmbeddedNLU, tmp_path: Any) -> Parts:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    content, ui = load_content(settings)
    store, office, outbox = MemoryStore(), BackOffice(), MemoryOutbox()

    async def staff() -> Staffing:
        return Staffing(on_duty=2, waiting=0)

    engine = Engine(settings=settings, store=store, cases=office, referrals=office,
                    outbox=outbox, nlu=embedded_nlu, content=content, ui=ui, staff=staff)
    return Parts(engine, store, office, outbox)


USER = UserRef(channel="terminal", key="k1")


async def test_a_request_for_a_person_reaches_the_case_queue_in_the_turns_transaction(
        parts: Parts) -> None:
    turn = await parts.engine.handle_turn(Inbound(user=USER, text="/human", message_id="1"))
    assert [e.name for e in turn.events] == ["HandoffRequested"]
    [(name, tx, request)] = parts.office.calls
    assert name == "open_or_join" and tx is parts.store.turns[-1]
    assert isinstance(request, HandoffRequested) and request.reason == "user_request"
    # The reply went to the outbox port in the same transaction, and its id came back.
    [(outbox_tx, key, messages)] = parts.outbox.rows
    assert outbox_tx is tx and key == "turn:terminal:1" and messages == turn.outbound
    assert turn.outbox_ids == (101,)
    assert parts.store.conversations["k1"].flow == "handoff"
    assert tx.events == ["HandoffRequested"]


async def test_a_duplicate_delivery_touches_no_port(parts: Parts) -> None:
    await parts.engine.handle_turn(Inbound(user=USER, text="hello", message_id="7"))
    rows = len(parts.outbox.rows)
    turn = await parts.engine.handle_turn(Inbound(user=USER, text="hello", message_id="7"))
    assert turn.duplicate and len(parts.outbox.rows) == rows and not parts.office.calls


async def test_an_erasure_goes_through_the_back_office_and_leaves_no_reply_row(
        parts: Parts) -> None:
    await parts.engine.handle_turn(Inbound(user=USER, text="/delete", message_id="1"))
    rows = len(parts.outbox.rows)
    turn = await parts.engine.handle_turn(
        Inbound(user=USER, text="", button_id="pv:delete:yes", message_id="2"))
    assert "DataErased" in [e.name for e in turn.events]
    assert [name for name, _, _ in parts.office.calls] == ["forget_user", "forget_user"]
    assert all(tx is parts.store.turns[-1] for _, tx, _ in parts.office.calls)
    assert turn.erased_message_ids == ("m1", "m2")
    assert parts.store.erasures == 1
    assert len(parts.outbox.rows) == rows  # nothing is written for an erased user
    assert "k1" not in parts.store.conversations
