"""The statistical half of the safety layer: one linear scorer per safety label.

Rules (``safety.yml``) catch the clear statements; this model catches the way people actually
say it (indirect, misspelled, mixed). It shares the intent classifier's features
(``features.analyze``: char n-grams, words, Arabizi skeletons) but is trained on its own
multi-label data (``safety_data/*.jsonl``) and is independent of intent classification.

Each label has two thresholds on its score, both chosen on out-of-fold scores of the training
data's negatives: ``act`` (2% of them reach it; 4.5% for emergency and self-harm) and ``ask``
(a lower one where a label has a grey zone: a score between ``ask`` and ``act`` is where the
bot asks "are you safe now?").
Training needs scikit-learn and runs only on a cache miss; inference is numpy only.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from . import features, npz
from .features import analyze
from .normalize import normalize
from .rasa_data import read_rasa_yaml

log = logging.getLogger(__name__)

MODEL_FORMAT = "sanad-safety-v1"
DATA_DIR = Path(__file__).resolve().parent / "safety_data"

INDICATORS: tuple[str, ...] = (
    "documents_retained", "not_free_to_leave", "violence_threats", "recruitment_debt",
    "deceived_job", "wages_withheld", "sexual_exploitation", "forced_marriage", "organ_removal",
)
"""Coercion indicators; the first six are also screening question ids (content/screening.yml)."""
LABELS: tuple[str, ...] = (
    "emergency", "self_harm", "minor", "child_at_risk", "grey", "imminent_travel", *INDICATORS,
)
VARIETIES: tuple[str, ...] = ("egy", "msa", "sud", "lev", "arabizi", "en", "fr")

ACT_FALSE_ALARMS = 0.02
"""Each label acts above the score that 2% of the out-of-fold negatives reach: precision
first, since acting replaces what the person asked for ..."""
ACT_FALSE_ALARMS_BY_LABEL: dict[str, float] = {"emergency": 0.045, "self_harm": 0.045}
"""... except the two urgent labels, which act where they used to ask. Out of fold on the
training data (December 2026), a grey zone of their own (asking between 4% and 2%) caught
fewer people in danger AND raised more false alarms than acting on all of it: a weak
emergency or self-harm score is more often right than the rest of the message suggests, and
the answer to a wrong one (the lines, a person) is the same a safety question leads to.
The safety question still comes from the `grey` label, a literal danger in a joking context
and the intent classifier's weak emergency."""
ASK_FALSE_ALARMS: dict[str, float] = {"child_at_risk": 0.025}
"""Between this and the acting threshold the bot asks "are you safe right now?" instead."""
MIN_POSITIVES = 8
"""A label with fewer training positives is not modelled (rules still apply)."""
CV_FOLDS = 5
C = 0.5
SEED = 0
INTENT_NEGATIVES = frozenset({
    "greet", "goodbye", "thanks", "menu", "affirm", "deny", "learn_trafficking",
    "learn_irregular_migration", "safe_migration", "privacy_info", "delete_my_data", "subscribe",
    "unsubscribe", "change_language", "out_of_scope", "find_services", "start_screening",
    "talk_to_human",
})
"""Intents whose training examples are safe to use as negatives for every safety label
(report_concern, check_job_offer and know_rights often describe indicators: left out)."""


@dataclass(frozen=True, slots=True)
class SafetyExample:
    text: str
    labels: frozenset[str]
    variety: str | None = None
    kind: str | None = None
    age: int | None = None


def read_safety_jsonl(path: Path) -> list[SafetyExample]:
    """Rows ``{"text", "labels"[, "variety", "kind", "age"]}`` (nlu/safety_data/README.md)."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            text, labels = str(row["text"]), frozenset(row.get("labels") or ())
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path.name}:{n}: not a safety example") from exc
        unknown = labels - set(LABELS)
        if unknown:
            raise ValueError(f"{path.name}:{n}: unknown labels {sorted(unknown)}")
        age = row.get("age")
        out.append(SafetyExample(text, labels, row.get("variety"), row.get("kind"),
                                 age if isinstance(age, int) else None))
    return out


def training_files(data_dir: Path = DATA_DIR) -> list[Path]:
    return sorted(p for p in data_dir.glob("*.jsonl") if p.is_file())


def intent_examples(files: Iterable[Path]) -> list[SafetyExample]:
    """The intent data as extra examples: `emergency` ones positive, safe intents negative."""
    out = []
    for path in files:
        for ex in read_rasa_yaml(path):
            if ex.intent == "emergency":
                out.append(SafetyExample(ex.text, frozenset({"emergency"}), ex.variety))
            elif ex.intent in INTENT_NEGATIVES:
                out.append(SafetyExample(ex.text, frozenset(), ex.variety))
    return out


@dataclass(frozen=True, slots=True)
class SafetyArrays:
    labels: tuple[str, ...]
    terms: tuple[str, ...]
    idf: np.ndarray  # (F,)
    weights: np.ndarray  # (F, L)
    bias: np.ndarray  # (L,)
    act: np.ndarray  # (L,) thresholds on the decision score
    ask: np.ndarray  # (L,) lower thresholds (grey zone); == act where no grey zone


def _identity(doc: list[str]) -> list[str]:
    return doc


def _threshold_for_false_alarms(negative_scores: np.ndarray, rate: float) -> float:
    """The lowest threshold that at most `rate` of these negative scores reach."""
    if not len(negative_scores):
        return 0.0
    return float(np.quantile(negative_scores, 1.0 - rate)) + 1e-6


def train(examples: Sequence[SafetyExample]) -> SafetyArrays:
    """Fit the vectoriser, one linear SVM per label, and thresholds from out-of-fold scores."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    docs = [analyze(normalize(e.text)) for e in examples]
    counts = Counter(label for e in examples for label in e.labels)
    labels = tuple(label for label in LABELS if counts[label] >= MIN_POSITIVES)
    y = np.array([[label in e.labels for label in labels] for e in examples], dtype=np.int8)

    def pipeline() -> Any:
        vec = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, dtype=np.float32)
        clf = OneVsRestClassifier(LinearSVC(C=C, class_weight="balanced", max_iter=20000,
                                            random_state=SEED))
        return make_pipeline(vec, clf)

    cv = KFold(n_splits=CV_FOLDS, shuffle=True, random_state=SEED)
    oof = np.asarray(cross_val_predict(pipeline(), docs, y, cv=cv, method="decision_function"))
    negatives = np.array([not e.labels for e in examples])
    act, ask = [], []
    for j, label in enumerate(labels):
        act_rate = ACT_FALSE_ALARMS_BY_LABEL.get(label, ACT_FALSE_ALARMS)
        act_t = _threshold_for_false_alarms(oof[negatives, j], act_rate)
        ask_t = min(act_t, _threshold_for_false_alarms(
            oof[negatives, j], ASK_FALSE_ALARMS.get(label, act_rate)))
        act.append(act_t)
        ask.append(ask_t)
    model = pipeline().fit(docs, y)
    vec, clf = model.steps[0][1], model.steps[1][1]
    coef = np.vstack([est.coef_ for est in clf.estimators_])
    intercept = np.concatenate([est.intercept_ for est in clf.estimators_])
    terms = [""] * len(vec.vocabulary_)
    for term, i in vec.vocabulary_.items():
        terms[i] = term
    log.info("trained safety model: %d examples, %d labels, %d features",
             len(examples), len(labels), len(terms))
    return SafetyArrays(
        labels=labels, terms=tuple(terms), idf=np.asarray(vec.idf_, dtype=np.float32),
        weights=np.ascontiguousarray(coef.T, dtype=np.float32),
        bias=np.asarray(intercept, dtype=np.float32),
        act=np.asarray(act, dtype=np.float32), ask=np.asarray(ask, dtype=np.float32),
    )


class SafetyModel:
    """Per-label decision scores of a normalised text; immutable, safe to share."""

    __slots__ = ("_act", "_ask", "_bias", "_idf", "_vocab", "_weights", "labels")

    def __init__(self, arrays: SafetyArrays) -> None:
        self.labels = arrays.labels
        self._vocab = {t: i for i, t in enumerate(arrays.terms)}
        self._idf, self._weights, self._bias = arrays.idf, arrays.weights, arrays.bias
        self._act, self._ask = arrays.act, arrays.ask

    def scores(self, normalized: str) -> np.ndarray:
        """Decision score per label (order of `labels`); 0 is the SVM's own boundary."""
        vector = features.tfidf(self._vocab, self._idf, normalized)
        if vector is None:
            return self._bias.astype(np.float64)
        idx, vals = vector
        return self._bias + vals @ self._weights[idx]

    def assess(self, normalized: str) -> tuple[frozenset[str], frozenset[str], dict[str, float]]:
        """(labels over their acting threshold, labels in their grey zone, margin per label).

        The margin is the score minus the acting threshold: ≥ 0 acts, the grey zone is < 0."""
        s = self.scores(normalized)
        acted = frozenset(lab for lab, v, t in zip(self.labels, s, self._act, strict=True)
                          if v >= t)
        grey = frozenset(lab for lab, v, t, a in zip(self.labels, s, self._act, self._ask,
                                                     strict=True) if a <= v < t)
        margins = {lab: float(v - t) for lab, v, t in zip(self.labels, s, self._act,
                                                           strict=True)}
        return acted, grey, margins

    # -- persistence ------------------------------------------------------------------
    def save(self, path: Path) -> None:
        terms = sorted(self._vocab, key=self._vocab.__getitem__)
        npz.save_atomic(path, format=np.array(MODEL_FORMAT), labels=np.array(self.labels),
                        terms=npz.terms_blob(terms), idf=self._idf, weights=self._weights,
                        bias=self._bias, act=self._act, ask=self._ask)

    @classmethod
    def load(cls, path: Path) -> SafetyModel:
        z = npz.load_checked(path, MODEL_FORMAT)
        arrays = SafetyArrays(
            labels=tuple(str(c) for c in z["labels"]), terms=npz.blob_terms(z["terms"]),
            idf=z["idf"], weights=z["weights"], bias=z["bias"], act=z["act"], ask=z["ask"],
        )
        if arrays.weights.shape != (len(arrays.terms), len(arrays.labels)):
            raise ValueError("inconsistent cache file")
        return cls(arrays)


def cache_key(files: Sequence[Path]) -> str:
    h = hashlib.sha256(MODEL_FORMAT.encode())
    here = Path(__file__).resolve().parent
    for source in ("features.py", "normalize.py", "safety_model.py"):
        h.update((here / source).read_bytes())
    for path in files:
        h.update(b"\0" + path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def load_or_train(safety_files: Sequence[Path], intent_files: Sequence[Path],
                  cache_dir: Path) -> SafetyModel:
    """The cached model for these data files, trained (and cached) on a miss."""
    path = cache_dir / f"safety-{cache_key([*safety_files, *intent_files])[:40]}.npz"

    def build() -> SafetyModel:
        examples = [e for f in safety_files for e in read_safety_jsonl(f)]
        return SafetyModel(train([*examples, *intent_examples(intent_files)]))

    return npz.load_or_build(path, SafetyModel.load, build)
