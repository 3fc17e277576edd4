"""Model arrays on disk: one `.npz`, written atomically, read without pickle.

Shared by the intent and the safety model so that both caches behave the same way: a
concurrent start never sees half a file, and a vocabulary is stored as one UTF-8 blob.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

log = logging.getLogger(__name__)


def terms_blob(terms: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8)


def blob_terms(blob: np.ndarray) -> tuple[str, ...]:
    return tuple(bytes(blob).decode("utf-8").split("\n"))


def save_atomic(path: Path, **arrays: Any) -> None:
    """Write `arrays` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checked(path: Path, model_format: str) -> dict[str, np.ndarray]:
    """Every array of `path`, after checking its format tag (ValueError otherwise)."""
    with np.load(path, allow_pickle=False) as z:
        if str(z["format"]) != model_format:
            raise ValueError("cache file of another model format")
        return {name: z[name] for name in z.files}


class Saveable(Protocol):
    def save(self, path: Path) -> None: ...


M = TypeVar("M", bound=Saveable)


def load_or_build(path: Path, load: Callable[[Path], M],
                               build: Callable[[], M]) -> M:
    """The model cached at `path`, else a freshly built one (then cached). An unreadable
    cache entry is rebuilt; an unwritable cache folder only costs a warning."""
    if path.exists():
        try:
            return load(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("discarding unreadable model cache %s: %s", path.name,
                        type(exc).__name__)
    model = build()
    try:
        model.save(path)
    except OSError as exc:
        log.warning("cannot write model cache in %s: %s", path.parent, exc.strerror)
    return model
