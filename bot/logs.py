"""Logging set-up: plain text or JSON lines on stderr, each record carrying the request/turn id.

The id lives in a context variable: an aiohttp middleware (``bot.web.app``) or a worker job sets
it, and every task started from there inherits it, so one webhook's turn, its sends and its
errors share one id. What we log never includes message text, names or phone numbers; the id is
random, not derived from the user.

``SANAD_LOG_FORMAT=json`` picks JSON (one object a line: ``ts``, ``level``, ``logger``,
``message``, ``request_id``, ``pid``, and ``exc`` for a traceback); ``SANAD_LOG_LEVEL`` overrides
the level (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``).
"""

from __future__ import annotations

import contextvars
import logging
import os
import secrets
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

import orjson

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("sanad_request_id",
                                                                         default=None)
FORMATS = ("text", "json")
QUIET_LOGGERS = ("httpx", "httpcore", "telegram", "aiohttp.access", "asyncio", "alembic")
"""Third-party loggers kept at WARNING: Telegram URLs carry the bot token, request logs carry
user ids."""
TURN_LOGGERS = ("bot.engine",)
"""One INFO line per turn (state, intent, safety labels): shown only at DEBUG, so a busy
``serve`` at INFO logs its life cycle and its problems, not every conversation step."""


def new_request_id() -> str:
    """16 hex characters: unique enough to find one request in a day's logs."""
    return secrets.token_hex(8)


def current_request_id() -> str | None:
    return REQUEST_ID.get()


@contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Everything logged inside (and in tasks started inside) carries ``request_id``."""
    rid = request_id or new_request_id()
    token = REQUEST_ID.set(rid)
    try:
        yield rid
    finally:
        REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request) for both formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


def format_exception_safely(exc_info: ExcInfo) -> str:
    """A traceback's frames and exception classes, without the exceptions' messages: those may
    quote user text, an SQL statement's parameters or a token (PTB, SQLAlchemy, KeyError)."""
    exc_type, exc, tb = exc_info
    if exc_type is None:
        return ""
    lines = ["Traceback (most recent call last):\n", *traceback.format_tb(tb),
             f"{exc_type.__module__}.{exc_type.__qualname__} (message withheld)"]
    cause = exc.__cause__ or exc.__context__ if exc is not None else None
    if cause is not None:
        lines.insert(0, f"[after {type(cause).__module__}.{type(cause).__qualname__}]\n")
    return "".join(lines)


class TextFormatter(logging.Formatter):
    """The plain format, tracebacks without exception messages."""

    def formatException(self, ei: ExcInfo) -> str:
        return format_exception_safely(ei)


class JsonFormatter(logging.Formatter):
    """One JSON object a line; the message is the formatted message only (callers pass labels
    and counts as arguments, never user data); tracebacks without exception messages."""

    def formatException(self, ei: ExcInfo) -> str:
        return format_exception_safely(ei)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
            "pid": record.process,
        }
        if entry["request_id"] == "-":
            entry["request_id"] = None
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def level_from(env: Mapping[str, str], default: int) -> int:
    """``SANAD_LOG_LEVEL`` if set (a name such as ``INFO``), else ``default``."""
    name = env.get("SANAD_LOG_LEVEL", "").strip().upper()
    if not name:
        return default
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        raise ValueError(f"SANAD_LOG_LEVEL={name!r} is not a level (DEBUG, INFO, WARNING, ERROR)")
    return level


def format_from(env: Mapping[str, str]) -> str:
    fmt = env.get("SANAD_LOG_FORMAT", "text").strip().lower() or "text"
    if fmt not in FORMATS:
        raise ValueError(f"SANAD_LOG_FORMAT={fmt!r}: expected text or json")
    return fmt


def configure(level: int, fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Replace the root handlers with one on ``stream`` (stderr) in ``fmt``; returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    for name in TURN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG
                                         else max(level, logging.WARNING))
    return handler


def configure_from_env(default_level: int, env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    configure(level_from(env, default_level), format_from(env))
