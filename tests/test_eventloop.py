"""SANAD_EVENT_LOOP: uvloop where installed, the stdlib loop on request."""

from __future__ import annotations

import asyncio

import pytest

from bot import eventloop
from bot.config import ConfigError, Settings


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_runs_on_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop", reason="uvloop is not installed on this platform")
    assert eventloop.run(_loop_module(), choice="auto").startswith("uvloop")


def test_asyncio_keeps_the_stdlib_loop() -> None:
    assert eventloop.run(_loop_module(), choice="asyncio").startswith("asyncio")


KEY = {"SANAD_SECRET_KEY": "test-secret-key-0123456789abcdef"}


def test_the_setting_is_read_and_checked() -> None:
    assert Settings.from_env({**KEY, "SANAD_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    assert Settings.from_env(KEY).event_loop == "auto"
    with pytest.raises(ConfigError, match="SANAD_EVENT_LOOP"):
        Settings.from_env({**KEY, "SANAD_EVENT_LOOP": "trio"})
