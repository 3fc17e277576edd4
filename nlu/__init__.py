"""Sanad NLU: intents, language and emergency detection for Arabic-first chat.

Public API (the bot engine depends on exactly these names):
    Language, IntentScore, ParseResult, NLUBackend, EmbeddedNLU, RasaNLU, build_backend,
    FALLBACK_THRESHOLD, INTENTS
plus helpers: normalize, identify (language id), yes_no / skip (screening answers),
is_emergency (the safety net).
"""

from __future__ import annotations

from pathlib import Path

from .engine import FALLBACK_THRESHOLD, EmbeddedNLU
from .langid import identify
from .lexicon import skip, yes_no
from .normalize import normalize
from .rasa_client import RasaNLU
from .results import IntentScore, Language, NLUBackend, ParseResult
from .safety import is_emergency

INTENTS: tuple[str, ...] = (
    "greet", "goodbye", "thanks", "menu", "affirm", "deny",
    "learn_trafficking", "learn_irregular_migration", "check_job_offer", "safe_migration",
    "know_rights", "start_screening", "talk_to_human", "emergency", "report_concern",
    "find_services", "privacy_info", "delete_my_data", "subscribe", "unsubscribe",
    "change_language", "out_of_scope",
)
"""The intent names of /work/shared/spec/intents.md (a public contract: never rename)."""

BACKENDS = ("embedded", "rasa")


def build_backend(name: str, *, rasa_url: str, cache_dir: Path | None = None) -> NLUBackend:
    """The NLU for `NLU_BACKEND`: "embedded", or "rasa" (Rasa server at `rasa_url`, with
    the embedded classifier as fallback). Any other name is a ValueError."""
    key = (name or "").strip().lower()
    if key not in BACKENDS:
        raise ValueError(f"unknown NLU backend {name!r}: expected one of {', '.join(BACKENDS)}")
    embedded = EmbeddedNLU.load(cache_dir=cache_dir)
    if key == "embedded":
        return embedded
    return RasaNLU(rasa_url, fallback=embedded)


__all__ = [
    "BACKENDS", "FALLBACK_THRESHOLD", "INTENTS", "EmbeddedNLU", "IntentScore", "Language",
    "NLUBackend", "ParseResult", "RasaNLU", "build_backend", "identify", "is_emergency",
    "normalize", "skip", "yes_no",
]
