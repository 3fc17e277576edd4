"""A fast fake Telegram Bot API for ``bench/pipeline.py`` (127.0.0.1 only, in its own process).

``tests/telegram/fake_bot_api.py`` validates the wire format for the tests; this one only has
to answer quickly, so that on a small machine its CPU does not crowd out the bot being
measured. It is a bare asyncio protocol speaking HTTP/1.1 with keep-alive (what aiohttp's
client sends: ``Content-Length`` bodies, JSON; chunked bodies are understood too) and answers
``/bot<token>/<method>`` with the ``{"ok": true, "result": ...}`` envelope. ``sendMessage``
returns a real ``Message`` (PTB parses it).

For each call it records ``[monotonic time, method, chat_id, signature, buttons]``, where the
signature is the first characters of the text and ``buttons`` the inline keyboard's
callback data joined by ``|``. CLOCK_MONOTONIC is system-wide on Linux, so the load generator
compares these times with its own. Control: ``GET /_bench/records`` returns the records (JSON
list), ``POST /_bench/reset`` clears them, ``GET /_bench/count`` counts them.

    python bench/_fake_telegram.py --port 8081 [--token 123:abc]

prints ``listening <port>`` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import time
from collections.abc import Callable
from typing import Any

import orjson

SIGNATURE_CHARS = 24
BOT_USER = {"id": 123, "is_bot": True, "first_name": "Sanad", "username": "sanad_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False,
            "supports_inline_queries": False}
_OK_TRUE = b'{"ok":true,"result":true}'
_NOT_FOUND = b'{"ok":false,"error_code":404,"description":"Not Found"}'
_UNAUTHORIZED = b'{"ok":false,"error_code":401,"description":"Unauthorized"}'


class FakeState:
    def __init__(self, token: str) -> None:
        self.token = token
        self.records: list[list[Any]] = []
        self.message_ids = itertools.count(1000)

    def answer(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, JSON body) for one Bot API call or control request."""
        if path.startswith("/_bench/"):
            return self.control(path)
        prefix, _, method = path.partition("/")[2].partition("/")
        if prefix != "bot" + self.token:
            return 401, _UNAUTHORIZED
        method = method.split("?", 1)[0]
        params: dict[str, Any] = {}
        if body:
            try:
                loaded = orjson.loads(body)
            except orjson.JSONDecodeError:
                loaded = None
            if isinstance(loaded, dict):
                params = loaded
        now = time.monotonic()
        if method == "sendMessage":
            chat_id = int(params.get("chat_id", 0))
            text = str(params.get("text", ""))
            markup = params.get("reply_markup") or {}
            if isinstance(markup, str):
                markup = orjson.loads(markup)
            buttons = "|".join(
                str(b.get("callback_data", "")) for row in markup.get("inline_keyboard", ())
                for b in row
            )
            self.records.append([now, method, chat_id, text[:SIGNATURE_CHARS], buttons])
            message = {"message_id": next(self.message_ids), "date": int(time.time()),
                       "chat": {"id": chat_id, "type": "private", "first_name": "User"},
                       "from": BOT_USER, "text": text}
            return 200, orjson.dumps({"ok": True, "result": message})
        chat = params.get("chat_id")
        # answerCallbackQuery has no chat: keep its id (cb<update_id> in the benchmark)
        self.records.append([now, method, int(chat) if chat is not None else 0,
                             str(params.get("callback_query_id", "")), ""])
        if method == "getMe":
            return 200, orjson.dumps({"ok": True, "result": BOT_USER})
        if method in ("getUpdates",):
            return 200, b'{"ok":true,"result":[]}'
        if method in ("setMyCommands", "answerCallbackQuery", "deleteMessages", "deleteMessage",
                      "leaveChat", "setWebhook", "deleteWebhook"):
            return 200, _OK_TRUE
        return 404, _NOT_FOUND

    def control(self, path: str) -> tuple[int, bytes]:
        if path == "/_bench/records":
            return 200, orjson.dumps(self.records)
        if path == "/_bench/reset":
            self.records = []
            return 200, b"{}"
        if path == "/_bench/count":
            return 200, orjson.dumps({"records": len(self.records)})
        return 404, _NOT_FOUND


class HTTPProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 server side: pipelining-safe, keep-alive, Content-Length or chunked."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).decode("latin-1")
        lines = head.split("\r\n")
        try:
            _method, path, _version = lines[0].split(" ", 2)
        except ValueError:
            self._reply(400, b"{}", close=True)
            return False
        length = 0
        chunked = False
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        start = end + 4
        if chunked:
            parsed = _dechunk(self.buffer, start)
            if parsed is None:
                return False
            body, consumed = parsed
        else:
            if len(self.buffer) < start + length:
                return False
            body = bytes(self.buffer[start:start + length])
            consumed = start + length
        del self.buffer[:consumed]
        status, payload = self.state.answer(path, body)
        self._reply(status, payload, close=close)
        return not close

    def _reply(self, status: int, payload: bytes, *, close: bool) -> None:
        assert self.transport is not None
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (status, reason.encode(), len(payload),
               b"Connection: close\r\n" if close else b"")
            + payload
        )
        if close:
            self.transport.close()


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    body = bytearray()
    pos = start
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";", 1)[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 2
        if len(buffer) < pos + size + 2:
            return None
        body += buffer[pos:pos + size]
        pos += size + 2


async def serve(port: int, token: str) -> None:
    state = FakeState(token)
    await serve_protocol(lambda: HTTPProtocol(state), port, backlog=1024)


async def serve_protocol(factory: Callable[[], asyncio.Protocol], port: int, *,
                         backlog: int) -> None:
    """Serve ``factory``'s protocol on ``port`` until SIGTERM or SIGINT, printing the port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", port, reuse_address=True,
                                      backlog=backlog)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123:abc")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.token))


if __name__ == "__main__":
    main()
