"""EmbeddedNLU: the in-process NLU backend (classifier + safety net + lexicon + langid)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from .classifier import IntentModel, Trainer, load_or_train
from .langid import LanguageIdentifier, default_identifier
from .lexicon import Lexicon, default_lexicon
from .normalize import normalize
from .rasa_data import training_files
from .results import IntentScore, Language, ParseResult
from .safety import SafetyNet, default_safety_net

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent
"""The Rasa project shipped in this package (config.yml, domain.yml, data/nlu.yml)."""

FALLBACK_THRESHOLD = 0.2
"""Below this calibrated top probability the parse intent is `out_of_scope` (the ranking
keeps the real scores). Chosen on 5-fold out-of-fold predictions of the training data:
at 0.2 about 5% of messages fall back, and those are wrong 6 times out of 7."""
MAX_CLASSIFY_CHARS = 1000
"""Only the start of a long message is classified (latency stays bounded)."""
RANKING_SIZE = 10
EMERGENCY_CONFIDENCE = 0.97
YES_NO_CONFIDENCE = 0.95
FALLBACK_INTENT = "out_of_scope"
PARSE_CACHE_SIZE = 2048
PARSE_CACHE_MAX_CHARS = 32
CACHEABLE_INTENTS = frozenset({"greet", "goodbye", "thanks", "menu", "affirm", "deny",
                               "change_language", "subscribe", "unsubscribe"})
"""Short navigation messages ("hi", "yes", "2", "menu") repeat across users: their parse
(deterministic, immutable) is kept in a small bounded cache. Only these intents are kept: a
message that says something about the person ("they took my passport") is never held in memory
beyond its turn, and longer free text never at all."""


def force_intent(ranking: Sequence[IntentScore], name: str,
                 confidence: float) -> tuple[IntentScore, ...]:
    """Put `name` first with at least `confidence`, rescaling the others to sum to the rest."""
    own = next((s.confidence for s in ranking if s.name == name), 0.0)
    conf = max(confidence, own)
    others = [s for s in ranking if s.name != name]
    rest = sum(s.confidence for s in others)
    scale = (1.0 - conf) / rest if rest > 0 else 0.0
    return (IntentScore(name, conf), *(IntentScore(s.name, s.confidence * scale) for s in others))


def clean_text(text: object) -> str:
    """Any input to a valid str (None, bytes, lone surrogates and other junk included), so
    the result can always be encoded as UTF-8 JSON. Never raises."""
    if isinstance(text, bytes | bytearray):
        return bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text


class EmbeddedNLU:
    """Implements `NLUBackend` in-process. Immutable after construction apart from the
    bounded cache of short messages' parses: safe to share."""

    def __init__(self, model: IntentModel, *, safety: SafetyNet | None = None,
                 lexicon: Lexicon | None = None,
                 langid: LanguageIdentifier | None = None) -> None:
        self.model = model
        self.safety = safety or default_safety_net()
        self.lexicon = lexicon or default_lexicon()
        self.langid = langid or default_identifier()
        self._cache: dict[str, ParseResult] = {}

    @classmethod
    def load(cls, project_dir: Path | None = None, cache_dir: Path | None = None,
             *, trainer: Trainer | None = None) -> EmbeddedNLU:
        """Load the cached model for the project's training data; trains on a cache miss."""
        files = training_files(project_dir or PROJECT_DIR)
        if not files:
            raise FileNotFoundError(f"no Rasa NLU data under {(project_dir or PROJECT_DIR)}")
        return cls(load_or_train(files, cache_dir, trainer))

    @property
    def intents(self) -> tuple[str, ...]:
        return self.model.classes

    def classify(self, text: str) -> tuple[IntentScore, tuple[IntentScore, ...]]:
        """Intent and full ranking of a (clean) text, before language identification."""
        clipped = text[:MAX_CLASSIFY_CHARS]
        normalized = normalize(clipped)
        ranking: tuple[IntentScore, ...] = tuple(
            IntentScore(n, c) for n, c in self.model.rank(normalized))
        if self.safety.match_normalized(normalized):
            ranking = force_intent(ranking, "emergency", EMERGENCY_CONFIDENCE)
        else:
            answer = self.lexicon.yes_no(clipped)
            if answer is not None:
                name = "affirm" if answer == "yes" else "deny"
                ranking = force_intent(ranking, name, YES_NO_CONFIDENCE)
        return self.apply_fallback(ranking), ranking[:RANKING_SIZE]

    @staticmethod
    def apply_fallback(ranking: Sequence[IntentScore]) -> IntentScore:
        top = ranking[0]
        if top.confidence < FALLBACK_THRESHOLD and top.name != FALLBACK_INTENT:
            return IntentScore(FALLBACK_INTENT, top.confidence)
        return top

    def identify(self, text: str) -> Language:
        return self.langid.identify(text[:MAX_CLASSIFY_CHARS])

    def parse_sync(self, text: str) -> ParseResult:
        text = clean_text(text)
        intent, ranking = self.classify(text)
        return ParseResult(text=text, intent=intent, ranking=ranking,
                           language=self.identify(text))

    async def parse(self, text: str) -> ParseResult:
        # ~0.2 ms of CPU: cheaper inline than a thread hop.
        if type(text) is not str or len(text) > PARSE_CACHE_MAX_CHARS:
            return self.parse_sync(text)
        result = self._cache.get(text)
        if result is None:
            result = self.parse_sync(text)
            if result.intent.name in CACHEABLE_INTENTS:
                if len(self._cache) >= PARSE_CACHE_SIZE:
                    self._cache.clear()
                self._cache[text] = result
        return result

    async def aclose(self) -> None:
        return None
