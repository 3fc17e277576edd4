"""The safety layer's detector: what in a message needs a protective answer, whatever the flow.

Three independent readers, combined per label:

* rules (``safety.yml``): clear first-person statements of danger or suicidal thoughts;
* the multi-label model (``safety_model``): the indirect, misspelled and mixed ways of saying
  the same, plus a specific child at risk, coercion indicators and imminent irregular travel;
* the age reader (``ages``): the writer's own current age, in digits or words. A stated age
  decides ``minor`` on its own (an adult who says "I'm 24" is an adult, whatever the model
  thinks of the rest of the sentence). A child's age given by someone else ("my sister is 14")
  turns the model's doubt about a child at risk into acting on it.

The detector never sees a conversation state and never depends on the intent classifier, so it
can run on every message, before any flow, even one that flood control would drop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from . import ages
from .engine import PROJECT_DIR
from .normalize import normalize
from .rasa_data import training_files as intent_training_files
from .safety import SafetyNet, default_safety_net
from .safety_model import INDICATORS, SafetyModel, load_or_train
from .safety_model import training_files as safety_training_files

MAX_ASSESS_CHARS = 4000
"""A long ramble is read whole (danger is often buried in the middle), up to this."""
MINOR_AGE = 18
MIN_MODEL_TOKENS = 4
"""Shorter messages ("next", "ok bye", Levantine "ليش عم تسأل" = "why are you asking") are
read by the rules alone: a few character n-grams say too little for the model to be trusted
with an alarm."""
URGENT = ("emergency", "self_harm")
"""Labels that are answered at once, before anything else the message may say."""
ASK_ABOUT = frozenset({"emergency", "self_harm", "child_at_risk"})
"""Labels whose grey zone (a weak score) is worth asking "are you safe right now?"."""
FIGURATIVE_PRONE = frozenset({"emergency", "self_harm", "grey"})
CONTEXT_ONLY = frozenset({"woman"})
"""Rule labels that shape an answer (the women's line) but are never acted on alone."""
_DIGIT = re.compile(r"\d")
"""A message with a number in it has its age read by the rules alone (the model cannot tell
"I'm 15" from "when I was 15" or "my son is 15")."""
"""What the model mistakes figurative speech for ("this exam is killing me"): in a figurative
context only a rule may find these."""


@dataclass(frozen=True, slots=True)
class SafetyAssessment:
    """What the safety layer found in one message (labels only: never the text)."""

    labels: frozenset[str] = frozenset()
    """Labels to act on: emergency, self_harm, minor, child_at_risk, grey, imminent_travel and
    coercion indicators (``safety_model.INDICATORS``)."""
    doubts: frozenset[str] = frozenset()
    """Labels in their grey zone: not enough to act, enough to ask."""
    age: int | None = None
    """The writer's own current age when the message states it."""
    rules: tuple[str, ...] = field(default=())
    """Ids of the rules that fired (for logs and tests; no text)."""
    ruled: frozenset[str] = frozenset()
    """The labels a rule (or the age reader) found, as opposed to the model alone."""
    figurative: bool = False
    """The message speaks figuratively or third-hand (a joke, an exam, the news)."""

    def __contains__(self, label: object) -> bool:
        return label in self.labels

    def only_rules(self) -> SafetyAssessment:
        """Just what the rules found: for a typed button title ("خرافة" answering a quiz),
        where a statistical guess must not override the choice the user made."""
        return SafetyAssessment(self.ruled, frozenset(), self.age, self.rules, self.ruled,
                                self.figurative)

    @property
    def urgent(self) -> str | None:
        """``emergency`` or ``self_harm`` when either is to be acted on now."""
        return next((label for label in URGENT if label in self.labels), None)

    @property
    def indicators(self) -> tuple[str, ...]:
        return tuple(i for i in INDICATORS if i in self.labels)

    @property
    def ask(self) -> bool:
        """Worrying but unclear: ask whether the person is safe rather than guess."""
        return "grey" in self.labels or bool(self.doubts & ASK_ABOUT)

    @property
    def worrying(self) -> bool:
        """Anything at all: such a message is never answered with only the menu."""
        return bool(self.labels or self.doubts)


CLEAR = SafetyAssessment()


class SafetyDetector(Protocol):
    """The port the engine depends on (implemented here; a test may pass its own)."""

    def assess(self, text: str) -> SafetyAssessment: ...


class EmbeddedSafety:
    """Rules + model + ages, in process. Immutable: safe to share between tasks."""

    def __init__(self, model: SafetyModel | None, *, rules: SafetyNet | None = None,
                 age_reader: ages.AgeReader | None = None) -> None:
        self.model = model
        self.rules = rules or default_safety_net()
        self.ages = age_reader or ages.default_reader()

    @classmethod
    def load(cls, cache_dir: Path) -> EmbeddedSafety:
        """The packaged data's detector, its model cached in `cache_dir` (trained there on a
        miss); one per process and folder, since it is immutable."""
        return _load(cache_dir.resolve())

    def assess(self, text: str) -> SafetyAssessment:
        if not text or not text.strip():
            return CLEAR
        normalized = normalize(text[:MAX_ASSESS_CHARS])
        fired = self.rules.fired(normalized)
        figurative = self.rules.figurative(normalized)
        doubts: set[str] = set()
        if figurative:  # "this exam will kill me", "the news says a boat sank" ...
            # ... but "they locked me in 😂" may be a joke or a cover: a literal first-person
            # rule in a figurative context is asked about ("are you safe now?"); only the
            # everyday hyperboles ("will kill me") are dropped.
            if any(k in FIGURATIVE_PRONE for k in fired):
                literal = self.rules.fired(normalized, literal_only=True)
                doubts |= {k for k in literal if k in FIGURATIVE_PRONE}
            fired = {k: v for k, v in fired.items() if k not in FIGURATIVE_PRONE}
        labels: set[str] = set(fired) - CONTEXT_ONLY
        if self.model is not None and len(normalized.split()) >= MIN_MODEL_TOKENS:
            acted, grey = self.model.assess(normalized)[:2]
            if figurative:
                acted, grey = acted - FIGURATIVE_PRONE, grey - FIGURATIVE_PRONE
            labels |= acted
            doubts |= grey
        age = self.ages.stated_age(text)
        # The model cannot tell "I'm 15" from "when I was 15" or "my son is 15" (digits or
        # words): where the message has a number, or gives someone else an age, only the age
        # reader speaks of the writer's age.
        model_minor = ("minor" in labels and not _DIGIT.search(normalized)
                       and not self.ages.others_ages(text))
        labels.discard("minor")
        if age is not None:  # a stated age decides, whatever else the model read ...
            minor = age < MINOR_AGE or self.ages.is_minor_statement(text)  # ... "not 18 yet"
        else:
            minor = self.ages.is_minor_statement(text) or model_minor
        ruled = set(fired)
        if minor:
            labels.add("minor")
            if not model_minor or age is not None:
                ruled.add("minor")
        if "child_at_risk" in doubts and self.ages.mentions_child(text):
            labels.add("child_at_risk")  # a doubt about a child, and the child's age given
        if "emergency" in labels:
            labels.discard("grey")
        doubts -= labels
        return SafetyAssessment(frozenset(labels), frozenset(doubts), age,
                                tuple(fired.values()), frozenset(ruled), figurative)


@lru_cache(maxsize=4)
def _load(cache_dir: Path) -> EmbeddedSafety:
    model = load_or_train(safety_training_files(), intent_training_files(PROJECT_DIR), cache_dir)
    return EmbeddedSafety(model)
