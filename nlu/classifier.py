"""The embedded intent classifier: numpy-only inference over arrays trained by `training`.

The trained arrays are cached on disk as one `.npz` (no pickle: loaded with
`allow_pickle=False`), keyed by the SHA-256 of the training files and of the source of
the code that turns text into features and trains. A warm start loads the arrays and
builds the vocabulary dict (~50 ms); a parse is a few dict look-ups and a small dot product.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import features, normalize, npz, training
from .rasa_data import read_rasa_yaml
from .training import ModelArrays

log = logging.getLogger(__name__)

MODEL_FORMAT = "sanad-intent-v1"
"""Bump when the cache layout changes; source changes of the pipeline invalidate by hash."""
_KEYED_SOURCES = (features, normalize, training)

Trainer = Callable[[Sequence[str], Sequence[str]], ModelArrays]


def default_cache_dir() -> Path:
    """`$SANAD_CACHE_DIR`, else `$XDG_CACHE_HOME/sanad`, else `~/.cache/sanad`."""
    if env := os.environ.get("SANAD_CACHE_DIR"):
        return Path(env)
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "sanad"
    return Path.home() / ".cache" / "sanad"


def cache_key(files: Sequence[Path]) -> str:
    """SHA-256 over the model format, the pipeline's source code and the training files."""
    h = hashlib.sha256(MODEL_FORMAT.encode())
    for module in _KEYED_SOURCES:
        src = module.__file__
        h.update(Path(src).read_bytes() if src else module.__name__.encode())
    for path in files:
        h.update(b"\0" + path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


class IntentModel:
    """Linear model over sparse TF-IDF features, evaluated with numpy only."""

    __slots__ = ("_bias", "_idf", "_inv_t", "_vocab", "_weights", "classes", "temperature")

    def __init__(self, arrays: ModelArrays) -> None:
        self.classes = arrays.classes
        self.temperature = arrays.temperature
        self._inv_t = 1.0 / max(arrays.temperature, 1e-6)
        self._vocab = {t: i for i, t in enumerate(arrays.terms)}
        self._idf = arrays.idf
        self._weights = arrays.weights
        self._bias = arrays.bias

    def probabilities(self, normalized: str) -> np.ndarray:
        """Calibrated class probabilities (order of `classes`) for a normalised text."""
        logits = self._bias.astype(np.float64)
        vector = features.tfidf(self._vocab, self._idf, normalized)
        if vector is not None:
            idx, vals = vector
            logits = logits + vals @ self._weights[idx]
        z = logits * self._inv_t
        z = np.exp(z - z.max())
        return z / z.sum()

    def rank(self, normalized: str) -> list[tuple[str, float]]:
        """(intent, probability) pairs, best first."""
        probs = self.probabilities(normalized)
        order = np.argsort(-probs, kind="stable")
        return [(self.classes[i], float(probs[i])) for i in order]

    # -- persistence ------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename) so concurrent starts never see half a file."""
        terms = sorted(self._vocab, key=self._vocab.__getitem__)
        npz.save_atomic(path, format=np.array(MODEL_FORMAT), classes=np.array(self.classes),
                        terms=npz.terms_blob(terms), idf=self._idf, weights=self._weights,
                        bias=self._bias, temperature=np.array(self.temperature))

    @classmethod
    def load(cls, path: Path) -> IntentModel:
        z = npz.load_checked(path, MODEL_FORMAT)
        arrays = ModelArrays(
            classes=tuple(str(c) for c in z["classes"]), terms=npz.blob_terms(z["terms"]),
            idf=z["idf"], weights=z["weights"], bias=z["bias"],
            temperature=float(z["temperature"]),
        )
        terms = arrays.terms
        if arrays.weights.shape != (len(terms), len(arrays.classes)):
            raise ValueError("inconsistent cache file")
        return cls(arrays)


def train_from_files(files: Sequence[Path], trainer: Trainer | None = None) -> IntentModel:
    examples = [e for f in files for e in read_rasa_yaml(f) if e.intent]
    if not examples:
        raise ValueError("no training examples found")
    fit = trainer or training.train
    return IntentModel(fit([e.text for e in examples], [str(e.intent) for e in examples]))


def load_or_train(files: Sequence[Path], cache_dir: Path | None = None,
                  trainer: Trainer | None = None) -> IntentModel:
    """Load the cached model for these training files, training (and caching) on a miss.
    An unreadable cache entry is retrained; an unwritable cache dir only costs a warning."""
    cache_dir = cache_dir or default_cache_dir()
    path = cache_dir / f"intent-{cache_key(files)[:40]}.npz"
    return npz.load_or_build(path, IntentModel.load,
                             lambda: train_from_files(files, trainer))
