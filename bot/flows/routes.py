"""How people reach a flow, declared by the flow itself; the engine routes from these.

Each flow module states its slash commands, the intents that send free text to it, which of
those interrupt any other flow, and how it behaves towards the engine's global rules (it waits
for typed answers, it keeps the user's place on "stop", it relays words to a case, it answers
worrying messages itself). :class:`RoutingTable` gathers them, so a new flow is one module
plus its registration, and the engine never names a flow to route to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

Entry = Mapping[str, Any]
"""The keyword arguments of a flow's ``start`` for one way in (``{"entry": "delete"}``)."""


@dataclass(frozen=True)
class Routes:
    """What one flow declares about its ways in (all optional)."""

    commands: Mapping[str, Entry] = field(default_factory=dict)
    """Slash commands that start the flow: ``{"privacy": {"entry": "info"}}``."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Other names of those commands: ``{"lang": "language"}``."""
    intents: Mapping[str, Entry] = field(default_factory=dict)
    """Intents that send free text here when no flow waits for something specific."""
    interrupts: frozenset[str] = frozenset()
    """Those of ``intents`` that take the user here from any other flow when the classifier
    is sure (not from this flow itself, where they mean something local)."""
    asides: Mapping[str, Entry] = field(default_factory=dict)
    """A command or intent answered without leaving a flow that keeps its place, with this
    entry (an opt-out during screening only confirms the opt-out)."""
    keeps_place: bool = False
    """Opt-out words and commands never take the user out of this flow."""
    relays: bool = False
    """With an open case, the user's words go to the caseworker from this flow."""
    awaits_answer: bool = False
    """Reads a typed answer (an age, a place, yes/no) before child protection and the safety
    question do, so that the answer is not mistaken for a cry for help."""
    answers_worry: bool = False
    """Deals with worrying messages itself: nothing about safety is added to its answers."""

    def __post_init__(self) -> None:
        stray = self.interrupts - self.intents.keys()
        if stray:
            raise ValueError(f"interrupts without an entry in intents: {sorted(stray)}")
        unknown = self.aliases.keys() & self.commands.keys() or (
            set(self.aliases.values()) - self.commands.keys())
        if unknown:
            raise ValueError(f"aliases must name other commands of the flow: {sorted(unknown)}")


NO_ROUTES = Routes()


@dataclass(frozen=True)
class Route:
    """Where a command or an intent leads: a flow, its entry, and its aside form if any."""

    flow: str
    entry: Entry
    aside: Entry | None = None


class Routed(Protocol):
    """A flow as far as routing is concerned."""

    name: ClassVar[str]
    routes: ClassVar[Routes]


class RoutingTable:
    """Every flow's declarations in one place; two flows claiming one word is an error."""

    def __init__(self, flows: Iterable[Routed]) -> None:
        self._routes: dict[str, Routes] = {}
        self._commands: dict[str, Route] = {}
        self._aliases: dict[str, str] = {}
        self._intents: dict[str, Route] = {}
        self._interrupts: dict[str, Route] = {}
        for flow in flows:
            routes = flow.routes
            self._routes[flow.name] = routes
            for name, entry in routes.commands.items():
                _claim(self._commands, name, _route(flow.name, routes, name, entry), "command")
            for alias, name in routes.aliases.items():
                _claim(self._aliases, alias, name, "command alias")
            for intent, entry in routes.intents.items():
                route = _route(flow.name, routes, intent, entry)
                _claim(self._intents, intent, route, "intent")
                if intent in routes.interrupts:
                    self._interrupts[intent] = route
        clash = self._aliases.keys() & self._commands.keys()
        if clash:
            raise ValueError(f"command aliases that are commands too: {sorted(clash)}")

    def of(self, flow: str) -> Routes:
        """The declarations of ``flow`` (none for an unknown name, e.g. an old saved state)."""
        return self._routes.get(flow, NO_ROUTES)

    def command_name(self, name: str) -> str:
        """A command's own name for one of its aliases (``quit`` → ``exit``)."""
        return self._aliases.get(name, name)

    def command(self, name: str) -> Route | None:
        return self._commands.get(self.command_name(name))

    def intent(self, intent: str | None) -> Route | None:
        """Where free text with this intent goes when no flow waits for an answer."""
        return self._intents.get(intent or "")

    def interrupt(self, intent: str | None, current: str) -> Route | None:
        """The flow this intent takes the user to from ``current``, or None: not from the
        target flow itself, and not an opt-out from a flow that keeps the user's place."""
        route = self._interrupts.get(intent or "")
        if route is None or route.flow == current:
            return None
        if route.aside is not None and self.holds_place(current):
            return None
        return route

    def holds_place(self, flow: str) -> bool:
        """Whether ``flow`` keeps the user where they are on an opt-out."""
        routes = self.of(flow)
        return routes.keeps_place or routes.relays


def _route(flow: str, routes: Routes, name: str, entry: Entry) -> Route:
    aside = routes.asides.get(name)
    return Route(flow, MappingProxyType(dict(entry)),
                 None if aside is None else MappingProxyType(dict(aside)))


def _claim(table: dict[str, Any], key: str, value: Any, kind: str) -> None:
    if key in table:
        raise ValueError(f"{kind} {key!r} is declared twice")
    table[key] = value
