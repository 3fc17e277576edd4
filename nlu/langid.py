"""Language identification tuned for 1-8 word chat messages.

Generic detectors fail on such input: Arabizi ("ana 3ayez asafer") is not a language they
know, and two-word English or French is below their statistical horizon. So:
  1. script: count letters per Unicode script; Arabic script -> "ar";
  2. Latin script: score Arabizi / English / French with word lists (langid.yml), digits
     used as letters ("3ayez", "la2", "7ad") and French accents/elisions;
  3. only when no list says anything, ask langdetect (seeded, loaded lazily) so that
     Spanish, Italian, ... still get their code.
Arabizi is reported as code "ar", script "Latn": its writer reads Arabic.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from nlu import yamlio

from .normalize import normalize
from .results import Language

UNDETERMINED = Language("und", "Zyyy", 0.0)
MAX_LANGID_CHARS = 1000

# (start, end, script) for letters; anything else with letters is "Zyyy"-ish "other".
_SCRIPT_RANGES = sorted([
    (0x0041, 0x005A, "Latn"), (0x0061, 0x007A, "Latn"), (0x00C0, 0x024F, "Latn"),
    (0x1E00, 0x1EFF, "Latn"), (0x0370, 0x03FF, "Grek"), (0x0400, 0x052F, "Cyrl"),
    (0x0530, 0x058F, "Armn"), (0x0590, 0x05FF, "Hebr"), (0x0600, 0x06FF, "Arab"),
    (0x0750, 0x077F, "Arab"), (0x08A0, 0x08FF, "Arab"), (0x0900, 0x097F, "Deva"),
    (0x0E00, 0x0E7F, "Thai"), (0x10A0, 0x10FF, "Geor"), (0x1100, 0x11FF, "Hang"),
    (0x1200, 0x139F, "Ethi"), (0x2D80, 0x2DDF, "Ethi"), (0x3040, 0x309F, "Hira"),
    (0x30A0, 0x30FF, "Kana"), (0x3400, 0x4DBF, "Hani"), (0x4E00, 0x9FFF, "Hani"),
    (0xAB00, 0xAB2F, "Ethi"), (0xAC00, 0xD7AF, "Hang"), (0xFB50, 0xFDFF, "Arab"),
    (0xFE70, 0xFEFF, "Arab"),
])
_STARTS = [r[0] for r in _SCRIPT_RANGES]
_SCRIPT_LANGUAGE = {"Arab": "ar", "Grek": "el", "Cyrl": "ru", "Armn": "hy", "Hebr": "he",
                    "Deva": "hi", "Thai": "th", "Geor": "ka", "Hang": "ko", "Hira": "ja",
                    "Kana": "ja", "Hani": "zh", "Ethi": "am"}
_ARABIZI_DIGIT_WORD = re.compile(r"^(?=.*[a-z])(?=.*[2356789])[a-z0-9]+$")
_MEASURE = re.compile(r"^\d+(?:st|nd|rd|th|s|am|pm|h|hr|hrs|k|km|kg|g|min|mn|mins|x|e|er|eme|"
                      r"ere|ans|an|j|m|cm|l|ml|gb|mb|dh|le|eg|egp|usd|eur|lbs?)$")
_FRENCH_ACCENTS = re.compile("[éèêëàâîïôûùçœ]")
_FRENCH_ELISION = re.compile(r"\b(?:j|c|l|d|qu|m|n|s|t)'\w")
_TIGRINYA_HINTS = ("ኣ", "ኢዩ", "እየ", "ኣሎ", "ኣይ")
# Weights: how much one token of each kind says about a language.
_W_DIGIT = 2.0
_W_STRONG = 1.5
_W_WEAK = 0.5
_W_WORD = 1.0
_W_ACCENT = 1.5
_W_ELISION = 1.0
LANGDETECT_MIN_PROB = 0.80
LANGDETECT_MIN_TOKENS = 3
"""langdetect is slow (2-15 ms) and unreliable below three words: not asked then."""
_LANGDETECT_CACHE_SIZE = 2048


def script_of(ch: str) -> str | None:
    """ISO 15924 code of a letter's script, None for unknown scripts and non-letters."""
    cp = ord(ch)
    i = bisect.bisect_right(_STARTS, cp) - 1
    if i >= 0:
        start, end, script = _SCRIPT_RANGES[i]
        if start <= cp <= end:
            return script
    return None


def script_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            script = script_of(ch) or "Zzzz"
            counts[script] = counts.get(script, 0) + 1
    return counts


def _words(items: Iterable[Any]) -> frozenset[str]:
    out = set()
    for item in items:
        if not isinstance(item, str):  # an unquoted `no`/`on` that YAML read as a bool
            raise ValueError(f"langid word {item!r} is not a string: quote it in the YAML")
        out.update(normalize(item).split())
    return frozenset(out)


_DOUBLED = re.compile(r"([a-z])\1")


def _known(token: str, lists: _Lists) -> str:
    """Undo two-letter elongation ("aywaa", "mercii") when only the short form is known."""
    short = _DOUBLED.sub(r"\1", token)
    if short != token and (short in lists.arabizi or short in lists.english
                           or short in lists.french):
        return short
    return token


@dataclass(frozen=True, slots=True)
class _Lists:
    arabizi: frozenset[str]
    arabizi_weak: frozenset[str]
    not_arabizi: frozenset[str]
    english: frozenset[str]
    french: frozenset[str]


class LanguageIdentifier:
    """Stateless apart from the lazily created langdetect factory (guarded by a lock)."""

    def __init__(self, lists: _Lists) -> None:
        self._lists = lists
        self._lock = threading.Lock()
        self._langdetect_ready = False
        self._cache: dict[str, tuple[str, float] | None] = {}

    @classmethod
    def load(cls) -> LanguageIdentifier:
        raw = yamlio.safe_load(
            resources.files("nlu").joinpath("langid.yml").read_text(encoding="utf-8"))
        return cls(_Lists(
            arabizi=_words(raw.get("arabizi", ())),
            arabizi_weak=_words(raw.get("arabizi_weak", ())),
            not_arabizi=_words(raw.get("not_arabizi_digit_words", ())),
            english=_words(raw.get("english", ())),
            french=_words(raw.get("french", ())),
        ))

    # -- Latin script ---------------------------------------------------------------
    def is_arabizi_token(self, token: str) -> bool:
        """A normalised token that is Arabic in Latin letters ("3ayez", "la2", "mesh")."""
        if token in self._lists.not_arabizi or _MEASURE.match(token):
            return False
        return bool(_ARABIZI_DIGIT_WORD.match(token)) or token in self._lists.arabizi

    def latin_scores(self, raw: str, tokens: list[str]) -> dict[str, float]:
        """Evidence for Arabizi ("ar"), English and French in a Latin-script message."""
        lists = self._lists
        scores = {"ar": 0.0, "en": 0.0, "fr": 0.0}
        for tok in tokens:
            if tok not in lists.english and tok not in lists.french:
                tok = _known(tok, lists)
            if tok in lists.not_arabizi or _MEASURE.match(tok) or tok.isdigit():
                pass
            elif _ARABIZI_DIGIT_WORD.match(tok):
                scores["ar"] += _W_DIGIT
                continue
            if tok in lists.arabizi:
                scores["ar"] += _W_STRONG
            elif tok in lists.arabizi_weak:
                scores["ar"] += _W_WEAK
            if tok in lists.english:
                scores["en"] += _W_WORD
            if tok in lists.french:
                scores["fr"] += _W_WORD
        lowered = raw.lower()
        scores["fr"] += _W_ACCENT * min(2, len(_FRENCH_ACCENTS.findall(lowered)))
        scores["fr"] += _W_ELISION * min(2, len(_FRENCH_ELISION.findall(lowered)))
        return scores

    def is_arabizi(self, text: str) -> bool:
        lang = self.identify(text)
        return lang.code == "ar" and lang.script == "Latn"

    # -- langdetect fallback ------------------------------------------------------------
    def _langdetect(self, text: str) -> tuple[str, float] | None:
        try:
            from langdetect import DetectorFactory, detect_langs
            from langdetect.lang_detect_exception import LangDetectException
        except ImportError:  # pragma: no cover - dependency of the project
            return None
        with self._lock:
            if text in self._cache:
                return self._cache[text]
            if not self._langdetect_ready:
                DetectorFactory.seed = 0  # deterministic results
                self._langdetect_ready = True
            try:
                best = detect_langs(text)[0]
                found: tuple[str, float] | None = (str(best.lang).split("-")[0], float(best.prob))
            except LangDetectException:
                found = None
            if len(self._cache) >= _LANGDETECT_CACHE_SIZE:
                self._cache.clear()
            self._cache[text] = found
        return found

    # -- entry point --------------------------------------------------------------------
    def identify(self, text: str) -> Language:
        if not isinstance(text, str) or not text:
            return UNDETERMINED
        raw = text[:MAX_LANGID_CHARS]
        counts = script_counts(raw)
        letters = sum(counts.values())
        if not letters:
            return UNDETERMINED  # empty, emoji-only, digits-only, punctuation
        arab, latin = counts.get("Arab", 0), counts.get("Latn", 0)
        if arab and arab >= 0.3 * letters:  # code-mixed Arabic script -> Arabic reader
            return Language("ar", "Arab", round(min(0.99, 0.6 + 0.4 * arab / letters), 3))
        script, top = max(counts.items(), key=lambda kv: kv[1])
        if script != "Latn" or latin < 0.5 * letters:
            return self._other_script(raw, script, top / letters)
        return self._latin(raw)

    def _other_script(self, raw: str, script: str, share: float) -> Language:
        if script == "Ethi":
            tigrinya = sum(raw.count(h) for h in _TIGRINYA_HINTS)
            return Language("ti" if tigrinya else "am", "Ethi", 0.6)
        if script == "Cyrl":
            found = self._langdetect(raw)
            code = found[0] if found and found[0] in {"uk", "bg"} and found[1] >= 0.95 else "ru"
            return Language(code, "Cyrl", round(0.5 + 0.4 * share, 3))
        code = _SCRIPT_LANGUAGE.get(script, "und")
        if script in {"Hira", "Kana"}:
            script = "Jpan"
        return Language(code, script if code != "und" else "Zyyy", round(0.5 + 0.4 * share, 3))

    def _latin(self, raw: str) -> Language:
        tokens = [t for t in normalize(raw).split() if any(c.isalpha() for c in t)]
        scores = self.latin_scores(raw, tokens)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], ("ar", "en", "fr").index(kv[0])))
        (best, s1), (_, s2) = ranked[0], ranked[1]
        if s1 > 0 and s1 > s2:
            conf = 0.55 + 0.44 * (s1 - s2) / (s1 + 0.5)
            return Language(best, "Latn", round(min(conf, 0.99), 3))
        if s1 > 0:  # a tie between lists: Arabizi, then English, then French
            return Language(best, "Latn", 0.5)
        found = self._langdetect(raw) if len(tokens) >= LANGDETECT_MIN_TOKENS else None
        if found and (found[0] in {"en", "fr"} or found[1] >= LANGDETECT_MIN_PROB):
            return Language(found[0], "Latn", round(0.4 + 0.3 * found[1], 3))
        return Language("en", "Latn", 0.3)  # unknown Latin words: English is the safest reply


@lru_cache(maxsize=1)
def default_identifier() -> LanguageIdentifier:
    """The packaged identifier, built once (its word lists are immutable)."""
    return LanguageIdentifier.load()


def identify(text: str) -> Language:
    """Language of a chat message: code (ISO 639-1 / "und"), script (ISO 15924), confidence."""
    return default_identifier().identify(text)
