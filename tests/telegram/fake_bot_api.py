"""A fake Telegram Bot API on 127.0.0.1 that the real python-telegram-bot client talks to.

It speaks the wire format (``/bot<token>/<method>``, JSON, form or multipart parameters, the
``{"ok": ..., "result": ...}`` envelope, ``error_code``/``parameters.retry_after`` on errors),
refuses what Telegram refuses and we could send (https://core.telegram.org/bots/api): empty or
over-4096-character texts, callback data of 0 or over 64 bytes, 1..100 ids for deleteMessages,
command names, a webhook that is not HTTPS or not on port 443/80/88/8443 and a secret token
outside ``[A-Za-z0-9_-]{1,256}``, each with Telegram's own description. It remembers the
messages of each chat (the bot's, and the user's the harness shows it) with their dates on a
clock a test can give it, so deleting a message older than 48 hours fails (``deleteMessage``)
or is skipped (``deleteMessages``) as it does at Telegram. It records every call and can be
told to fail the next N calls with 429/5xx/403.

Run it by hand: ``python -m tests.telegram.fake_bot_api --port 8081`` prints each call as a JSON
line; ``GET /fake/calls`` lists them and ``POST /fake/updates`` queues an update for getUpdates.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

DEFAULT_TOKEN = "123:abc"
BOT_ID = 123
_INT_FIELDS = frozenset({
    "chat_id", "message_id", "offset", "limit", "timeout", "from_chat_id", "cache_time",
    "max_connections", "user_id",
})
_COMMAND_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
_SECRET_CHARS = re.compile(r"[A-Za-z0-9_-]*")
DELETE_WINDOW = 48 * 3600
"""Seconds during which a bot can delete a message of a private chat."""


class FakeClock:
    """Unix time that moves only when told: the fake's dates and its 48-hour rule."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Call:
    """One request as the fake understood it; ``status`` is what it answered."""

    method: str
    params: dict[str, Any]
    status: int
    at: float
    result: Any = None
    """What a successful call returned (sendMessage: the Message, with its message_id)."""
    via_webhook_answer: bool = False
    """Made in the body of the bot's answer to a webhook call, not as a request of its own."""


@dataclass
class Fault:
    """Answer the next ``remaining`` matching calls with an error instead of the result."""

    remaining: int
    status: int
    retry_after: int | None = None
    methods: frozenset[str] | None = None
    description: str | None = None

    def matches(self, method: str) -> bool:
        return self.remaining > 0 and (self.methods is None or method in self.methods)


class BotAPIError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


_DESCRIPTIONS = {
    400: "Bad Request",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class FakeBotAPI:
    """The fake server's state; one instance per test."""

    token: str = DEFAULT_TOKEN
    latency: float = 0.0
    """Seconds to wait before answering each call (to test concurrency and timeouts)."""
    on_call: Callable[[Call], None] | None = None
    pause: Callable[[str, dict[str, Any], bool], Awaitable[bool]] | None = None
    """Awaited before a call is performed (``performed=False``) and again before it is answered
    (``performed=True``), to stall calls. Returning False before performing drops the call
    unperformed and unrecorded, as if the connection died before it reached Telegram."""
    calls: list[Call] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    max_rate: float | None = None
    """Like Telegram's flood control: a sendMessage beyond this many in any one second gets
    429 with ``parameters.retry_after`` (``flood_retry_after`` seconds)."""
    flood_retry_after: int = 1
    blocked_chats: set[int] = field(default_factory=set)
    """Chats whose user blocked the bot: sendMessage answers 403."""
    clock: Callable[[], float] = time.time
    """Unix time for message dates and the 48-hour deletion window (tests: a FakeClock)."""
    messages: dict[tuple[int, int], int] = field(default_factory=dict)
    """(chat id, message id) → date of every message in a chat that was not deleted."""
    _recent: collections.deque[float] = field(default_factory=collections.deque)
    _faults: list[Fault] = field(default_factory=list)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _new_update: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    # --- control -----------------------------------------------------------------------
    def fail_next(self, count: int = 1, *, status: int = 429, retry_after: int | None = None,
                  methods: tuple[str, ...] | None = None, description: str | None = None) -> None:
        if status == 429 and retry_after is None:
            retry_after = 1
        self._faults.append(Fault(count, status, retry_after,
                                  frozenset(methods) if methods else None, description))

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates (an ``update_id`` is added when missing)."""
        if "update_id" not in update:
            update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        self._new_update.set()
        return update

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls
                if c.method == method and (c.status == 200 or not ok_only)]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        return [c.params["text"] for c in self.calls_to("sendMessage")
                if chat_id is None or c.params.get("chat_id") == chat_id]

    def sent_ids(self, chat_id: int | None = None) -> list[int]:
        """message_id of each message the bot sent (to one chat), in order."""
        return [c.result["message_id"] for c in self.calls_to("sendMessage")
                if chat_id is None or c.params.get("chat_id") == chat_id]

    def reset_calls(self) -> None:
        self.calls.clear()

    def note_message(self, chat_id: int, message_id: int, date: int) -> None:
        """A message the user sent (Telegram knows it; the fake only sees the bot's)."""
        self.messages[(chat_id, message_id)] = date

    def visible(self, chat_id: int) -> set[int]:
        """The ids of the chat's messages that were not deleted."""
        return {m for c, m in self.messages if c == chat_id}

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while len(self.calls_to(method)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method}: {len(self.calls_to(method))} of {count} calls")
            await asyncio.sleep(0.01)
        return self.calls_to(method)

    # --- server ------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/fake/calls", self._list_calls)
        app.router.add_post("/fake/updates", self._post_update)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen (port 0: a free one) and return the ``base_url`` for PTB."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://{host}:{sock.getsockname()[1]}/bot"
        return self.base_url

    async def stop(self) -> None:
        self._new_update.set()  # end pending long polls now
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _list_calls(self, request: web.Request) -> web.Response:
        body = [{"method": c.method, "params": c.params, "status": c.status} for c in self.calls]
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _post_update(self, request: web.Request) -> web.Response:
        update = self.push_update(orjson.loads(await request.read()))
        return web.Response(body=orjson.dumps(update), content_type="application/json")

    async def perform_webhook_answer(self, content_type: str, body: bytes) -> None:
        """What Telegram does with a webhook's 2xx answer: a JSON body naming a ``method`` is
        performed like a call (its result goes nowhere: the bot cannot see it)."""
        if not body or not content_type.startswith("application/json"):
            return
        params = orjson.loads(body)
        method = params.pop("method", None) if isinstance(params, dict) else None
        if not isinstance(method, str):
            return
        status, result = await self._answer(self.token, method, params)
        call = Call(method, params, status, time.monotonic(), result if status == 200 else None,
                    via_webhook_answer=True)
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await _read_params(request)
        except ValueError:
            return _error(400, "Bad Request: can't parse parameters")
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.pause is not None and not await self.pause(method, params, False):
            return _error(503, "Service Unavailable")
        status, result = await self._answer(request.match_info["token"], method, params)
        call = Call(method, params, status, time.monotonic(), result if status == 200 else None)
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        if self.pause is not None:
            await self.pause(method, params, True)
        if status != 200:
            return _error(status, **result)
        return web.Response(body=orjson.dumps({"ok": True, "result": result}),
                            content_type="application/json")

    async def _answer(self, token: str, method: str, params: dict[str, Any]
                      ) -> tuple[int, Any]:
        """(200, result) or (error status, the error's description and parameters)."""
        if token != self.token:
            return 401, {"description": "Unauthorized"}
        for fault in self._faults:
            if fault.matches(method):
                fault.remaining -= 1
                parameters = {"retry_after": fault.retry_after} if fault.retry_after else None
                description = fault.description or _DESCRIPTIONS.get(fault.status, "Error")
                if fault.status == 429:
                    description += f": retry after {fault.retry_after}"
                return fault.status, {"description": description, "parameters": parameters}
        if method.lower() == "sendmessage":
            refused = self._flood_or_blocked(params)
            if refused is not None:
                return refused
        handler = self._methods().get(method.lower())
        if handler is None:
            return 404, {"description": "Not Found: method not found"}
        try:
            return 200, await handler(params)
        except BotAPIError as exc:
            return exc.status, {"description": exc.description, "parameters": exc.parameters}

    def _flood_or_blocked(self, params: dict[str, Any]) -> tuple[int, Any] | None:
        if self.max_rate is not None:
            now = time.monotonic()
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.max_rate:
                return 429, {"description": "Too Many Requests: retry after "
                             f"{self.flood_retry_after}",
                             "parameters": {"retry_after": self.flood_retry_after}}
            self._recent.append(now)
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) and chat_id in self.blocked_chats:
            return 403, {"description": _DESCRIPTIONS[403]}
        return None

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "getme": self._get_me,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "sendmessage": self._send_message,
            "answercallbackquery": self._answer_callback_query,
            "deletemessages": self._delete_messages,
            "deletemessage": self._delete_message,
            "leavechat": self._leave_chat,
            "getupdates": self._get_updates,
        }

    # --- methods -----------------------------------------------------------------------
    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return bot_user()

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(_required(params, "url"))
        if url:
            _check_webhook_url(url)
        secret = params.get("secret_token")
        if secret:  # an empty token means none
            if len(str(secret)) > 256:
                raise BotAPIError(400, "Bad Request: secret token is too long")
            if not _SECRET_CHARS.fullmatch(str(secret)):
                raise BotAPIError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = dict(params) if url else None
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = _required(params, "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise BotAPIError(400, "Bad Request: commands must be a list of at most 100")
        for command in commands:
            name, text = command.get("command", ""), command.get("description", "")
            if not (1 <= len(name) <= 32 and set(name) <= _COMMAND_CHARS):
                raise BotAPIError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(text) <= 256:
                raise BotAPIError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[str(params.get("language_code", ""))] = commands
        return True

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _required(params, "chat_id")
        text = str(_required(params, "text"))
        if not text.strip():
            raise BotAPIError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise BotAPIError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            markup = orjson.loads(markup)
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise BotAPIError(400, "Bad Request: BUTTON_DATA_INVALID")
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(self.clock()),
            "chat": private_chat(int(chat_id)), "from": bot_user(), "text": text,
        }
        if markup:
            message["reply_markup"] = markup
        self.messages[(int(chat_id), message["message_id"])] = message["date"]
        return message

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        _required(params, "callback_query_id")
        return True

    async def _delete_messages(self, params: dict[str, Any]) -> bool:
        """"If some of the specified messages can't be found, they are skipped": unknown,
        already deleted and over-48-hour messages stay as they are, and the answer is True."""
        chat_id = _required(params, "chat_id")
        ids = _required(params, "message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise BotAPIError(400, "Bad Request: message_ids must have 1..100 ids")
        for message_id in ids:
            if self._deletable(chat_id, message_id) is None:
                del self.messages[(chat_id, message_id)]
        return True

    async def _delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = _required(params, "chat_id")
        message_id = _required(params, "message_id")
        refusal = self._deletable(chat_id, message_id)
        if refusal is not None:
            raise BotAPIError(400, refusal)
        del self.messages[(chat_id, message_id)]
        return True

    def _deletable(self, chat_id: Any, message_id: Any) -> str | None:
        """Why the message cannot be deleted, or ``None``: "A message can only be deleted
        if it was sent less than 48 hours ago" (deleteMessage)."""
        try:
            date = self.messages.get((chat_id, message_id))
        except TypeError:  # an id that is a list or an object
            date = None
        if date is None:
            return "Bad Request: message to delete not found"
        if self.clock() - date >= DELETE_WINDOW:
            return "Bad Request: message can't be deleted for everyone"
        return None

    async def _leave_chat(self, params: dict[str, Any]) -> bool:
        _required(params, "chat_id")
        return True

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise BotAPIError(409, "Conflict: can't use getUpdates method while webhook is "
                                   "active; use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates[:] = [u for u in self._updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        if not self._updates and timeout > 0:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
        limit = int(params.get("limit") or 100)
        return self._updates[:limit]


# --- wire helpers --------------------------------------------------------------------------
async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string, then a JSON, urlencoded or multipart body, as Telegram accepts them."""
    params: dict[str, Any] = {k: _form_value(k, v) for k, v in request.query.items()}
    if request.content_type == "application/json":
        raw = await request.read()
        if raw:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            params[key] = _form_value(key, value) if isinstance(value, str) else "<file>"
    if "chat_id" in params:
        with contextlib.suppress(TypeError, ValueError):
            params["chat_id"] = int(params["chat_id"])
    return params


def _form_value(name: str, value: str) -> Any:
    """Form fields are JSON-encoded when they are not plain strings."""
    if value[:1] in "[{" or value in ("true", "false") or (
        name in _INT_FIELDS and value.lstrip("-").isdigit()
    ):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _check_webhook_url(url: str) -> None:
    """setWebhook's URL rules, with Telegram's descriptions."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise BotAPIError(400, "Bad Request: bad webhook: invalid URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise BotAPIError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for "
                               "webhook")
    if port not in WEBHOOK_PORTS:
        raise BotAPIError(400, "Bad Request: bad webhook: Webhook can be set up only on ports "
                               "80, 88, 443 or 8443")


def _required(params: dict[str, Any], name: str) -> Any:
    if name not in params:
        raise BotAPIError(400, f"Bad Request: parameter {name} is required")
    return params[name]


def _error(status: int, description: str, parameters: dict[str, Any] | None = None
           ) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def bot_user() -> dict[str, Any]:
    return {"id": BOT_ID, "is_bot": True, "first_name": "Sanad", "username": "sanad_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False,
            "supports_inline_queries": False}


def private_chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": "User"}


async def _serve(host: str, port: int, token: str, quiet: bool) -> None:
    def show(call: Call) -> None:
        line = {"method": call.method, "status": call.status, "params": call.params}
        print(orjson.dumps(line).decode(), flush=True)

    fake = FakeBotAPI(token=token, on_call=None if quiet else show)
    base_url = await fake.start(host, port)
    print(f"fake Bot API: TELEGRAM_API_BASE_URL={base_url} TELEGRAM_BOT_TOKEN={token}",
          flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Telegram Bot API for manual tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--quiet", action="store_true", help="do not print the calls")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.token, args.quiet))


if __name__ == "__main__":
    main()
