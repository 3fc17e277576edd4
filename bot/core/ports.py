"""Ports: exactly what the engine and its effects use of the outside world.

The store (``bot.store.repository``), the back office (``handoff.turn_ports``), the outbox
adapter and the NLU (``nlu``) implement them; ``bot.app`` (the composition root) picks the
concrete classes. The transaction type is a parameter: the back office's adapters need the
store's own transaction (its ORM session, its ciphers), which the engine never looks into.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

from bot.core.state import Conversation, Profile, Staffing
from bot.messages import HandoffRequested, Outbound, UserRef
from nlu.results import ParseResult
from nlu.safeguard import SafetyAssessment


class TurnTx(Protocol):
    """The database side of one turn, as the engine and the effects use it."""

    async def load(self, *, claim: str | None = None, address: str | None = None
                   ) -> tuple[Profile, Conversation] | None:
        """The user and their conversation; None when ``claim`` was processed before."""
        ...

    def set_language(self, language: str, *, locked: bool) -> None: ...

    def save(self, conversation: Conversation) -> None: ...

    def record_events(self, names_and_data: Iterable[tuple[str, dict[str, Any]]]) -> None: ...

    async def set_progress(self, module_id: str, *, position: int | None = None,
                           completed: bool | None = None, useful: bool | None = None) -> None: ...

    def add_screening_result(self, risk_level: str, score: int,
                             payload: dict[str, Any]) -> None: ...

    def set_age_band(self, age_band: str) -> None: ...

    def set_governorate(self, governorate: str) -> None: ...

    def set_joined_via(self, code: str) -> None: ...

    def pause_contact(self) -> None: ...

    async def resume_contact(self) -> int: ...

    async def subscribe(self, topics: tuple[str, ...]) -> None: ...

    async def unsubscribe(self) -> None: ...

    async def erase_user(self) -> tuple[str, ...]:
        """Remove the user; the chat's platform message ids, for the channel to delete."""
        ...


Tx = TypeVar("Tx", bound=TurnTx)
Tx_co = TypeVar("Tx_co", bound=TurnTx, covariant=True)
Tx_contra = TypeVar("Tx_contra", bound=TurnTx, contravariant=True)


class TurnStore(Protocol[Tx_co]):
    """Opens one serialised transaction per turn of a user."""

    def turn(self, user: UserRef) -> AbstractAsyncContextManager[Tx_co]: ...

    async def after_erasure(self) -> None:
        """An erasure committed: leave no trace of it behind (SQLite's WAL)."""
        ...


class CaseQueue(Protocol[Tx_contra]):
    """The handoff queue, inside the turn's transaction."""

    async def open_or_join(self, tx: Tx_contra, request: HandoffRequested) -> object: ...

    async def add_user_message(self, tx: Tx_contra, text: str) -> None: ...

    async def end_by_user(self, tx: Tx_contra) -> None: ...

    async def forget_user(self, tx: Tx_contra) -> None: ...


class Referrals(Protocol[Tx_contra]):
    """Referrals to partner organisations, inside the turn's transaction."""

    async def answer_in_chat(self, tx: Tx_contra, *, referral_id: int, token: str,
                             answer: str) -> object: ...

    async def forget_user(self, tx: Tx_contra) -> None: ...


class Outbox(Protocol[Tx_contra]):
    """Durable replies: recorded in the turn's transaction, so a committed answer is sent."""

    async def record_turn_replies(self, tx: Tx_contra, *, channel: str,
                                  messages: Sequence[Outbound], idempotency_key: str) -> int:
        """The outbox row's id."""
        ...


class StaffAvailability(Protocol):
    """Asked once per turn: who could answer a handoff now."""

    async def __call__(self) -> Staffing: ...


class SafetyDetector(Protocol):
    """The safety layer: reads every message before any flow."""

    def assess(self, text: str) -> SafetyAssessment: ...


class Understanding(Protocol):
    """Intent and language of a message (the embedded classifier or a Rasa server)."""

    async def parse(self, text: str) -> ParseResult: ...
