"""RasaNLU: use a Rasa server (`rasa run --enable-api`) as the NLU, with safe fallbacks.

Rasa's answer is mapped onto `ParseResult` (its `nlu_fallback` becomes `out_of_scope`);
the language always comes from our own langid, and the emergency safety net and yes/no
lexicon apply on top, exactly as for the embedded backend. When Rasa is down, slow or
failing, the embedded classifier answers and a warning is logged (never the user's text);
after a failure Rasa is skipped for `retry_after` seconds so users don't each wait for a
timeout.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from .engine import (
    EMERGENCY_CONFIDENCE,
    FALLBACK_INTENT,
    MAX_CLASSIFY_CHARS,
    RANKING_SIZE,
    YES_NO_CONFIDENCE,
    EmbeddedNLU,
    clean_text,
    force_intent,
)
from .normalize import normalize
from .results import IntentScore, ParseResult

if TYPE_CHECKING:  # aiohttp is imported only when the Rasa backend is used
    import aiohttp

log = logging.getLogger(__name__)

RASA_FALLBACK_INTENT = "nlu_fallback"


class RasaUnavailable(Exception):
    """Rasa could not give a usable answer (connection, timeout, 5xx, bad JSON)."""


def _intent_name(name: object) -> str:
    name = str(name or "")
    return FALLBACK_INTENT if name in {RASA_FALLBACK_INTENT, ""} else name


def map_rasa_response(data: Any) -> tuple[IntentScore, tuple[IntentScore, ...]]:
    """Rasa's /model/parse JSON -> (intent, ranking best first, nlu_fallback renamed)."""
    if not isinstance(data, dict) or not isinstance(data.get("intent"), dict):
        raise RasaUnavailable("answer without an intent")
    raw = data["intent"]
    intent = IntentScore(_intent_name(raw.get("name")), float(raw.get("confidence") or 0.0))
    merged: dict[str, float] = {}
    for item in data.get("intent_ranking") or []:
        if isinstance(item, dict):
            name = _intent_name(item.get("name"))
            merged[name] = max(merged.get(name, 0.0), float(item.get("confidence") or 0.0))
    merged.setdefault(intent.name, intent.confidence)
    ranking = sorted((IntentScore(n, c) for n, c in merged.items()),
                     key=lambda s: s.confidence, reverse=True)
    if ranking[0].name != intent.name:  # e.g. nlu_fallback: keep Rasa's decision first
        ranking = [intent, *(s for s in ranking if s.name != intent.name)]
    return intent, tuple(ranking)


class RasaNLU:
    """`NLUBackend` that asks a Rasa server and falls back to `EmbeddedNLU`."""

    def __init__(self, url: str, fallback: EmbeddedNLU, timeout: float = 2.0, *,
                 retry_after: float = 5.0) -> None:
        self.url = url.rstrip("/") + "/model/parse"
        self.fallback = fallback
        self.timeout = timeout
        self.retry_after = retry_after
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0

    async def _get_session(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                json_serialize=functools.partial(json.dumps, ensure_ascii=False))
            self._session_loop = loop
        return self._session

    async def _ask_rasa(self, text: str) -> tuple[IntentScore, tuple[IntentScore, ...]]:
        import aiohttp

        # A leading "/" makes Rasa bypass its model ("/stop" -> intent "stop"): strip it.
        payload = {"text": text[:MAX_CLASSIFY_CHARS].lstrip("/")}
        session = await self._get_session()
        try:
            async with session.post(self.url, json=payload) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise RasaUnavailable(type(exc).__name__) from exc
        return map_rasa_response(data)

    async def parse(self, text: str) -> ParseResult:
        text = clean_text(text)
        if time.monotonic() < self._down_until:
            return self.fallback.parse_sync(text)
        try:
            intent, ranking = await self._ask_rasa(text)
        except RasaUnavailable as exc:
            self._down_until = time.monotonic() + self.retry_after
            log.warning("Rasa NLU unavailable (%s); using the embedded classifier", exc)
            return self.fallback.parse_sync(text)
        clipped = text[:MAX_CLASSIFY_CHARS]
        if self.fallback.safety.match_normalized(normalize(clipped)):
            ranking = force_intent(ranking, "emergency", EMERGENCY_CONFIDENCE)
            intent = ranking[0]
        elif (answer := self.fallback.lexicon.yes_no(clipped)) is not None:
            ranking = force_intent(ranking, "affirm" if answer == "yes" else "deny",
                                   YES_NO_CONFIDENCE)
            intent = ranking[0]
        return ParseResult(text=text, intent=intent, ranking=ranking[:RANKING_SIZE],
                           language=self.fallback.identify(text))

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
