"""Text normalisation shared by training, inference, the safety net, lexicons and langid.

One function path (`normalize`) so a training example and a user message that differ only
in hamza forms, diacritics, tatweel, elongation, digits, case, accents or punctuation end up
identical. `arabizi_key` folds Latin-script Arabic spelling variants ("3ayez", "3aiz",
"aayez") onto one consonant skeleton, used as extra classifier features and by the safety net.
"""

from __future__ import annotations

import functools
import re
import unicodedata

MAX_NORMALIZE_CHARS = 4000
"""Longer input is cut before normalising: classification only looks at the start anyway."""

_ARABIC_MAP = {
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ٲ": "ا", "ٳ": "ا",
    "ؤ": "و", "ئ": "ي", "ى": "ي", "ی": "ي", "ې": "ي", "ة": "ه", "ۀ": "ه", "ە": "ه",
    "ک": "ك", "ڪ": "ك", "گ": "ك", "ڤ": "ف", "پ": "ب", "چ": "ج", "ژ": "ز",
    "ـ": "",  # tatweel
    "،": ",", "؛": ";", "؟": "?", "٪": "%", "٫": ".", "٬": ",", "۔": ".",
}
_DIGITS = {chr(0x0660 + i): str(i) for i in range(10)}  # Arabic-Indic ٠-٩
_DIGITS |= {chr(0x06F0 + i): str(i) for i in range(10)}  # Persian/Urdu ۰-۹
_LATIN_MAP = {"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "ł": "l", "đ": "d", "ı": "i"}
_TRANSLATE = str.maketrans(_ARABIC_MAP | _DIGITS | _LATIN_MAP)

_ARABIC_MARKS = re.compile(
    "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]")
_SKIN_AND_SELECTORS = re.compile("[\ufe00-\ufe0f\U0001f3fb-\U0001f3ff\u20e3]")
# A letter or symbol repeated 3+ times is elongation ("ساعدوووني", "pleeease", "🙏🙏🙏").
_ELONGATION = re.compile(r"([^\W\d_]|[^\w\s])\1{2,}")
_SPACES = re.compile(r"\s+")
_LATIN_TOKEN = re.compile(r"^[a-z0-9]*[a-z][a-z0-9]*$")


@functools.lru_cache(maxsize=4096)
def _char_class(ch: str) -> str:
    """Map one character to what it becomes: itself, a space, or a spaced-out symbol.

    Cached per character (a character says nothing about the person; the bound keeps a
    flood of rare code points from growing it): it ran once per character of every message,
    several times a turn."""
    cat = unicodedata.category(ch)
    if cat[0] in "LN" or ch.isspace():
        return ch
    if cat == "Mn":
        return ""
    if cat == "So":  # emoji and pictographs carry meaning (👍 ❌ 🆘): keep as own tokens
        return f" {ch} "
    return " "  # punctuation, math/currency symbols, controls, format chars, unassigned


def normalize(text: str) -> str:
    """Canonical matching form: NFKC, Arabic letter/diacritic/digit folding, Latin casefold
    and accent folding, elongation collapse, punctuation to spaces, single spaces."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text[:MAX_NORMALIZE_CHARS])
    text = _SKIN_AND_SELECTORS.sub("", text)
    text = _ELONGATION.sub(r"\1", text.translate(_TRANSLATE).casefold())
    text = _ARABIC_MARKS.sub("", text)
    # Accent folding: decompose, drop combining marks (é->e, ç->c; Arabic madda/hamza too).
    text = unicodedata.normalize("NFD", text)
    text = "".join(map(_char_class, text))
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    text = _ELONGATION.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


# Arabizi folding: multi-letter spellings first, then single characters.
_ARABIZI_DIGRAPHS = (("kh", "x"), ("gh", "g"), ("sh", "4"), ("ch", "4"), ("th", "t"),
                     ("dh", "d"), ("ph", "f"), ("ou", "u"))
_ARABIZI_CHARS = str.maketrans({
    "7": "h", "5": "x", "8": "g", "9": "s", "6": "t", "j": "g", "p": "b", "v": "f",
    "2": None, "3": None, "q": None, "'": None,
    "a": None, "e": None, "i": None, "o": None, "u": None, "y": None,
})
_DOUBLES = re.compile(r"(.)\1+")


def is_latin_token(token: str) -> bool:
    """True for an ASCII letters/digits token with at least one letter (a Latin word)."""
    return bool(_LATIN_TOKEN.match(token))


def arabizi_key(token: str) -> str:
    """Consonant skeleton of a normalised Latin token so Arabizi variants meet:
    "3ayez", "3aiz", "aayez" -> "z"; "beyedrabni", "byedrbny" -> "bdrbn";
    "shoghl", "sho8l" -> "4gl". Returns "" for non-Latin tokens."""
    if not is_latin_token(token):
        return ""
    key = token
    for src, dst in _ARABIZI_DIGRAPHS:
        key = key.replace(src, dst)
    key = _DOUBLES.sub(r"\1", key.translate(_ARABIZI_CHARS))
    return key or "_"


def arabizi_keys(normalized: str) -> str:
    """Space-joined `arabizi_key` of every Latin token of an already normalised text."""
    return " ".join(k for k in (arabizi_key(t) for t in normalized.split()) if k)
