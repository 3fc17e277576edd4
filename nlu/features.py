"""Feature extraction for the intent classifier, identical at training and inference.

Features of a normalised text (all go into one TF-IDF vector):
  c<gram>  character n-grams (2-5) inside word boundaries, like sklearn's char_wb: robust to
           typos, missing spaces, Arabic clitics (و/ب/ال) and Arabizi spelling variation;
  w:<tok>  word unigrams and b:<t1 t2> bigrams;
  k:<key>  Arabizi consonant skeletons of Latin tokens ("3ayez" = "3aiz" = "aayez").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from itertools import pairwise

import numpy as np

from .normalize import arabizi_key

CHAR_NGRAMS = (2, 5)
MAX_TOKEN_CHARS = 40
"""Char n-grams of a junk token longer than this are taken from its start only."""


def analyze(normalized: str) -> list[str]:
    """All feature strings of one already normalised text (with repetitions = counts)."""
    tokens = normalized.split()
    feats: list[str] = []
    lo, hi = CHAR_NGRAMS
    for tok in tokens:
        padded = f" {tok[:MAX_TOKEN_CHARS]} "
        size = len(padded)
        for n in range(lo, min(hi, size) + 1):
            feats.extend("c" + padded[i : i + n] for i in range(size - n + 1))
        feats.append("w:" + tok)
        key = arabizi_key(tok)
        if key:
            feats.append("k:" + key)
    feats.extend(f"b:{a} {b}" for a, b in pairwise(tokens))
    return feats


def tfidf(vocab: Mapping[str, int], idf: np.ndarray,
          normalized: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The L2-normalised sublinear TF-IDF vector of a normalised text as (indices, values),
    exactly as scikit-learn's TfidfVectorizer(sublinear_tf=True) computed it at training time;
    None when no feature is in the vocabulary."""
    counts = Counter(i for i in map(vocab.get, analyze(normalized)) if i is not None)
    if not counts:
        return None
    idx = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
    tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), np.float64, len(idx))
    vals = tf * idf[idx]
    vals /= np.sqrt(vals @ vals)
    return idx, vals
