"""Immutable value types for Sanad's content (awareness modules, services, screening).

Everything here is frozen: the content library is loaded once, validated once, and then
shared read-only by every conversation. Mappings are wrapped in ``MappingProxyType`` by the
loader so that no flow can change a translation for everybody by accident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Source:
    """Where a factual claim comes from. ``url`` is None for sources without one (the
    Arabic news seeds); then ``publisher`` says who published it."""

    id: str
    title: str
    publisher: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class ModuleMessage:
    """One chat message of an awareness module, with the ids of the sources backing it."""

    text: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QuizItem:
    """A myth-or-fact statement. ``answer`` is ``"myth"`` or ``"fact"``."""

    statement: str
    answer: str
    feedback: str


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A short question-and-answer entry of a module: the direct answer to a follow-up
    question asked while reading it ("should I give them my passport?"), instead of the
    module's first page again. ``id`` is the same in every language; ``examples`` are
    phrasings the matcher compares free text with (``bot.content.followups``)."""

    id: str
    examples: tuple[str, ...]
    answer: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Module:
    """An awareness module in one language (``content/<lang>/modules/<id>.yml``)."""

    id: str
    lang: str
    order: int
    title: str
    button: str
    summary: str
    intents: tuple[str, ...]
    keywords: tuple[str, ...]
    reviewed: bool
    reviewer: str | None
    sources: tuple[Source, ...]
    messages: tuple[ModuleMessage, ...]
    quiz: tuple[QuizItem, ...]
    next: tuple[str, ...]
    questions: tuple[FollowUp, ...] = ()
    subtopic_of: tuple[str, ...] = ()
    """Intents whose general module this one narrows ("organ trafficking" within
    ``learn_trafficking``): it opens instead when the message names its ``keywords``."""

    def source(self, source_id: str) -> Source | None:
        """The module's source with this id, or None."""
        return next((s for s in self.sources if s.id == source_id), None)

    def question(self, question_id: str) -> FollowUp | None:
        """The module's follow-up question with this id, or None."""
        return next((q for q in self.questions if q.id == question_id), None)


@dataclass(frozen=True, slots=True)
class Service:
    """A referral service (hotline, referral pathway, organisation) from ``services.yml``.

    Only ``verified`` services may be shown to users as fact; the library filters the rest.
    """

    id: str
    name: Mapping[str, str]
    provider: Mapping[str, str]
    helps_with: Mapping[str, str]
    categories: tuple[str, ...]
    phone: str | None
    url: str | None
    hours: Mapping[str, str] | None
    channel: str
    area: str
    verified: bool
    verified_on: date | None
    source: Source


@dataclass(frozen=True, slots=True)
class AgeOption:
    """An answer button of the screening's age question; ``minor`` marks under-18s."""

    id: str
    minor: bool
    title: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ScreeningQuestion:
    """One risk indicator question; answering "yes" means the indicator is present."""

    id: str
    group: str
    weight: int
    text: Mapping[str, str]
    why: Mapping[str, str]
    advice: Mapping[str, str]
    services: tuple[str, ...]
    source: str | None


@dataclass(frozen=True, slots=True)
class RedFlag:
    """If every indicator in ``all_of`` is present, the level is at least ``min_level``.

    The pseudo-indicator ``minor`` is present when the user chose an age option marked minor.
    """

    all_of: tuple[str, ...]
    min_level: str


@dataclass(frozen=True, slots=True)
class ScreeningSpec:
    """The confidential risk questionnaire as data; the flow and scoring live elsewhere."""

    age_text: Mapping[str, str]
    age_options: tuple[AgeOption, ...]
    questions: tuple[ScreeningQuestion, ...]
    red_flags: tuple[RedFlag, ...]
    thresholds: Mapping[str, int]
    level_text: Mapping[str, Mapping[str, str]]
    sources: tuple[Source, ...]

    def question(self, question_id: str) -> ScreeningQuestion | None:
        """The question with this indicator id, or None."""
        return next((q for q in self.questions if q.id == question_id), None)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the content, named by file and field so an editor can fix it."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


class ContentError(Exception):
    """Raised by ``ContentLibrary.load`` when the content is invalid; carries every problem,
    not just the first, so one run of the checker shows an editor all there is to fix."""

    problems: list[Problem]

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} content problem(s):\n{lines}")


@dataclass(slots=True)
class ProblemLog:
    """Collects problems while parsing; every parser appends here instead of raising."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, file: str, field_name: str, message: str) -> None:
        self.problems.append(Problem(file, field_name, message))
