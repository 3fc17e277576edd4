"""Rule-based reading of ages in every variety (data: ages.yml).

Screening asks "how old are you?" and a minor must be recognised whatever the spelling:
"١٦", "ستة عشر عاما", "سطاشر", "sta4ar", "sixteen", "seize". A classifier cannot be trusted
with that, and a false age is worse than none, so the rules only accept the writer's own
current age ("عندي ١٥ سنة", "I'm 16", "j'ai 17ans") and refuse past ages ("لما كان عندي ١٦"),
other people's ("my son is 16"), durations ("بقالي ١٥ سنة") and prices ("16000").

All matching is on :func:`nlu.normalize.normalize` output in which every number (digits or
words) has been replaced by ``#<value>``, so one pattern covers every way of writing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from nlu import yamlio

from .normalize import arabizi_key, is_latin_token, normalize

MIN_AGE, MAX_AGE = 1, 99
MINOR_AGE_LIMIT = 18
_MAX_PHRASE = 3
_MIN_SKELETON = 4
"""Shorter Arabizi skeletons ("st" for "sitta") are shared by English words ("sit", "set")."""
_WINDOW = 4
_UNNORMALISED = re.compile("[ةأإآى]")
_NUMBER_TOKEN = re.compile(r"#(\d+)")


def _words(items: Iterable[object]) -> list[tuple[str, ...]]:
    out = []
    for item in items:
        tokens = tuple(normalize(str(item)).split())
        if tokens:
            out.append(tokens)
    return out


def _pattern(source: str, years: str) -> re.Pattern[str]:
    if _UNNORMALISED.search(source):
        raise ValueError(f"ages.yml pattern {source!r} is not normalised (ة/أ/إ/آ/ى)")
    return re.compile(source.replace("{years}", years).replace("{n}", r"#(?P<n>\d+)"))


@dataclass(frozen=True)
class AgeReader:
    """Number words, age patterns and the markers that cancel them, from ages.yml."""

    words: Mapping[tuple[str, ...], int]
    skeletons: Mapping[str, int]
    teen_suffix: frozenset[str]
    joiners: frozenset[str]
    attached_joiner: str
    tens_with_teens: frozenset[int]
    digit_split: re.Pattern[str]
    first_person: tuple[re.Pattern[str], ...]
    bare: tuple[re.Pattern[str], ...]
    past_before: frozenset[str]
    blocked_before: frozenset[tuple[str, ...]]
    blocked_after: frozenset[tuple[str, ...]]
    answer_words: frozenset[tuple[str, ...]]
    minor: tuple[re.Pattern[str], ...]
    grades: tuple[re.Pattern[str], ...]
    others: tuple[re.Pattern[str], ...] = ()
    future: tuple[re.Pattern[str], ...] = ()
    future_before: frozenset[str] = frozenset()
    future_after: re.Pattern[str] | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AgeReader:
        numbers = data["numbers"]
        words: dict[tuple[str, ...], int] = {}
        for group in ("units", "teens", "tens"):
            for value, items in numbers[group].items():
                for tokens in _words(items):
                    words[tokens] = int(value)
        skeletons: dict[str, int] = {}
        for value, items in numbers["arabizi"].items():
            for tokens in _words(items):
                key = arabizi_key(tokens[0])
                if len(tokens) == 1 and len(key) >= _MIN_SKELETON:
                    skeletons[key] = int(value)
                words[tokens] = int(value)
        suffixes = sorted((normalize(str(s)) for s in numbers["digit_suffixes"]), key=len,
                          reverse=True)
        stated = data["stated"]
        years = str(data["years"])
        prefixes = sorted((normalize(str(s)) for s in numbers["digit_prefixes"]), key=len,
                          reverse=True)
        return cls(
            words=words, skeletons=skeletons,
            teen_suffix=frozenset(t[0] for t in _words(numbers["teen_suffix"])),
            joiners=frozenset(t[0] for t in _words(numbers["joiners"])),
            attached_joiner=normalize(str(numbers["attached_joiner"])),
            tens_with_teens=frozenset(int(v) for v in numbers["tens_with_teens"]),
            digit_split=re.compile(
                "^(?:(" + "|".join(map(re.escape, prefixes)) + r")(?=\d))?(\d{1,2})(?:("
                + "|".join(map(re.escape, suffixes)) + "))?$"),
            first_person=tuple(_pattern(p, years) for p in stated["first_person"]),
            bare=tuple(_pattern(p, years) for p in stated["bare"]),
            past_before=frozenset(t[0] for t in _words(stated["past_before"])),
            blocked_before=frozenset(_words(stated["blocked_before"])),
            blocked_after=frozenset(_words(stated["blocked_after"])),
            answer_words=frozenset(_words(data["answer_words"])),
            minor=tuple(_pattern(p, years) for p in data["minor"]),
            grades=tuple(_pattern(p, years) for p in data["grades"]),
            others=tuple(_pattern(p, years) for p in data.get("others", ())),
            future=tuple(_pattern(p, years) for p in stated.get("future", ())),
            future_before=frozenset(t[0] for t in _words(stated.get("future_before", ()))),
            future_after=_pattern(str(stated["future_after"]), years)
            if stated.get("future_after") else None,
        )

    @classmethod
    def load(cls) -> AgeReader:
        text = resources.files("nlu").joinpath("ages.yml").read_text(encoding="utf-8")
        return cls.from_mapping(yamlio.safe_load(text))

    # --- numbers -------------------------------------------------------------------------
    def tokens(self, text: str) -> list[str]:
        """Normalised tokens with "16yo", "17ans", "١٦سنة", "ال١٨" split around the number."""
        out: list[str] = []
        for token in normalize(text).split():
            split = self.digit_split.match(token)
            out.extend([p for p in split.groups() if p] if split else [token])
        return out

    def _word(self, tokens: list[str], i: int) -> tuple[int, int] | None:
        """The number word or phrase starting at ``i``: (value, end), longest first."""
        for n in range(min(_MAX_PHRASE, len(tokens) - i), 0, -1):
            value = self.words.get(tuple(tokens[i : i + n]))
            if value is not None:
                return value, i + n
        token = tokens[i]
        if is_latin_token(token):
            value = self.skeletons.get(arabizi_key(token))
            if value is not None:
                return value, i + 1
        return None

    def _tens_after(self, tokens: list[str], i: int) -> tuple[int, int] | None:
        """Tens at ``i`` introduced by a joiner ("و عشرين", "وعشرين", "w 3eshreen")."""
        if i < len(tokens) and tokens[i] in self.joiners and i + 1 < len(tokens):
            found = self._word(tokens, i + 1)
            if found and found[0] % 10 == 0 and found[0] >= 20:
                return found
        if i < len(tokens) and tokens[i].startswith(self.attached_joiner):
            rest = tokens[i][len(self.attached_joiner):]
            value = self.words.get((rest,))
            if value is not None and value % 10 == 0 and value >= 20:
                return value, i + 1
        return None

    def number_at(self, tokens: list[str], i: int) -> tuple[int, int] | None:
        """The number (digits or words, 1-99) that starts at token ``i``: (value, end)."""
        token = tokens[i]
        if token.isdigit():
            follows_digits = i + 1 < len(tokens) and tokens[i + 1].isdigit()
            if len(token) > 2 or follows_digits or token.startswith("0"):
                return None  # 16000, "16 000", 0016: a price or a code, not an age
            return (int(token), i + 1) if MIN_AGE <= int(token) <= MAX_AGE else None
        found = self._word(tokens, i)
        if found is None:
            return None
        value, end = found
        if value < 10:
            if end < len(tokens) and tokens[end] in self.teen_suffix:
                return 10 + value, end + 1
            tens = self._tens_after(tokens, end)
            if tens:
                return tens[0] + value, tens[1]
        elif value >= 20 and value % 10 == 0 and end < len(tokens):
            step = end + 1 if tokens[end] in self.joiners else end
            after = self._word(tokens, step) if step < len(tokens) else None
            if after and (after[0] < 10 or (value in self.tens_with_teens and after[0] < 20)):
                return value + after[0], after[1]
        return value, end

    def marked(self, text: str) -> tuple[str, list[int]]:
        """The normalised text with each number replaced by ``#<value>``, and the values."""
        tokens = self.tokens(text)
        out: list[str] = []
        values: list[int] = []
        i = 0
        while i < len(tokens):
            found = self.number_at(tokens, i)
            if found is None:
                out.append(tokens[i])
                i += 1
                continue
            value, i = found
            out.append(f"#{value}")
            values.append(value)
        return " ".join(out), values

    # --- ages ----------------------------------------------------------------------------
    def stated_age(self, text: str) -> int | None:
        marked, _ = self.marked(text)
        for pattern in self.first_person:
            for match in pattern.finditer(marked):
                before = marked[: match.start()].split()[-2:]
                if self.past_before.isdisjoint(before) and not self._counts(marked, match):
                    return int(match.group("n"))
        future = self._future_age(marked)
        if future is not None:
            return future
        for pattern in self.bare:
            for match in pattern.finditer(marked):
                before = marked[: match.start()].split()[-_WINDOW:]
                if not _contains(before, self.blocked_before) and not self._counts(marked, match):
                    return int(match.group("n"))
        return None

    def _future_age(self, marked: str) -> int | None:
        """The age below a birthday to come ("I turn 16 next month", "هكمل ١٧ في رمضان",
        "j'aurai 16 ans en mars": 15, 16, 15 now); not in a condition ("when I turn 18") nor
        a duration being completed ("هكمل ١٥ سنة في الشغل")."""
        for pattern in self.future:
            for match in pattern.finditer(marked):
                before = marked[: match.start()].split()[-2:]
                after = marked[match.end("n"):]
                rest = marked[match.end():].split()  # "my 16th birthday": "th" is no count
                counts = any(tuple(rest[: len(w)]) == w for w in self.blocked_after)
                if (self.future_before.isdisjoint(before) and not counts
                        and not (self.future_after and self.future_after.search(after))):
                    return max(int(match.group("n")) - 1, MIN_AGE)
        return None

    def _counts(self, marked: str, match: re.Match[str]) -> bool:
        """True when the words right after the number (or after "years") say it counts
        something else: "15 people", "15 سنة خبرة"."""
        for after in (marked[match.end("n"):].split(), marked[match.end():].split()):
            if any(tuple(after[: len(w)]) == w for w in self.blocked_after):
                return True
        return False

    def age_answer(self, text: str) -> int | None:
        marked, values = self.marked(text)
        if len(values) == 1:
            rest = [t for t in marked.split() if not _NUMBER_TOKEN.fullmatch(t)]
            if all((t,) in self.answer_words for t in rest):
                return values[0]
        return self.stated_age(text)

    def is_minor_statement(self, text: str) -> bool:
        marked, _ = self.marked(text)
        for pattern in (*self.minor, *self.grades):
            for match in pattern.finditer(marked):
                before = marked[: match.start()].split()[-_WINDOW:]
                if not _contains(before, self.blocked_before):
                    return True
        return False


    def mentions_child(self, text: str) -> bool:
        """True when the message gives someone else's age, under 18 ("my sister is 14",
        "بنت اختي عندها ١٣ سنة", "un garçon de 10 ans"): with a model's doubt about a child at
        risk, a stated child's age settles it."""
        return any(age < MINOR_AGE_LIMIT for age in self.others_ages(text))

    def others_ages(self, text: str) -> list[int]:
        """Every age the message gives to someone other than the writer ("my son is 12",
        "ابني عنده ١٢ سنة", "ma fille a quinze ans"): whose age it is decides whether a
        minor is writing."""
        marked, _ = self.marked(text)
        return [int(m.group("n")) for pattern in self.others for m in pattern.finditer(marked)]


def _contains(tokens: list[str], phrases: frozenset[tuple[str, ...]]) -> bool:
    return any(tuple(tokens[i : i + len(p)]) == p for p in phrases for i in range(len(tokens)))


@lru_cache(maxsize=1)
def default_reader() -> AgeReader:
    """The packaged rules, read once (immutable, so sharing them is safe)."""
    return AgeReader.load()


def number_value(text: str) -> int | None:
    """The number 1-99 that ``text`` is, in digits or words ("١٦", "ستاشر", "dix-sept",
    "twenty one", "sta4ar"); None when the text is anything more or less than one number."""
    tokens = default_reader().tokens(text)
    found = default_reader().number_at(tokens, 0) if tokens else None
    return found[0] if found and found[1] == len(tokens) else None


def stated_age(text: str) -> int | None:
    """The writer's current age when the message states it ("عندي ١٥ سنة", "I'm 16",
    "j'ai seize ans"); None for past ages, other people's ages, durations and counts."""
    return default_reader().stated_age(text)


def age_answer(text: str) -> int | None:
    """The age in a reply to "how old are you?": a bare number or number word ("16",
    "ستة عشر", "sixteen years"), else an age stated in a sentence."""
    return default_reader().age_answer(text)


def is_minor_statement(text: str) -> bool:
    """True when the writer says they are under 18 without a number ("I'm still a minor",
    "لسه ما كملتش ١٨", "je suis en seconde", "أنا في تانية إعدادي")."""
    return default_reader().is_minor_statement(text)
