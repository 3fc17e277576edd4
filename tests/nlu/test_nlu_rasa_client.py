"""RasaNLU against a fake Rasa server (aiohttp on 127.0.0.1, random port)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from nlu import EmbeddedNLU, RasaNLU
from nlu.rasa_client import map_rasa_response


@dataclass
class FakeRasa:
    """Answers /model/parse like `rasa run --enable-api`, with switchable failure modes."""

    url: str = ""
    mode: str = "ok"  # ok | slow | error | garbage
    intent: str = "greet"
    confidence: float = 0.91
    seen: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.seen.append(body["text"])
        if self.mode == "slow":
            await asyncio.sleep(2)
        if self.mode == "error":
            return web.Response(status=500, text="boom")
        if self.mode == "garbage":
            return web.Response(text="<html>not json</html>")
        ranking = [{"name": self.intent, "confidence": self.confidence},
                   {"name": "goodbye", "confidence": 0.05},
                   {"name": "thanks", "confidence": 0.04}]
        return web.json_response({"text": body["text"], "intent": ranking[0],
                                  "intent_ranking": ranking, "entities": [],
                                  "text_tokens": []})


@pytest.fixture
async def fake_rasa() -> AsyncIterator[FakeRasa]:
    fake = FakeRasa()
    app = web.Application()
    app.router.add_post("/model/parse", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_maps_rasa_answer(fake_rasa: FakeRasa, engine: EmbeddedNLU) -> None:
    nlu = RasaNLU(fake_rasa.url, fallback=engine)
    try:
        result = await nlu.parse("ezayak ya basha")
    finally:
        await nlu.aclose()
    assert result.intent.name == "greet"
    assert result.intent.confidence == pytest.approx(0.91)
    assert [s.name for s in result.ranking] == ["greet", "goodbye", "thanks"]
    assert (result.language.code, result.language.script) == ("ar", "Latn")  # our langid
    assert result.to_dict()["intent_ranking"][0]["name"] == "greet"


async def test_nlu_fallback_becomes_out_of_scope(fake_rasa: FakeRasa,
                                                 engine: EmbeddedNLU) -> None:
    fake_rasa.intent, fake_rasa.confidence = "nlu_fallback", 0.3
    nlu = RasaNLU(fake_rasa.url, fallback=engine)
    try:
        result = await nlu.parse("qwerty")
    finally:
        await nlu.aclose()
    assert result.intent.name == "out_of_scope"
    assert all(s.name != "nlu_fallback" for s in result.ranking)


async def test_safety_net_overrides_rasa(fake_rasa: FakeRasa, engine: EmbeddedNLU) -> None:
    fake_rasa.intent = "greet"  # Rasa got it wrong
    nlu = RasaNLU(fake_rasa.url, fallback=engine)
    try:
        result = await nlu.parse("7ad beyedrabni")
        yes = await nlu.parse("aywa")
    finally:
        await nlu.aclose()
    assert result.intent.name == "emergency" and result.intent.confidence >= 0.95
    assert yes.intent.name == "affirm"


async def test_slash_is_not_sent(fake_rasa: FakeRasa, engine: EmbeddedNLU) -> None:
    nlu = RasaNLU(fake_rasa.url, fallback=engine)
    try:
        result = await nlu.parse("/stop")
    finally:
        await nlu.aclose()
    assert fake_rasa.seen == ["stop"]
    assert result.text == "/stop"


@pytest.mark.parametrize("mode", ["error", "garbage", "slow"])
async def test_falls_back_when_rasa_fails(fake_rasa: FakeRasa, engine: EmbeddedNLU, mode: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    fake_rasa.mode = mode
    secret = "شكرا جزيلا يا سند"
    nlu = RasaNLU(fake_rasa.url, fallback=engine, timeout=0.3)
    try:
        with caplog.at_level(logging.WARNING, logger="nlu.rasa_client"):
            result = await nlu.parse(secret)
    finally:
        await nlu.aclose()
    # The embedded classifier answered. "slow": Rasa would have answered "greet" after 2 s, so
    # "thanks" proves the 0.3 s timeout gave up on it (no wall-clock bound is needed).
    assert result.intent.name == "thanks"
    assert "unavailable" in caplog.text
    assert secret not in caplog.text  # never log user text


async def test_falls_back_when_rasa_is_down(engine: EmbeddedNLU,
                                            caplog: pytest.LogCaptureFixture) -> None:
    nlu = RasaNLU(f"http://127.0.0.1:{_closed_port()}", fallback=engine, timeout=0.5,
                  retry_after=60)
    try:
        with caplog.at_level(logging.WARNING, logger="nlu.rasa_client"):
            first = await nlu.parse("merci beaucoup")
            second = await nlu.parse("ils m'ont enfermé")
    finally:
        await nlu.aclose()
    assert first.intent.name == "thanks"
    assert second.intent.name == "emergency"
    assert caplog.text.count("unavailable") == 1  # second call skipped Rasa (cool-down)


async def test_recovers_after_cool_down(fake_rasa: FakeRasa, engine: EmbeddedNLU) -> None:
    fake_rasa.mode = "error"
    nlu = RasaNLU(fake_rasa.url, fallback=engine, retry_after=0.0)
    try:
        await nlu.parse("hello")
        fake_rasa.mode = "ok"
        fake_rasa.intent = "menu"
        result = await nlu.parse("hello")
    finally:
        await nlu.aclose()
    assert result.intent.name == "menu"


def test_map_rasa_response_rejects_junk() -> None:
    from nlu.rasa_client import RasaUnavailable

    for junk in [None, [], {"intent": None}, "x"]:
        with pytest.raises(RasaUnavailable):
            map_rasa_response(junk)
    intent, ranking = map_rasa_response({"intent": {"name": "deny", "confidence": 0.7}})
    assert intent.name == "deny" and ranking[0].name == "deny"


def test_parse_command_with_async_backend(fake_rasa_sync: tuple[str, Any],
                                          engine: EmbeddedNLU) -> None:
    """`sanad nlu parse` calls parse_command from inside a running loop: must still work."""
    import io
    import json

    from nlu import cli

    url, _ = fake_rasa_sync
    nlu = RasaNLU(url, fallback=engine)

    async def inside_a_loop() -> int:
        out = io.StringIO()
        code = cli.parse_command(nlu, "hello", False, io.StringIO(), out)
        assert json.loads(out.getvalue())["intent"]["name"] == "greet"
        await nlu.aclose()
        return code

    assert asyncio.run(inside_a_loop()) == 0


@pytest.fixture
def fake_rasa_sync() -> Any:
    """The fake server on its own thread and loop (for sync tests)."""
    import threading

    fake = FakeRasa()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    holder: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/model/parse", fake.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    ready.wait(5)
    yield f"http://127.0.0.1:{holder['port']}", fake
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
