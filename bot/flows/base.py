"""What every flow sees and returns.

Flows are pure: given a :class:`TurnContext` they return a :class:`Step` (messages, the next
named state, events). They never touch a database, a socket or a platform, which is what lets
the same flow run on Telegram, WhatsApp and the terminal and be tested without any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from bot.core.state import Conversation, Profile, Reading, Staffing
from bot.flows.routes import Routes, RoutingTable
from bot.messages import Button, Event, Inbound, Outbound
from nlu.safeguard import CLEAR, SafetyAssessment

if TYPE_CHECKING:
    from bot.content import ContentLibrary
    from bot.i18n import UiCatalog


@dataclass
class Step:
    """The outcome of a flow for one turn."""

    messages: list[Outbound] = field(default_factory=list)
    flow: str = "menu"
    state: str = "menu.start"
    data: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    language: str | None = None
    """Set when the flow changed the reply language (and locked it: the user chose)."""
    understood: bool = True
    """False when the flow could not make sense of the message ("didn't understand", an
    answer hint): the safety layer then asks rather than lets a worrying message pass."""

    def then_events(self, *events: Event) -> Step:
        """This step with ``events`` added."""
        self.events.extend(events)
        return self

    def then(self, other: Step) -> Step:
        """This step's messages and events, followed by ``other``'s, ending in its state."""
        return Step(
            messages=[*self.messages, *other.messages], flow=other.flow, state=other.state,
            data=other.data, events=[*self.events, *other.events],
            language=other.language or self.language,
        )


@dataclass(frozen=True)
class TurnContext:
    """Everything a flow may look at during one turn (read-only)."""

    inbound: Inbound
    text: str
    understanding: Reading
    button_id: str | None
    lang: str
    profile: Profile
    conversation: Conversation
    content: ContentLibrary
    ui: UiCatalog
    flows: FlowRegistry
    now: datetime
    staff: Staffing | None = None
    safety: SafetyAssessment = CLEAR
    """What the safety layer found in this message (labels only)."""

    def t(self, key: str, **values: Any) -> str:
        return self.ui.text(self.lang, key, **values)

    def button(self, button_id: str, key: str, **values: Any) -> Button:
        return Button(id=button_id, title=self.t(key, **values))

    def say(self, key: str, *buttons: Button, **values: Any) -> Outbound:
        return Outbound(text=self.t(key, **values), buttons=tuple(buttons))

    def say_text(self, text: str, *buttons: Button) -> Outbound:
        return Outbound(text=text, buttons=tuple(buttons))

    def start(self, flow: str, **kwargs: Any) -> Step:
        """Enter another flow at its beginning.

        When this leaves the current flow and that flow has a ``leave(ctx, step, target,
        kwargs)`` method, it may amend the step (screening offers to resume where the user was)."""
        step = self.flows.get(flow).start(self, **kwargs)
        current = self.conversation.flow
        if flow != current and current in self.flows:
            leave = getattr(self.flows.get(current), "leave", None)
            if leave is not None:
                step = leave(self, step, flow, kwargs)
        return step

    @property
    def data(self) -> Mapping[str, Any]:
        return self.conversation.data

    def in_language(self, lang: str) -> TurnContext:
        """The same context answering in ``lang`` (after the user switched language)."""
        return replace(self, lang=lang)


class Flow(Protocol):
    """A conversation flow: named states, entered by ``start`` and advanced by ``handle``."""

    name: ClassVar[str]
    button_prefixes: ClassVar[tuple[str, ...]]
    """Button ids this flow owns, so a tap on an old message still reaches the right flow."""
    routes: ClassVar[Routes]
    """Its commands and intents, and how the engine's global rules apply to it."""

    @property
    def start(self) -> Callable[..., Step]:
        """``start(ctx, **entry_arguments)``: enter the flow; each flow names its arguments."""
        ...

    def handle(self, ctx: TurnContext) -> Step: ...


class FlowRegistry:
    """The set of flows of one engine, by name, by the button prefixes they own, and by the
    commands and intents they declare (``routing``)."""

    def __init__(self, flows: Sequence[Flow]) -> None:
        self._by_name = {flow.name: flow for flow in flows}
        self.routing = RoutingTable(flows)
        self._prefixes = sorted(
            ((prefix, flow) for flow in flows for prefix in flow.button_prefixes),
            key=lambda pair: -len(pair[0]),
        )

    def get(self, name: str) -> Flow:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def owner_of(self, button_id: str) -> Flow | None:
        for prefix, flow in self._prefixes:
            if button_id == prefix or button_id.startswith(prefix + ":"):
                return flow
        return None
