"""A webhook Telegram would refuse is a configuration error naming the variable: found before
any call where we can tell, mapped from Telegram's 400 where only Telegram can; ``sanad serve``
exits with code 2, without a traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.channels.telegram_webhook import check_secret, check_url
from bot.config import ConfigError
from tests.telegram.conftest import bot_core, running, telegram_settings
from tests.telegram.fake_bot_api import FakeBotAPI

GOOD_URL = "https://bot.example.org/telegram/webhook"
UNRESOLVABLE = "Bad Request: bad webhook: Failed to resolve host: Name or service not known"


@pytest.mark.parametrize("url", [
    "http://bot.example.org/telegram/webhook",
    "https://bot.example.org:8080/telegram/webhook",
    "https://bot.example.org:444/",
    "https://bot.example.org:99999/",
    "https://bot.example.org:port/",
    "https:///telegram/webhook",
    "bot.example.org/telegram/webhook",
    "ftp://bot.example.org/",
    "https://bot.example.org/tele gram",
])
def test_urls_telegram_refuses_are_refused_here(url: str) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_URL"):
        check_url(url)


@pytest.mark.parametrize("url", [
    GOOD_URL, "https://bot.example.org:8443/hook", "https://bot.example.org:88/hook",
    "https://bot.example.org:80/hook", "https://bot.example.org:443", "HTTPS://Bot.Example.org/x",
    "https://203.0.113.7:8443/telegram/webhook",
])
def test_urls_telegram_accepts(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize("secret", ["", "a b", "a.b", "sécret", "a+b/c=", "x" * 257, "تجربة"])
def test_secrets_telegram_refuses_are_refused_here(secret: str) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        check_secret(secret)


@pytest.mark.parametrize("secret", [None, "x", "x" * 256, "Az09_-", "test_secret-1"])
def test_secrets_telegram_accepts(secret: str | None) -> None:
    check_secret(secret)


# --- at start-up ---------------------------------------------------------------------------
@pytest.mark.parametrize(("overrides", "variable"), [
    ({"telegram_webhook_url": "http://bot.example.org/telegram/webhook"}, "TELEGRAM_WEBHOOK_URL"),
    ({"telegram_webhook_url": "https://bot.example.org:8080/hook"}, "TELEGRAM_WEBHOOK_URL"),
    ({"telegram_webhook_url": GOOD_URL, "telegram_webhook_secret": "has spaces"},
     "TELEGRAM_WEBHOOK_SECRET"),
])
async def test_start_refuses_before_calling_telegram(
    sqlite_url: str, embedded_nlu: Any, fake: FakeBotAPI, overrides: dict[str, Any],
    variable: str
) -> None:
    settings = telegram_settings(sqlite_url, fake, **overrides)
    async with bot_core(settings, embedded_nlu) as sanad:
        with pytest.raises(ConfigError, match=variable):
            async with running(sanad, fake):
                pass
    assert not fake.calls


@pytest.mark.parametrize(("description", "variable"), [
    (UNRESOLVABLE, "TELEGRAM_WEBHOOK_URL"),
    ("Bad Request: bad webhook: IP address 10.0.0.7 is reserved", "TELEGRAM_WEBHOOK_URL"),
    ("Bad Request: secret token contains unallowed characters", "TELEGRAM_WEBHOOK_SECRET"),
])
async def test_telegrams_refusal_is_a_configuration_error(
    sqlite_url: str, embedded_nlu: Any, fake: FakeBotAPI, description: str, variable: str
) -> None:
    fake.fail_next(1, status=400, methods=("setWebhook",), description=description)
    settings = telegram_settings(sqlite_url, fake, telegram_webhook_url=GOOD_URL)
    async with bot_core(settings, embedded_nlu) as sanad:
        with pytest.raises(ConfigError, match=variable) as caught:
            async with running(sanad, fake):
                pass
    reason = description.removeprefix("Bad Request: ").lower()  # PTB recases it
    assert reason in str(caught.value).lower() and fake.token not in str(caught.value)
    assert len(fake.calls_to("setWebhook", ok_only=False)) == 1  # a 400 is not retried


async def test_setwebhook_unreachable_is_a_configuration_error(
    sqlite_url: str, embedded_nlu: Any, fake: FakeBotAPI
) -> None:
    fake.fail_next(10, status=502, methods=("setWebhook",))
    settings = telegram_settings(sqlite_url, fake, telegram_webhook_url=GOOD_URL)
    async with bot_core(settings, embedded_nlu) as sanad:
        with pytest.raises(ConfigError, match="setWebhook failed") as caught:
            async with running(sanad, fake):
                pass
    assert fake.token not in str(caught.value)


# --- `sanad serve` ------------------------------------------------------------------------
async def serve(tmp_path: Path, cache: Path, fake: FakeBotAPI, **env_extra: str
                ) -> tuple[int, str]:
    """``sanad serve`` in a subprocess, the fake Bot API answering it from this event loop;
    its exit code and stderr (it must exit by itself: start-up fails)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
           "SANAD_SECRET_KEY": "cli-test-secret-0123456789", "SANAD_CACHE_DIR": str(cache),
           "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_BASE_URL": fake.base_url,
           "TELEGRAM_WEBHOOK_SECRET": "serve_secret-1", **env_extra}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", "0",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=110)
    assert process.returncode is not None
    return process.returncode, stderr.decode("utf-8", "replace")


async def test_serve_with_an_http_webhook_exits_2(tmp_path: Path, nlu_cache: Path,
                                                   fake: FakeBotAPI) -> None:
    code, stderr = await serve(tmp_path, nlu_cache, fake,
                               TELEGRAM_WEBHOOK_URL="http://bot.example.org/telegram/webhook")
    assert code == 2, stderr
    assert "configuration error" in stderr and "TELEGRAM_WEBHOOK_URL" in stderr
    assert "Traceback" not in stderr and fake.token not in stderr
    assert not fake.calls


async def test_serve_exits_2_when_telegram_refuses_the_webhook(
    tmp_path: Path, nlu_cache: Path, fake: FakeBotAPI
) -> None:
    fake.fail_next(1, status=400, methods=("setWebhook",), description=UNRESOLVABLE)
    code, stderr = await serve(tmp_path, nlu_cache, fake, TELEGRAM_WEBHOOK_URL=GOOD_URL)
    assert code == 2, stderr
    assert "TELEGRAM_WEBHOOK_URL" in stderr and "failed to resolve host" in stderr.lower()
    assert "Traceback" not in stderr and fake.token not in stderr
    assert fake.calls_to("setWebhook", ok_only=False)
