"""The web chat channel: a small page of ``sanad serve`` and a JSON endpoint, on the runtime.

``GET /chat`` is one self-contained page (no external asset, inline style and script allowed by
their hashes only, RTL for Arabic, usable on a cheap phone); ``POST /chat/api/turn`` takes
``{"token", "id", "text" | "button", "lang"}`` and answers ``{"token", "messages", "exit"}``;
``POST /chat/api/inbox`` hands over what arrived outside a turn (a caseworker's reply), pulled
from the outbox so that any process may answer; ``GET /chat/away`` is the neutral page a quick
exit leaves behind.

The page keeps its conversation in ``sessionStorage`` (gone with the tab). Its **quick exit**
button clears the page and that storage, replaces the history entry with the neutral page and
tells the server, which pauses contact exactly as ``exit`` does on Telegram: the engine's quick
exit, so nothing reaches the person until they say it is safe. Typing ``exit`` / ``خروج`` does
the same (``"exit": true`` in the answer).

A conversation is a random bearer token the server issues (256 bits); the user is
``store.user_ref("webchat", token)``: pseudonymous, nothing personal is asked or logged. New
tokens are rate-limited per client address; messages of a conversation never are here (the
engine's flood control lets danger through). The title and the neutral page never say what
this is. See ``docs/channels.md``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from aiohttp import web

from bot.channels.runtime import ChannelRuntime, Job, Outcome
from bot.config import SUPPORTED_LANGUAGES
from bot.flood import FloodGuard, Verdict
from bot.messages import Inbound, Outbound, Turn
from bot.metrics import Metrics
from bot.outbox import OutboxSender
from bot.store.db import DatabaseUnavailable
from handoff.clients import TrustedProxies

if TYPE_CHECKING:
    from bot.app import Sanad

CHANNEL = "webchat"
PAGE, AWAY, TURN, INBOX = "/chat", "/chat/away", "/chat/api/turn", "/chat/api/inbox"
ADDRESS = "web"
"""Every web conversation's address: replies are pulled by token, never pushed to one."""
MAX_TEXT = 4000
NEW_RATE, NEW_BURST = 0.5, 30
"""New conversations per second per client address, and the burst allowed."""
_WEB = Path(__file__).parent.parent / "web"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_HEADERS = {
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY", "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Page:
    """The page template, its Content-Security-Policy (hashes of its inline style and script:
    nothing else runs or loads) and its words per language (``bot/web/webchat.yml``)."""

    template: str
    csp: str
    texts: dict[str, dict[str, str]]

    @classmethod
    def load(cls) -> Page:
        template = (_WEB / "webchat.html").read_text(encoding="utf-8")
        hashes: dict[str, list[str]] = {"script": [], "style": []}
        for kind, body in _INLINE.findall(template):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes[kind].append(f"'sha256-{digest}'")
        csp = (f"default-src 'none'; script-src {' '.join(hashes['script'])}; "
               f"style-src {' '.join(hashes['style'])}; connect-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        texts = yaml.safe_load((_WEB / "webchat.yml").read_text(encoding="utf-8"))
        missing = [lang for lang in SUPPORTED_LANGUAGES if lang not in texts]
        if missing:
            raise ValueError(f"bot/web/webchat.yml has no texts for {', '.join(missing)}")
        return cls(template, csp, texts)

    def render(self, lang: str, poll_seconds: float) -> str:
        words = self.texts[lang]
        config = {"texts": words, "turn": TURN, "inbox": INBOX, "away": AWAY,
                  "poll_ms": int(poll_seconds * 1000)}
        values = {key: html.escape(str(value)) for key, value in words.items()}
        values["lang"] = lang
        values["languages"] = " ".join(
            f'<a href="{PAGE}?lang={code}" lang="{code}">{html.escape(t["language_name"])}</a>'
            for code, t in self.texts.items() if code != lang)
        # a JSON data block: "<" escaped so that no text can close the element
        values["config"] = orjson.dumps(config).decode().replace("<", "\\u003c")
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)

    def away(self, lang: str) -> str:
        title = html.escape(self.texts[lang]["away_title"])
        return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{title}</title></head><body></body></html>")


@dataclass
class _Exchange:
    """The runtime's adapter for one request: what the turn (or the apology) says goes into
    the HTTP answer."""

    messages: list[Outbound] = field(default_factory=list)

    async def deliver_turn(self, job: Job, turn: Turn) -> Outcome:
        self.messages.extend(turn.outbound)
        return Outcome.SENT_UNMARKED  # handed to the answer: the runtime marks the rows sent

    async def send_apology(self, job: Job, message: Outbound) -> None:
        self.messages.append(message)

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> None:
        """Outbox delivery (pulled by the page): into the answer as well."""
        self.messages.extend(messages)


class WebChatChannel:
    """The page, the JSON endpoints and the pull of outbox messages."""

    def __init__(self, sanad: Sanad, *, metrics: Metrics | None = None,
                 poll_seconds: float = 10.0) -> None:
        self.sanad = sanad
        self.page = Page.load()
        self.poll_seconds = poll_seconds
        self.runtime = ChannelRuntime(sanad, CHANNEL, counter="sanad_webchat_messages_total",
                                      counter_help="Web chat messages by outcome",
                                      metrics=metrics)
        self._new = FloodGuard(rate=NEW_RATE, burst=NEW_BURST, max_wait=0.0)
        self._proxies = TrustedProxies.parse(sanad.settings.trusted_proxies)

    def mount(self, app: web.Application) -> None:
        self.runtime.attach(app)
        app.router.add_get(PAGE, self.show)
        app.router.add_get(AWAY, self.away)
        app.router.add_post(TURN, self.turn)
        app.router.add_post(INBOX, self.inbox)

    # --- pages -------------------------------------------------------------------------------
    def _lang(self, request: web.Request) -> str:
        asked = request.query.get("lang", "")
        return asked if asked in self.page.texts else self.sanad.settings.default_language

    async def show(self, request: web.Request) -> web.Response:
        body = self.page.render(self._lang(request), self.poll_seconds)
        return web.Response(text=body, content_type="text/html",
                            headers={**_HEADERS, "Content-Security-Policy": self.page.csp})

    async def away(self, request: web.Request) -> web.Response:
        """The neutral page a quick exit replaces the chat with; the browser's cache of this
        origin is dropped too."""
        headers = {**_HEADERS, "Content-Security-Policy": "default-src 'none'",
                   "Clear-Site-Data": '"cache"'}
        return web.Response(text=self.page.away(self._lang(request)), content_type="text/html",
                            headers=headers)

    # --- the endpoints -----------------------------------------------------------------------
    async def turn(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if body is None:
            return _answer({"error": "expected a JSON object"}, 400)
        token, message_id = body.get("token"), body.get("id")
        text, button = body.get("text", ""), body.get("button")
        lang = body.get("lang") if body.get("lang") in SUPPORTED_LANGUAGES else None
        if (not isinstance(message_id, str) or not _ID.fullmatch(message_id)
                or not isinstance(text, str) or len(text) > MAX_TEXT
                or not (button is None or (isinstance(button, str) and 0 < len(button) <= 64))):
            return _answer({"error": "expected id, and text or button"}, 400)
        if token is None:
            client = self._proxies.client_of(request)
            if await self._new.admit(client) is not Verdict.PROCESS:
                return _answer({"error": "too many new conversations"}, 429)
            token = secrets.token_urlsafe(32)
        elif not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return _answer({"error": "unknown conversation"}, 400)
        store = self.sanad.store
        user = store.user_ref(CHANNEL, token)
        dedupe = store.pseudonyms.user_key("webchat-message", f"{token}:{message_id}")
        job = Job(Inbound(user=user, text=text, button_id=button, message_id=f"web:{dedupe}"),
                  ADDRESS, language_hint=lang)
        exchange = _Exchange()
        async with self.runtime.ordered(user.key):
            served = await self.runtime.serve(exchange, job)
        if served.status != 200:  # database down: the apology now, the page may send again
            return _answer({"token": token, "messages": _messages([self.runtime.apology(lang)]),
                            "retry": True}, served.status)
        return _answer({"token": token, "messages": _messages(exchange.messages),
                        "exit": served.quick_exit})

    async def inbox(self, request: web.Request) -> web.Response:
        body = await _json(request)
        token = body.get("token") if body is not None else None
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return _answer({"error": "unknown conversation"}, 400)
        user = self.sanad.store.user_ref(CHANNEL, token)
        exchange = _Exchange()
        sender = OutboxSender(self.sanad.store, CHANNEL, exchange, user_key=user.key)
        try:
            async with self.runtime.ordered(user.key):
                await sender.run_once()
        except DatabaseUnavailable:
            return _answer({"messages": []}, 503)
        return _answer({"messages": _messages(exchange.messages)})


def _messages(messages: Sequence[Outbound]) -> list[dict[str, Any]]:
    return [{"text": m.text, "buttons": [{"id": b.id, "title": b.title} for b in m.buttons]}
            for m in messages]


def _answer(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=_HEADERS)


async def _json(request: web.Request) -> dict[str, Any] | None:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
