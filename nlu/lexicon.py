"""Deterministic yes/no/skip for screening answers, in every variety (data: lexicon.yml).

Screening must not depend on a statistical classifier for "اه" vs "لأ": the answer is
looked up after normalisation. A reply is "yes" when it is made only of yes-phrases and
polite fillers ("aywa tab3an", "yes please 🙏"); mixed or unknown replies give None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

from nlu import yamlio

from .normalize import normalize

YesNo = Literal["yes", "no"]
MAX_ANSWER_CHARS = 200
"""A longer reply is a sentence, not a yes/no answer."""
_MAX_PHRASE_TOKENS = 4


def _phrases(items: Iterable[object]) -> frozenset[tuple[str, ...]]:
    out = set()
    for item in items:
        if not isinstance(item, str):  # e.g. an unquoted `no` that YAML read as False
            raise ValueError(f"lexicon entry {item!r} is not a string: quote it in the YAML")
        tokens = tuple(normalize(str(item)).split())
        if tokens:
            out.add(tokens)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Lexicon:
    yes: frozenset[tuple[str, ...]]
    no: frozenset[tuple[str, ...]]
    fillers: frozenset[tuple[str, ...]]
    skips: frozenset[tuple[str, ...]]
    yes_alone: frozenset[tuple[str, ...]] = frozenset()
    """Yes only as the whole message with no question mark (Egyptian "ايه" is "what?")."""

    @classmethod
    def from_mapping(cls, data: dict) -> Lexicon:
        return cls(_phrases(data.get("yes", ())), _phrases(data.get("no", ())),
                   _phrases(data.get("fillers", ())), _phrases(data.get("skip", ())),
                   _phrases(data.get("yes_alone", ())))

    @classmethod
    def load(cls) -> Lexicon:
        text = resources.files("nlu").joinpath("lexicon.yml").read_text(encoding="utf-8")
        return cls.from_mapping(yamlio.safe_load(text))

    def _segment(self, tokens: tuple[str, ...]) -> list[str] | None:
        """Split tokens into known phrases (longest first); None if some token is unknown."""
        kinds: list[str] = []
        i = 0
        while i < len(tokens):
            for n in range(min(_MAX_PHRASE_TOKENS, len(tokens) - i), 0, -1):
                chunk = tokens[i : i + n]
                kind = ("yes" if chunk in self.yes else "no" if chunk in self.no
                        else "filler" if chunk in self.fillers else None)
                if kind:
                    kinds.append(kind)
                    i += n
                    break
            else:
                return None
        return kinds

    def yes_no(self, text: str) -> YesNo | None:
        if not text or len(text) > MAX_ANSWER_CHARS:
            return None
        tokens = tuple(normalize(text).split())
        if tokens in self.yes_alone:
            return None if "?" in text or "؟" in text else "yes"
        kinds = self._segment(tokens)
        if not kinds:
            return None
        found = set(kinds) - {"filler"}
        if found == {"yes"}:
            return "yes"
        if found == {"no"}:
            return "no"
        return None

    def skip(self, text: str) -> bool:
        if not text or len(text) > MAX_ANSWER_CHARS:
            return False
        tokens = tuple(normalize(text).split())
        if tokens in self.skips:
            return True
        kinds = self._skip_segment(tokens) or []
        return "skip" in kinds

    def _skip_segment(self, tokens: tuple[str, ...]) -> list[str] | None:
        kinds: list[str] = []
        i = 0
        while i < len(tokens):
            for n in range(min(_MAX_PHRASE_TOKENS + 2, len(tokens) - i), 0, -1):
                chunk = tokens[i : i + n]
                kind = ("skip" if chunk in self.skips else "filler" if chunk in self.fillers
                        else None)
                if kind:
                    kinds.append(kind)
                    i += n
                    break
            else:
                return None
        return kinds


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The packaged lexicon, read once (immutable, so sharing it is safe)."""
    return Lexicon.load()


def yes_no(text: str) -> YesNo | None:
    """"yes", "no" or None (anything else, including "no idea" / "مش عارف")."""
    return default_lexicon().yes_no(text)


def skip(text: str) -> bool:
    """True when the user asks to skip the current question ("skip", "عدي", "passer")."""
    return default_lexicon().skip(text)
