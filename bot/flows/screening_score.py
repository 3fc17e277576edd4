"""Screening scoring: from the answers to an explainable risk level (pure, no I/O).

The questionnaire is data (``content/screening.yml``); this module only applies it:

* the **score** is the sum of the weights (1..5) of the questions answered "yes" ("no", "skip"
  and unknown ids count nothing);
* the **level** is the highest threshold the score reaches (``levels`` in the data; today
  ``medium: 3``, ``high: 8``, ``urgent: 14``):

  ======== ===================== ===================================================
  level    score (today)         what the person gets
  ======== ===================== ===================================================
  low      0..2                  "low risk for now", suggestions, a person one tap away
  medium   3..7                  "some warning signs", advice, a person one tap away
  high     8..13                 "high risk", an offer of a person at once
  urgent   14 and more           "you may be in danger", police/ambulance, a person
  ======== ===================== ===================================================

* then every **red flag** whose indicators are all present raises the level to at least its
  ``min_level`` (never lowers it); ``minor`` is the pseudo-indicator of an age option marked
  ``minor: true`` (under 18).

The level decides who is offered a person at once (high, urgent, and any minor) and the
priority of the case that a "yes" opens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.content import ScreeningSpec

LEVELS = ("low", "medium", "high", "urgent")
"""From least to most serious; ``low`` is below every threshold."""
PRIORITY_FOR_LEVEL = {"urgent": "urgent", "high": "high", "medium": "normal", "low": "normal"}
OFFER_PERSON_LEVELS = frozenset({"high", "urgent"})
"""Levels whose result offers a caseworker at once (a minor is offered one whatever the level)."""
MINOR = "minor"
ADULT_AGE = 18
MIN_AGE_ANSWER, MAX_AGE_ANSWER = 5, 100
"""A typed age outside this range is not taken as an answer to "how old are you?"."""


@dataclass(frozen=True)
class Assessment:
    level: str
    score: int
    indicators: tuple[str, ...]
    red_flags: tuple[tuple[str, ...], ...]


def score(spec: ScreeningSpec, answers: Mapping[str, str], *, minor: bool) -> Assessment:
    """Sum the weights of "yes" answers, then let red-flag rules raise the level."""
    weights = {q.id: q.weight for q in spec.questions}
    present = [q.id for q in spec.questions if answers.get(q.id) == "yes"]
    if minor:
        present.append(MINOR)
    total = sum(weights.get(i, 0) for i in present)
    level = "low"
    for name in LEVELS[1:]:
        if total >= spec.thresholds[name]:
            level = name
    fired = []
    for rule in spec.red_flags:
        if set(rule.all_of) <= set(present):
            fired.append(tuple(rule.all_of))
            if LEVELS.index(rule.min_level) > LEVELS.index(level):
                level = rule.min_level
    return Assessment(level, total, tuple(present), tuple(fired))


def offers_person(level: str, *, minor: bool) -> bool:
    """True when the result offers a caseworker at once: a high or urgent level, or a minor."""
    return level in OFFER_PERSON_LEVELS or minor


def priority_for(level: str) -> str:
    """The handoff priority of a case opened from a result of this level."""
    return PRIORITY_FOR_LEVEL.get(level, "normal")


def age_option_for(age: int, options: Mapping[str, object]) -> str | None:
    """The age option a typed age stands for: under 18, 18 to 24, 25 or older; None for an
    age that cannot be an answer (under 5, over 100)."""
    if not MIN_AGE_ANSWER <= age <= MAX_AGE_ANSWER:
        return None
    if age < ADULT_AGE:
        return "under_18"
    return "18_24" if age <= 24 else "25_plus"
