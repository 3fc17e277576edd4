"""The Cloud API's ``/messages`` endpoint on one shared aiohttp session, with bounded retries.

Rate limits and Meta-side failures are retried here with exponential backoff, a bounded number
of times (a webhook or the outbox is waiting); what is left is raised as :class:`GraphError`
with the code and its :class:`Disposition`. Errors never carry Meta's message text: it can
quote the recipient's phone number.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from bot.channels.whatsapp_errors import Disposition, classify
from bot.sendbudget import SendBudget

log = logging.getLogger(__name__)

_JSON = {"Content-Type": "application/json"}
_RETRIED = frozenset({Disposition.RATE_LIMITED, Disposition.RETRY})


@dataclass(frozen=True)
class SendPolicy:
    attempts: int = 4
    """Tries per call; the last failure is raised."""
    backoff: float = 0.5
    """First wait after a Meta-side or network failure; doubles, up to ``max_backoff``."""
    rate_limit_backoff: float = 2.0
    """First wait after a rate limit (the pair limit wants seconds, not milliseconds)."""
    max_backoff: float = 8.0
    timeout: float = 10.0
    """Seconds for one HTTP call, connection included."""
    connections: int = 64


class GraphError(Exception):
    """A call failed for good (after retries where retrying made sense)."""

    def __init__(self, code: int | None, http_status: int) -> None:
        self.code = code
        self.http_status = http_status
        self.disposition = classify(code, http_status)
        super().__init__(f"Graph API error {code} (HTTP {http_status}, {self.disposition})")


class GraphClient:
    """``POST {base}/{phone_number_id}/messages`` with a bearer token."""

    def __init__(self, base_url: str, phone_number_id: str, token: str,
                 policy: SendPolicy | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, *,
                 budget: SendBudget | None = None) -> None:
        self.url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self.policy = policy or SendPolicy()
        self.budget = budget
        """The number's send budget shared by every process (:mod:`bot.sendbudget`), asked at
        the priority of the context before each message (not read receipts); a Graph rate
        error pauses it for everyone."""
        self._token = token
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.policy.connections),
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def post(self, payload: dict[str, Any], *, attempts: int | None = None
                   ) -> dict[str, Any]:
        """Send one message (or read receipt); the response object on success."""
        tries = attempts or self.policy.attempts
        budgeted = self.budget is not None and payload.get("status") != "read"
        for attempt in range(1, tries + 1):
            try:
                if budgeted:
                    assert self.budget is not None
                    await self.budget.acquire()
                return await self._post_once(payload)
            except GraphError as exc:
                if exc.disposition not in _RETRIED or attempt == tries:
                    raise
                delay = self._delay(exc.disposition, attempt)
                log.warning("whatsapp: Graph error %s (%s), retrying in %.2fs (attempt %d)",
                            exc.code, exc.disposition, delay, attempt)
                if budgeted and exc.disposition is Disposition.RATE_LIMITED:
                    assert self.budget is not None
                    await self.budget.pause(delay)  # everyone waits; resumes by priority
                else:
                    await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, disposition: Disposition, attempt: int) -> float:
        first = (self.policy.rate_limit_backoff if disposition is Disposition.RATE_LIMITED
                 else self.policy.backoff)
        return min(self.policy.max_backoff, first * 2 ** (attempt - 1)) * random.uniform(0.8, 1.0)

    async def _post_once(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            raise RuntimeError("GraphClient.start() first")
        try:
            async with self._session.post(self.url, data=orjson.dumps(payload),
                                          headers=_JSON) as response:
                status = response.status
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            raise GraphError(None, 0) from None
        data = _json(body)
        if 200 <= status < 300 and (data is None or "error" not in data):
            return data or {}  # accepted: an odd body must not make us send it twice
        error = data.get("error") if data is not None else None
        code = error.get("code") if isinstance(error, dict) else None
        raise GraphError(code if type(code) is int else None, status)


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def message_id(response: dict[str, Any]) -> str | None:
    """The ``wamid`` of a sent message (``messages[0].id``)."""
    messages = response.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        return wamid if isinstance(wamid, str) else None
    return None
