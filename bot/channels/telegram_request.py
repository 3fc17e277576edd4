"""python-telegram-bot's HTTP layer on aiohttp instead of httpx.

The web app already runs on aiohttp, and PTB's default httpx layer costs several times more CPU
per Bot API call (figures in ``bench/telegram_request.py``). Plain calls go out as one JSON body
(``application/json``, which the Bot API accepts for every method); only file uploads use
multipart. Errors never carry the URL: it contains the bot token.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

_JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A :class:`telegram.request.BaseRequest` on one shared :class:`aiohttp.ClientSession`.

    Timeouts follow PTB's meaning: ``connect`` for the TCP connect, ``pool`` for waiting for a
    free connection, ``read`` for each read; aiohttp has no write timeout, so ``write`` only
    bounds the whole request together with the others.
    """

    __slots__ = ("_connect", "_media_write", "_pool", "_pool_size", "_proxy", "_read", "_session",
                 "_write")

    def __init__(
        self,
        *,
        connection_pool_size: int = 64,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        proxy: str | None = None,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._proxy = proxy
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None),
                # No trust_env: it costs two thread hops per call (netrc and proxy look-ups);
                # a proxy is passed explicitly instead. The Bot API sets no cookies.
                cookie_jar=aiohttp.DummyCookieJar(),
                proxy=self._proxy,
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        """The Bot API's answer, parsed with orjson (PTB's documented override point; its
        default is the stdlib's ``json``). Like PTB, invalid UTF-8 is replaced and anything
        else is ``TelegramError("Invalid server response")``; unlike PTB, the payload is not
        logged (it can hold a message's text)."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            try:
                data = orjson.loads(payload.decode("utf-8", "replace"))
            except orjson.JSONDecodeError:
                raise TelegramError("Invalid server response") from None
        if not isinstance(data, dict):
            raise TelegramError("Invalid server response")
        return data

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = bool(request_data and request_data.contains_files)
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        default_write = self._media_write if files else self._write
        write = default_write if isinstance(write_timeout, DefaultValue) else write_timeout
        timeout = aiohttp.ClientTimeout(
            total=_sum(connect, pool, read, write),
            connect=_sum(connect, pool),
            sock_connect=connect,
            sock_read=read,
        )
        body: Any = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if files:
                body = _multipart(request_data)
            else:
                body = orjson.dumps(request_data.parameters)
                headers = _JSON
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError:
            raise TimedOut() from None
        except aiohttp.ClientError as exc:
            # str(exc) may contain the URL, i.e. the token: report the kind of failure only.
            raise NetworkError(f"aiohttp.{type(exc).__name__}") from None


def _sum(*parts: float | None) -> float | None:
    """Total of timeouts; ``None`` (wait forever) wins."""
    if any(p is None for p in parts):
        return None
    return float(sum(p for p in parts if p is not None))


def _multipart(request_data: RequestData) -> aiohttp.FormData:
    """Uploads: every parameter as a JSON-encoded form field, files as file parts."""
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, part in request_data.multipart_data.items():
        filename, content, *rest = part
        form.add_field(name, content, filename=filename,
                       content_type=rest[0] if rest else "application/octet-stream")
    return form
