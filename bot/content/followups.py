"""Follow-up questions: which of a module's ``questions`` a free-text message asks.

Someone reading the job-offer module who types "should I hand over my passport?" wants the
direct answer, not the module's first page again. Each module carries short question-and-
answer entries with example phrasings (``content/<lang>/modules/<id>.yml``, ``questions``);
this module compares a message with those examples.

The comparison is deliberately small and explainable: the project's one text normaliser
(``nlu.normalize``), then TF-IDF over character n-grams inside words (robust to Arabic
prefixes such as و/ب/ال, to spelling variants and typos), word unigrams and Arabizi
consonant keys; the score of a question blends its best cosine similarity with one example
and the cosine with all its examples together (their centroid). No model is trained or
downloaded; the index is built once when the content is loaded and is read-only afterwards.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from nlu.normalize import arabizi_keys, normalize

from .models import FollowUp, Module

#: Below this similarity a message is not taken as one of the module's questions and goes
#: on to the general NLU. Chosen with leave-one-out over the YAML examples (most right minus
#: wrong answers) and a list of navigation words and greetings that must never match
#: (tests/content/test_followups.py reports the rate on held-out phrasings written apart
#: from the YAML; docs/content-followups.md has the figures).
MATCH_THRESHOLD = 0.22

#: The weight of the single closest example in a question's score; the rest goes to the
#: question's centroid. The closest example alone lets one odd example win a message that
#: the question's other examples do not support (a wrong answer); the centroid alone misses
#: short phrasings close to one example. Half and half: fewest wrong answers in
#: leave-one-out over the YAML examples, December 2026.
EXAMPLE_WEIGHT = 0.5

#: The best question must beat the runner-up by this much, else the message is ambiguous
#: between two answers and we do not guess.
MATCH_MARGIN = 0.01

#: A follow-up question has some substance: at least this many words of 3+ letters.
#: "back", "ok", "d'accord" or a lone name would otherwise match any example sharing it.
MIN_CONTENT_WORDS = 2

_CHAR_NGRAMS = (3, 4, 5)

Vector = Mapping[str, float]


def features(text: str) -> Counter[str]:
    """Sparse term counts of one text: words, in-word character n-grams, Arabizi keys."""
    normalized = normalize(text)
    counts: Counter[str] = Counter()
    for word in normalized.split():
        counts["w:" + word] += 1
        padded = f" {word} "
        for size in _CHAR_NGRAMS:
            for start in range(max(0, len(padded) - size + 1)):
                counts["c:" + padded[start:start + size]] += 1
    for key in arabizi_keys(normalized).split():
        if len(key) > 1:
            counts["z:" + key] += 1
    return counts


@dataclass(frozen=True, slots=True)
class FollowUpMatch:
    """The question a message asks, and how sure the matcher is (cosine, 0 to 1)."""

    question: FollowUp
    score: float


class FollowUpIndex:
    """The follow-up examples of every module of one language, as TF-IDF vectors.

    Document frequencies are counted over all modules' examples of the language, so a word
    every question uses ("should", "ينفع") weighs little everywhere.
    """

    __slots__ = ("_centroids", "_examples", "_idf")

    def __init__(self, modules: Iterable[Module]) -> None:
        docs: list[tuple[str, FollowUp, Counter[str]]] = [
            (module.id, question, features(example))
            for module in modules for question in module.questions
            for example in question.examples
        ]
        frequency: Counter[str] = Counter()
        for _, _, counts in docs:
            frequency.update(counts.keys())
        total = len(docs)
        self._idf: Mapping[str, float] = MappingProxyType({
            term: math.log((1 + total) / (1 + df)) + 1.0 for term, df in frequency.items()
        })
        by_module: dict[str, list[tuple[FollowUp, Vector]]] = {}
        for module_id, question, counts in docs:
            by_module.setdefault(module_id, []).append((question, self._vector(counts)))
        self._examples: Mapping[str, tuple[tuple[FollowUp, Vector], ...]] = MappingProxyType(
            {module_id: tuple(rows) for module_id, rows in by_module.items()})
        self._centroids: Mapping[str, Mapping[str, Vector]] = MappingProxyType({
            module_id: MappingProxyType(_centroids(rows)) for module_id, rows in by_module.items()
        })

    def _vector(self, counts: Counter[str]) -> Vector:
        """Sublinear TF times IDF, L2-normalised; unseen terms carry no weight."""
        weights = {
            term: (1.0 + math.log(count)) * self._idf[term]
            for term, count in counts.items() if term in self._idf
        }
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {term: w / norm for term, w in weights.items()} if norm else {}

    def scores(self, module_id: str, text: str) -> list[FollowUpMatch]:
        """Every question of the module with its best similarity to ``text``, best first."""
        query = self._vector(features(text))
        if not query:
            return []
        best: dict[str, FollowUpMatch] = {}
        for question, vector in self._examples.get(module_id, ()):
            score = _cosine(query, vector)
            if question.id not in best or score > best[question.id].score:
                best[question.id] = FollowUpMatch(question, score)
        centroids = self._centroids.get(module_id, {})
        blended = [
            FollowUpMatch(m.question, EXAMPLE_WEIGHT * m.score + (1.0 - EXAMPLE_WEIGHT)
                          * _cosine(query, centroids.get(m.question.id, {})))
            for m in best.values()
        ]
        return sorted(blended, key=lambda m: -m.score)

    def match(self, module_id: str, text: str, *,
              threshold: float = MATCH_THRESHOLD) -> FollowUpMatch | None:
        """The question ``text`` asks inside ``module_id``, or None when no question is
        close enough or two are too close to call."""
        if sum(len(word) >= 3 for word in normalize(text).split()) < MIN_CONTENT_WORDS:
            return None
        ranked = self.scores(module_id, text)
        if not ranked or ranked[0].score < threshold:
            return None
        if len(ranked) > 1 and ranked[0].score - ranked[1].score < MATCH_MARGIN:
            return None
        return ranked[0]


def _cosine(a: Vector, b: Vector) -> float:
    """Dot product of two L2-normalised sparse vectors (iterating over the smaller one)."""
    small, large = (a, b) if len(a) < len(b) else (b, a)
    return sum(w * large.get(term, 0.0) for term, w in small.items())


def _centroids(rows: Iterable[tuple[FollowUp, Vector]]) -> dict[str, Vector]:
    """Each question's examples summed and L2-normalised: the question as a whole."""
    sums: dict[str, dict[str, float]] = {}
    for question, vector in rows:
        total = sums.setdefault(question.id, {})
        for term, weight in vector.items():
            total[term] = total.get(term, 0.0) + weight
    centroids: dict[str, Vector] = {}
    for question_id, total in sums.items():
        norm = math.sqrt(sum(w * w for w in total.values()))
        centroids[question_id] = {t: w / norm for t, w in total.items()} if norm else {}
    return centroids
