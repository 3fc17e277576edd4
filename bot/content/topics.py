"""Which of the modules sharing an intent a message asks for, by the modules' ``keywords``.

The NLU's intents are few and stable (a public contract): "tell me about organ trafficking"
and "what is trafficking" are both ``learn_trafficking``. The module listing an intent first
in ``intents`` is its general module; narrower modules name it in ``subtopic_of`` and their
topic in ``keywords``. When a message names one subtopic's keywords more often than any
other subtopic's, and at least as often as the general module's, that subtopic opens;
otherwise the general module does, as before.

Matching is plain and explainable: the project's one normaliser (``nlu.normalize``) on both
sides; a keyword of several words must appear as a phrase; a one-word keyword matches a word
of the message, also behind up to three letters of attached Arabic prefixes (``بال``, ``وال``,
``لل``) and before a plural or feminine ending (``ين``, ``ات``, ``s``).
"""

from __future__ import annotations

from collections.abc import Sequence

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
    normalized = normalize(text)
    words = normalized.split()
    padded = f" {normalized} "
    hits = 0
    for keyword in module.keywords:
        key = normalize(keyword)
        if not key:
            continue
        if " " in key:
            hits += f" {key} " in padded
        else:
            hits += any(_word_matches(word, key) for word in words)
    return hits


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
    scored = [(keyword_hits(m, text), m) for m in subtopics] if text else []
    best = max((score for score, _ in scored), default=0)
    leaders = [m for score, m in scored if score == best]
    if best and len(leaders) == 1 and (general is None or keyword_hits(general, text) <= best):
        return leaders[0]
    return general or (subtopics[0] if subtopics else None)
