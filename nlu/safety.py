"""Emergency safety net: high-recall, high-precision rules for immediate danger.

The statistical classifier can be wrong; a message like "7ad beyedrabni" or "ils m'ont
enfermé" must still reach the emergency flow. Rules are data (safety.yml), compiled once
and run on the normalised text (and on its Arabizi skeleton for spelling-heavy Arabizi).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from nlu import yamlio

from .normalize import arabizi_key, normalize

BLOCKER_WINDOW_TOKENS = 3
MAX_SAFETY_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    patterns: tuple[re.Pattern[str], ...]
    require_all: bool
    on_keys: bool
    label: str = "emergency"
    hyperbole: bool = False
    """Said in jest every day ("my mum will kill me", "je veux mourir 😂"): in a figurative
    context such a rule is dropped; any other rule is asked about instead."""
    any_of: re.Pattern[str] | None = None
    """All ``patterns`` as one alternation: one search tells whether any of them occurs at
    all, so the pattern-by-pattern walk (for blockers) runs only on the few messages where one
    does. None when the patterns cannot be joined (a numbered back-reference)."""

    @staticmethod
    def joined(patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str] | None:
        if any(re.search(r"\\[1-9]", p.pattern) for p in patterns):
            return None
        return re.compile("|".join(f"(?:{p.pattern})" for p in patterns))


def _keyed(tokens: list[str]) -> str:
    """Every Latin token replaced by its Arabizi skeleton; token count is preserved."""
    return " ".join(arabizi_key(t) or t for t in tokens)


class SafetyNet:
    def __init__(self, rules: tuple[Rule, ...], blockers: tuple[re.Pattern[str], ...],
                 figurative: tuple[re.Pattern[str], ...] = ()) -> None:
        self.rules = rules
        self.blockers = blockers
        self.figurative_patterns = figurative

    @classmethod
    def from_mapping(cls, data: dict) -> SafetyNet:
        rules = []
        for raw in data.get("rules", ()):
            require_all = "all" in raw
            patterns = raw["all"] if require_all else raw["any"]
            compiled = tuple(re.compile(p) for p in patterns)
            rules.append(Rule(str(raw["id"]), compiled, require_all, raw.get("over") == "keys",
                              str(raw.get("label", "emergency")), bool(raw.get("hyperbole")),
                              None if require_all else Rule.joined(compiled)))
        blockers = tuple(re.compile(p) for p in data.get("blockers", ()))
        figurative = tuple(re.compile(p) for p in data.get("figurative", ()))
        return cls(tuple(rules), blockers, figurative)

    @classmethod
    def load(cls) -> SafetyNet:
        text = resources.files("nlu").joinpath("safety.yml").read_text(encoding="utf-8")
        return cls.from_mapping(yamlio.safe_load(text))

    def _blocked(self, tokens: list[str], text: str, start: int) -> bool:
        index = text.count(" ", 0, start) + (0 if start == 0 or text[start] != " " else 1)
        window = " ".join(tokens[max(0, index - BLOCKER_WINDOW_TOKENS) : index])
        return bool(window) and any(b.search(window) for b in self.blockers)

    def _rule_fires(self, rule: Rule, tokens: list[str], text: str) -> bool:
        if rule.require_all:
            first = rule.patterns[0].search(text)
            return (first is not None and not self._blocked(tokens, text, first.start())
                    and all(p.search(text) for p in rule.patterns[1:]))
        if rule.any_of is not None and rule.any_of.search(text) is None:
            return False
        for pattern in rule.patterns:
            for m in pattern.finditer(text):
                if not self._blocked(tokens, text, m.start()):
                    return True
        return False

    def fired(self, normalized: str, *, literal_only: bool = False) -> dict[str, str]:
        """Label -> id of the first rule of that label that fires on a normalised text;
        ``literal_only`` skips the rules marked ``hyperbole``."""
        normalized = normalized[:MAX_SAFETY_CHARS]
        tokens = normalized.split()
        found: dict[str, str] = {}
        if not tokens:
            return found
        keyed: str | None = None
        for rule in self.rules:
            if rule.label in found or (literal_only and rule.hyperbole):
                continue
            if rule.on_keys:
                keyed = keyed if keyed is not None else _keyed(tokens)
                text = keyed
            else:
                text = normalized
            if self._rule_fires(rule, tokens, text):
                found[rule.label] = rule.id
        return found

    def figurative(self, normalized: str) -> bool:
        """True when the text speaks figuratively or third-hand (a joke, an exam, the heat,
        a match, the news): a statistical guess of danger is then not trusted."""
        normalized = normalized[:MAX_SAFETY_CHARS]
        return any(p.search(normalized) for p in self.figurative_patterns)

    def match_normalized(self, normalized: str) -> str | None:
        """Id of the first emergency rule that fires on an already normalised text, else None."""
        return self.fired(normalized).get("emergency")

    def match(self, text: str) -> str | None:
        return self.match_normalized(normalize(text))

    def is_emergency(self, text: str) -> bool:
        return self.match(text) is not None


@lru_cache(maxsize=1)
def default_safety_net() -> SafetyNet:
    """The packaged rules, compiled once (immutable, safe to share)."""
    return SafetyNet.load()


def is_emergency(text: str) -> bool:
    """True when `text` clearly states an immediate danger to the writer (or their child)."""
    return default_safety_net().is_emergency(text)
