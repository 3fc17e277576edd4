"""The request layer and the sending policy against the fake Bot API (no engine needed)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from bot.channels.telegram_commands import COMMANDS, load_commands
from bot.channels.telegram_request import AiohttpRequest
from bot.channels.telegram_sender import RateLimiter, Sender, SendPolicy, UserBlockedBot
from bot.content import ContentError
from tests.telegram.fake_bot_api import FakeBotAPI

FAST = SendPolicy(backoff=0.01, max_backoff=0.05)
# PTB itself reads RetryAfter.retry_after as an int while building the exception.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    api = FakeBotAPI()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def bot(fake: FakeBotAPI) -> AsyncIterator[Bot]:
    client = Bot(fake.token, base_url=fake.base_url, request=AiohttpRequest(read_timeout=1.0),
                 get_updates_request=AiohttpRequest())
    await client.initialize()
    yield client
    await client.shutdown()


# --- request layer ------------------------------------------------------------------------
async def test_aiohttp_layer_speaks_the_bot_api(fake: FakeBotAPI, bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("نعم", callback_data="yes")]])
    message = await bot.send_message(42, "مرحبا 🤝", reply_markup=markup)
    assert message.message_id == 1000 and message.chat.id == 42 and message.text == "مرحبا 🤝"
    call = fake.calls_to("sendMessage")[0]
    assert call.params["chat_id"] == 42 and call.params["text"] == "مرحبا 🤝"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "نعم", "callback_data": "yes"}]]}
    assert await bot.delete_messages(42, [1, 2, 3])
    assert fake.calls_to("deleteMessages")[0].params["message_ids"] == [1, 2, 3]


async def test_aiohttp_layer_uploads_multipart(fake: FakeBotAPI, bot: Bot) -> None:
    # Sanad sends no files today; the layer must still not break PTB's upload methods.
    data = await bot.request.post(
        f"{fake.base_url}{fake.token}/setWebhook",
        request_data=_upload_request("https://example.org/hook"),
    )
    assert data is True
    assert fake.calls_to("setWebhook")[0].params["certificate"] == "<file>"


def _upload_request(url: str) -> RequestData:

    return RequestData([
        RequestParameter.from_input("url", url),
        RequestParameter.from_input("certificate", InputFile(b"---cert---", filename="c.pem")),
    ])


async def test_same_wire_format_as_httpx(fake: FakeBotAPI) -> None:
    """Both layers produce the same parameters at the Bot API (JSON vs. form encoding)."""
    for request in (HTTPXRequest(), AiohttpRequest()):
        client = Bot(fake.token, base_url=fake.base_url, request=request)
        await client.initialize()
        await client.send_message(7, "x", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("a", callback_data="a")]]))
        await client.shutdown()
    first, second = (c.params for c in fake.calls_to("sendMessage"))
    assert first == second


async def test_timeout_is_timed_out(fake: FakeBotAPI, bot: Bot) -> None:
    fake.latency = 1.5
    with pytest.raises(TimedOut):
        await bot.send_message(1, "slow")


async def test_network_errors_never_show_the_token() -> None:
    request = AiohttpRequest(connect_timeout=1.0)
    client = Bot("999:secret-token", base_url="http://127.0.0.1:9/bot", request=request)
    await request.initialize()
    with pytest.raises(NetworkError) as caught:
        await client.send_message(1, "x")
    assert "secret-token" not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    await request.shutdown()


# --- sending policy ---------------------------------------------------------------------
async def test_flood_wait_is_honoured(fake: FakeBotAPI, bot: Bot) -> None:
    fake.fail_next(1, status=429, retry_after=1, methods=("sendMessage",))
    sender = Sender(FAST)
    started = time.monotonic()
    await sender.call(lambda: bot.send_message(1, "x"), chat_id=1)
    attempts = fake.calls_to("sendMessage", ok_only=False)
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.95
    assert time.monotonic() - started >= 0.95


async def test_too_long_flood_wait_is_not_waited(fake: FakeBotAPI, bot: Bot) -> None:
    fake.fail_next(1, status=429, retry_after=3600, methods=("sendMessage",))
    with pytest.raises(RetryAfter):
        await Sender(FAST).call(lambda: bot.send_message(1, "x"))


async def test_server_errors_retried_with_bounded_backoff(fake: FakeBotAPI, bot: Bot) -> None:
    fake.fail_next(2, status=502)
    await Sender(FAST).call(lambda: bot.send_message(1, "x"))
    assert [c.status for c in fake.calls_to("sendMessage", ok_only=False)] == [502, 502, 200]
    fake.reset_calls()
    fake.fail_next(10, status=500)
    with pytest.raises(NetworkError):
        await Sender(FAST).call(lambda: bot.send_message(1, "x"))
    assert len(fake.calls_to("sendMessage", ok_only=False)) == FAST.attempts


async def test_bad_request_not_retried_and_403_is_blocked(fake: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(BadRequest):
        await Sender(FAST).call(lambda: bot.send_message(1, "x" * 5000))
    assert len(fake.calls_to("sendMessage", ok_only=False)) == 1
    fake.fail_next(1, status=403)
    with pytest.raises(UserBlockedBot):
        await Sender(FAST).call(lambda: bot.send_message(1, "x"))


async def test_per_chat_rate_limit(fake: FakeBotAPI, bot: Bot) -> None:
    sender = Sender(SendPolicy(per_chat_rate=10.0, per_chat_burst=2))
    started = time.monotonic()
    for _ in range(4):  # 2 at once, then 10/s: ≥ 0.2 s
        await sender.call(lambda: bot.send_message(1, "x"), chat_id=1)
    await sender.call(lambda: bot.send_message(2, "x"), chat_id=2)  # another chat: no wait
    assert time.monotonic() - started >= 0.19


def test_rate_limiter_reservations() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=3, clock=lambda: now[0])
    assert [limiter.reserve("a") for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]
    assert limiter.reserve("b") == 0.0
    now[0] = 10.0
    assert limiter.reserve("a") == 0.0


def test_rate_limiter_forgets_idle_chats() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=2, max_keys=3, clock=lambda: now[0])
    for key in range(3):
        limiter.reserve(key)
    now[0] = 5.0
    limiter.reserve("new")
    assert set(limiter._buckets) == {"new"}


# --- command menu -----------------------------------------------------------------------
def test_command_menu_in_every_language() -> None:
    menus = load_commands()
    assert set(menus) == {"ar", "en", "fr"}
    for menu in menus.values():
        assert [c.command for c in menu] == list(COMMANDS)
        assert all(1 <= len(c.description) <= 256 for c in menu)


def test_command_menu_problems_are_reported(tmp_path: Path) -> None:
    for lang in ("ar", "en", "fr"):
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "telegram.yml").write_text(
            "commands:\n  start: Start\n  bogus: x\n", encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_commands(tmp_path)
    text = str(caught.value)
    assert "commands.help" in text and "commands.bogus" in text
