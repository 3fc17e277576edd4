"""What a turn knows about a user: their conversation, their profile, the engine's reading of
their words and who can answer them. Plain data: the store fills it, flows read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Conversation:
    """Where the user is: a named flow state plus that flow's data (sealed at rest)."""

    flow: str = "menu"
    state: str = "menu.start"
    data: dict[str, Any] = field(default_factory=dict)
    offered: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Profile:
    """What the engine knows about a user beyond the current conversation."""

    user_id: int
    channel: str
    is_new: bool
    language: str | None
    language_locked: bool
    age_band: str | None = None
    completed_modules: frozenset[str] = frozenset()
    open_case_id: int | None = None
    resume: tuple[str, int] | None = None
    """The module last read but not finished, and the position reached."""
    governorate: str | None = None
    joined_via: str | None = None
    subscription: tuple[str, ...] | None = None
    """The topics of the user's opt-in to tips; None when they are not subscribed."""
    contact_paused: bool = False
    """After a quick exit or an erasure: nothing is sent until the user says it is OK."""

    @property
    def subscribed(self) -> bool:
        return self.subscription is not None


@dataclass(frozen=True)
class Reading:
    """The engine's reading of the user's words (NLU + yes/no lexicon), language-independent."""

    intent: str | None = None
    confidence: float = 0.0
    yes_no: str | None = None  # "yes" | "no" | None
    skip: bool = False


@dataclass(frozen=True)
class Staffing:
    """Who can answer a handoff now, so the bot never promises a person who is not there."""

    on_duty: int
    """Caseworkers and supervisors active in the console recently."""
    waiting: int
    """Cases in the queue that nobody has claimed yet."""
