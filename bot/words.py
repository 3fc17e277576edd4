"""The one normaliser for words that act: commands, quick-exit and stop words, typed button
titles, language names, flows' typed answers.

Built on :func:`nlu.normalize.normalize` (case, accents, tatweel, alef/yaa/taa-marbuta forms,
Arabic-Indic digits, punctuation, whitespace) so that the engine, the flows and the classifier
never disagree on whether "Stop!", " STOP " and "stop." are the same word, and whether
"اخفى" is "اخفي". Symbols (emoji, arrows) are dropped too, so typing "next" finds "Next ▶".
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping

from nlu.normalize import normalize


def fold(text: str) -> str:
    """The matching form of a word or a short phrase ("" when nothing word-like is left)."""
    kept = "".join(" " if unicodedata.category(c)[0] == "S" else c for c in normalize(text))
    return " ".join(kept.split())


@functools.lru_cache(maxsize=2048)
def fold_label(label: str) -> str:
    """:func:`fold` of a text the bot wrote (a button title, a word list entry), cached:
    typed answers are compared with every title on screen, every turn. Never use it for what
    a person wrote: that must not stay in memory."""
    return fold(label)


def word_list(texts: Mapping[str, Mapping[str, str]], key: str) -> frozenset[str]:
    """A comma-separated word list (``words.stop``) of every language, folded: people answer
    in another language than the one the bot speaks ("وقف" from an English-speaking user)."""
    return folded(w for table in texts.values() for w in table.get(key, "").split(","))


def folded(words: Iterable[str]) -> frozenset[str]:
    """``words`` folded, without the empty ones."""
    return frozenset(f for f in (fold(w) for w in words) if f)


def starts_with_any(text: str, phrases: Iterable[str], max_tokens: int) -> bool:
    """A short message (≤ ``max_tokens`` words) that begins with one of ``phrases``."""
    tokens = fold(text).split()
    if not tokens or len(tokens) > max_tokens:
        return False
    return any(tokens[: len(p.split())] == p.split() for p in phrases)


_ARTICLES = ("بال", "ال")
_LATIN_ARTICLES = frozenset({"el", "al", "le", "la", "l"})


def name_key(text: str) -> str:
    """A typed name without articles ("بالإنجليزي", "el Cairo", "la France" → the bare name),
    for matching names of places and languages, never for commands."""
    words = []
    for word in fold(text).split():
        if word in _LATIN_ARTICLES:
            continue
        for article in _ARTICLES:
            if word.startswith(article) and len(word) > len(article) + 1:
                word = word[len(article):]
                break
        words.append(word)
    return " ".join(words)
