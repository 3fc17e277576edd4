"""Public value types of the NLU (stable contract: the engine and the HTTP API use them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


def _round(x: float) -> float:
    """Confidences are rounded so JSON output is stable and short."""
    return round(float(x), 4)


@dataclass(frozen=True, slots=True)
class Language:
    """Reply language (ISO 639-1 or "und") and the script the user wrote in (ISO 15924)."""

    code: str
    script: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "script": self.script, "confidence": _round(self.confidence)}


@dataclass(frozen=True, slots=True)
class IntentScore:
    name: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "confidence": _round(self.confidence)}


@dataclass(frozen=True, slots=True)
class ParseResult:
    """One parse; `to_dict()` is the Rasa-compatible JSON of intents.md plus `language`."""

    text: str
    intent: IntentScore
    ranking: tuple[IntentScore, ...]
    language: Language
    entities: tuple[dict, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": self.intent.to_dict(),
            "intent_ranking": [s.to_dict() for s in self.ranking],
            "entities": [dict(e) for e in self.entities],
            "language": self.language.to_dict(),
        }


@runtime_checkable
class NLUBackend(Protocol):
    """What the engine needs from an NLU: parse a text, and release resources at shutdown."""

    async def parse(self, text: str) -> ParseResult: ...

    async def aclose(self) -> None: ...
