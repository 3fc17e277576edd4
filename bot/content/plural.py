"""Plural forms: "3 مواضيع" but "11 موضوع", "1 topic" but "2 topics".

The words are data, in ``content/<lang>/ui.yml``, as one text per key listing the forms by
CLDR plural category, for example::

    topics_count: "one: موضوع واحد | two: موضوعين | few: {n} مواضيع | other: {n} موضوع"

Only the rule that picks a category from a number is code (it is grammar, the same for
every text of a language): the CLDR cardinal rules for Arabic, English and French.
"""

from __future__ import annotations

from collections.abc import Callable

CATEGORIES = ("zero", "one", "two", "few", "many", "other")


def _arabic(n: int) -> str:
    tail = n % 100
    if n == 0:
        return "zero"
    if n == 1:
        return "one"
    if n == 2:
        return "two"
    if 3 <= tail <= 10:
        return "few"
    if 11 <= tail <= 99:
        return "many"
    return "other"


def _english(n: int) -> str:
    return "one" if n == 1 else "other"


def _french(n: int) -> str:
    if n in (0, 1):
        return "one"
    if n != 0 and n % 1_000_000 == 0:
        return "many"
    return "other"


_RULES: dict[str, Callable[[int], str]] = {"ar": _arabic, "en": _english, "fr": _french}


def category(lang: str, n: int) -> str:
    """The CLDR plural category of the whole number ``n`` in ``lang`` (English rules for
    an unknown language)."""
    return _RULES.get(lang, _english)(abs(n))


def parse_forms(forms: str) -> dict[str, str]:
    """``"one: … | other: …"`` as ``{"one": "…", "other": "…"}``; ValueError when a part
    names no known category or ``other`` is missing (it is the fallback)."""
    parsed: dict[str, str] = {}
    for part in forms.split("|"):
        name, sep, text = part.partition(":")
        name = name.strip()
        if not sep or name not in CATEGORIES:
            raise ValueError(f"plural form {part.strip()!r} must start with one of "
                             f"{', '.join(CATEGORIES)} and a colon")
        parsed[name] = text.strip()
    if "other" not in parsed:
        raise ValueError("plural forms need an 'other' form")
    return parsed


def plural(forms: str, lang: str, n: int) -> str:
    """The form of ``forms`` for ``n`` in ``lang``, with ``{n}`` filled in."""
    parsed = parse_forms(forms)
    return parsed.get(category(lang, n), parsed["other"]).replace("{n}", str(n))
