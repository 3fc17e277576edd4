"""The languages the bot speaks, declared once: code, writing direction, script, fallback.

Everything that lists languages (settings, interface texts, content checks, the command menus,
outreach) reads :data:`LANGUAGES`. A language may ship progressively: declared with
``complete=False`` it needs only its own name; every text it lacks comes from its fallback
(and that one's fallback), so a half-translated language never shows a missing text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

T = TypeVar("T")

REFERENCE = "en"
"""The language every interface text is written in first (the key list of ``ui.yml``)."""


@dataclass(frozen=True)
class Language:
    code: str
    """ISO 639-1 where there is one (``content/<code>/``, Telegram's ``language_code``)."""
    direction: Literal["rtl", "ltr"]
    script: str
    """ISO 15924 (``Arab``, ``Latn``, ``Ethi``)."""
    fallback: str | None = REFERENCE
    """Where a missing text comes from; None only for the reference language."""
    complete: bool = True
    """False while a translation ships progressively: missing texts are not errors."""


class Languages:
    """A set of declared languages, checked once: fallbacks exist and never loop."""

    def __init__(self, languages: Iterable[Language]) -> None:
        self._by_code = {lang.code: lang for lang in languages}
        for lang in self._by_code.values():
            if lang.fallback is not None and lang.fallback not in self._by_code:
                raise ValueError(f"{lang.code}: fallback {lang.fallback!r} is not declared")
            list(self.chain(lang.code))  # raises on a loop
        if REFERENCE not in self._by_code or self._by_code[REFERENCE].fallback is not None:
            raise ValueError(f"the reference language {REFERENCE!r} must be declared, "
                             "without a fallback")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self._by_code)

    def __iter__(self) -> Iterator[Language]:
        return iter(self._by_code.values())

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Language:
        return self._by_code[code]

    def chain(self, code: str) -> Iterator[str]:
        """``code``, then its fallbacks in order (an unknown code: the reference only)."""
        if code not in self._by_code:
            yield REFERENCE
            return
        seen: set[str] = set()
        current: str | None = code
        while current is not None:
            if current in seen:
                raise ValueError(f"fallbacks of {code!r} loop through {current!r}")
            seen.add(current)
            yield current
            current = self._by_code[current].fallback

    @property
    def rtl(self) -> frozenset[str]:
        return frozenset(lang.code for lang in self if lang.direction == "rtl")

    def with_fallbacks(self, texts: Mapping[str, T]) -> dict[str, T]:
        """``texts`` (by language) with every declared language a value: a language without
        one (a progressive translation) takes its fallback's, along :meth:`chain`."""
        filled = dict(texts)
        for code in self._by_code:
            if code not in filled:
                found = next((texts[c] for c in self.chain(code) if c in texts), None)
                if found is not None:
                    filled[code] = found
        return filled

    @property
    def complete(self) -> tuple[str, ...]:
        """Codes of the languages every text must exist in (the rest fall back)."""
        return tuple(lang.code for lang in self if lang.complete)


LANGUAGES = Languages((
    Language("ar", direction="rtl", script="Arab"),
    Language("en", direction="ltr", script="Latn", fallback=None),
    Language("fr", direction="ltr", script="Latn"),
))
