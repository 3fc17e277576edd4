"""Which of the modules sharing an intent a message asks for, by the modules' ``keywords``.

The NLU's intents are few and stable (a public contract): "tell me about organ trafficking"
and "what is trafficking" are both ``learn_trafficking``. The module listing an intent first
in ``intents`` is its general module; narrower modules name it in ``subtopic_of`` and their
topic in ``keywords``. When a message names one subtopic's keywords more often than any
other subtopic's, and at least as often as the general module's, that subtopic opens;
otherwise the general module does, as before.

Matching is plain and explainable: the project's one normaliser (``nlu.normalize``) on both
sides; each word of a keyword matches a word of the message, also behind up to three letters
of attached Arabic prefixes (``بال``, ``وال``, ``لل``) and before a plural or feminine ending
(``ين``, ``ات``, ``s``); a keyword of several words must appear as a phrase, word after word
("الاستغلال الجنسي" names "استغلال جنسي"). The same matcher reads the needs a request for help
names (``bot.flows.services``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from nlu.normalize import normalize

from .models import Module

#: Letters that may be glued in front of an Arabic word (و، ب، ل، ف، ك + ال).
_PREFIX_LETTERS = frozenset("وبلفكال")
_MAX_PREFIX = 3
#: Endings a keyword may carry in the message: Arabic plurals and feminine (after
#: normalisation ة is ه), English and French plurals.
_SUFFIXES = frozenset({"", "ين", "ون", "ات", "ه", "s", "es", "x"})


def keyword_hits(module: Module, text: str) -> int:
    """How many of the module's keywords the message contains."""
    return hits(module.keywords, text)


def hits(keywords: Iterable[str], text: str) -> int:
    """How many of ``keywords`` the message contains (each counted once)."""
    return _hits(keywords, normalize(text).split())


def _hits(keywords: Iterable[str], words: Sequence[str]) -> int:
    found = 0
    joined = " ".join(words)
    for keyword in keywords:
        key = _keyword_words(keyword)
        # A part that is nowhere in the text cannot be inside one of its words: one substring
        # search skips the word-by-word walk for nearly every keyword.
        if key and all(part in joined for part in key):
            found += any(
                all(_word_matches(word, part)
                    for word, part in zip(words[i:i + len(key)], key, strict=True))
                for i in range(len(words) - len(key) + 1))
    return found


@functools.lru_cache(maxsize=4096)
def _keyword_words(keyword: str) -> tuple[str, ...]:
    """A keyword's normalised words, once per keyword: keywords are content, never what a
    person wrote, so keeping them costs no privacy (and saved a third of a topic pick)."""
    return tuple(normalize(keyword).split())


def _word_matches(word: str, key: str) -> bool:
    if word == key:
        return True
    if len(key) < 3:
        return False
    start = word.find(key)
    while start != -1:
        prefix, suffix = word[:start], word[start + len(key):]
        if (len(prefix) <= _MAX_PREFIX and all(ch in _PREFIX_LETTERS for ch in prefix)
                and suffix in _SUFFIXES):
            return True
        start = word.find(key, start + 1)
    return False


def pick(subtopics: Sequence[Module], general: Module | None, text: str) -> Module | None:
    """The subtopic ``text`` names, else the ``general`` module (else the first subtopic)."""
    words = normalize(text).split() if text and subtopics else []
    scored = [(_hits(m.keywords, words), m) for m in subtopics] if words else []
    best = max((score for score, _ in scored), default=0)
    leaders = [m for score, m in scored if score == best]
    if best and len(leaders) == 1 and (general is None or _hits(general.keywords, words) <= best):
        return leaders[0]
    return general or (subtopics[0] if subtopics else None)
