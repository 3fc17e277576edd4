"""The leaf of the dependency graph: what channels, the engine, flows and back offices exchange.

Everything here is a frozen dataclass so that a turn's input and output can be logged (without
text), compared in tests and passed between tasks without anyone mutating them underneath.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Channel(StrEnum):
    TERMINAL = "terminal"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"


class MediaKind(StrEnum):
    """Non-text content a user may send; the engine answers each kindly instead of failing."""

    STICKER = "sticker"
    VOICE = "voice"
    AUDIO = "audio"
    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    LOCATION = "location"
    CONTACT = "contact"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class UserRef:
    """A user as the core sees them: a channel and a pseudonymous key (HMAC of the platform id)."""

    channel: str
    key: str


@dataclass(frozen=True, slots=True)
class Button:
    """A choice offered to the user; ``id`` is stable and ≤ 64 bytes (Telegram callback data)."""

    id: str
    title: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a user did: typed text, tapped a button, or sent media."""

    user: UserRef
    text: str = ""
    button_id: str | None = None
    media: MediaKind | None = None
    message_id: str | None = None
    """Platform message or update id: used for de-duplication and quick-exit deletion."""
    start_payload: str | None = None
    """Deep-link payload (``/start <code>``) for campaign attribution."""
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message for the user; channels degrade buttons where the platform lacks them."""

    text: str
    buttons: tuple[Button, ...] = ()


# --- domain events -------------------------------------------------------------------------
# Flows return these; the engine persists them and hands them to the back offices (handoff,
# outreach). None carries free text or platform ids.


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of domain events."""

    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class HandoffRequested(Event):
    priority: str  # urgent | high | normal
    reason: str  # emergency | screening | user_request
    risk_level: str | None = None
    indicators: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScreeningStarted(Event):
    pass


@dataclass(frozen=True, slots=True)
class ScreeningCompleted(Event):
    risk_level: str
    score: int
    indicators: tuple[str, ...]
    answers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """(question id, yes|no|skip) pairs: sensitive, stored encrypted in their own table."""
    age_band: str | None = None


@dataclass(frozen=True, slots=True)
class EmergencyTriggered(Event):
    pass


@dataclass(frozen=True, slots=True)
class SafetyCheckAsked(Event):
    """The bot asked whether the person is safe right now (a worrying, unclear message)."""


@dataclass(frozen=True, slots=True)
class SelfHarmDisclosed(Event):
    """The person wrote of suicidal thoughts or self-injury."""


@dataclass(frozen=True, slots=True)
class MinorDisclosed(Event):
    """The writer said they are under 18."""


@dataclass(frozen=True, slots=True)
class ChildAtRiskReported(Event):
    """Someone reported a specific child at risk."""


@dataclass(frozen=True, slots=True)
class ModuleOpened(Event):
    module_id: str


@dataclass(frozen=True, slots=True)
class ModuleProgressed(Event):
    """The user read up to ``position`` (0-based) of a module: where they can resume."""

    module_id: str
    position: int


@dataclass(frozen=True, slots=True)
class ModuleCompleted(Event):
    module_id: str


@dataclass(frozen=True, slots=True)
class ModuleRated(Event):
    module_id: str
    useful: bool


@dataclass(frozen=True, slots=True)
class QuizAnswered(Event):
    module_id: str
    correct: bool


@dataclass(frozen=True, slots=True)
class LanguageChanged(Event):
    language: str


@dataclass(frozen=True, slots=True)
class Subscribed(Event):
    """An explicit opt-in to tips (a new one or changed choices); the values are the outreach
    segment vocabulary (topic ids, governorate ids, age band ids), never free text."""

    topics: tuple[str, ...] = ()
    governorate: str | None = None
    age_band: str | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribed(Event):
    """Opt-out: no campaign message may reach the user after this turn commits."""


@dataclass(frozen=True, slots=True)
class Attributed(Event):
    """A new user arrived through a campaign or partner link (a validated slug)."""

    joined_via: str


@dataclass(frozen=True, slots=True)
class QuickExit(Event):
    """The user hid the conversation; channels that can delete messages do so."""


@dataclass(frozen=True, slots=True)
class ContactCheckAsked(Event):
    """The user wrote after a quick exit or an erasure; asked whether it is OK to continue."""


@dataclass(frozen=True, slots=True)
class ContactResumed(Event):
    """The user said it is OK to continue here: held messages may be delivered again."""


@dataclass(frozen=True, slots=True)
class DataErased(Event):
    pass


@dataclass(frozen=True, slots=True)
class HandoffEnded(Event):
    """The user asked to stop talking to a person."""


@dataclass(frozen=True, slots=True)
class RelayedToCase(Event):
    """A user message that belongs to an open case thread (text travels separately, encrypted)."""

    text: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReferralConsentAnswered(Event):
    """The person answered in the chat about a proposed referral: ``yes``, ``no``, ``later``,
    or ``stop`` (end a consent given before). ``token`` ties the answer to the question that
    was shown; the back office checks it (handoff/referrals)."""

    referral_id: int
    answer: str
    token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Turn:
    """The whole answer to one ``Inbound``: messages to send and events that happened."""

    outbound: tuple[Outbound, ...] = ()
    events: tuple[Event, ...] = ()
    duplicate: bool = False
    """True when the inbound was already processed (at-least-once delivery): send nothing."""
    outbox_ids: tuple[int, ...] = ()
    """Outbox rows holding ``outbound`` (written with the turn): mark them sent once sent."""
    erased_message_ids: tuple[str, ...] = ()
    """After "delete my data": the chat's platform message ids, for channels that can delete."""
