"""`sanad serve` routes that need no channel: health, readiness, metrics, the parse API."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Sanad
from bot.config import ConfigError, Settings
from bot.web.app import PARSE_BURST, create_app


async def client_for(sanad: Sanad) -> TestClient:
    client = TestClient(TestServer(create_app(sanad)))
    await client.start_server()
    return client


async def test_health_readiness_and_metrics(sanad_sqlite: Sanad) -> None:
    client = await client_for(sanad_sqlite)
    try:
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        assert ready.status == 200 and (await ready.json())["status"] == "ok"
        await client.post("/model/parse", json={"text": "hello"})
        metrics = await (await client.get("/metrics")).text()
        assert "sanad_parse_requests_total 1" in metrics
    finally:
        await client.close()


async def test_readiness_fails_when_the_database_is_gone(sanad_sqlite: Sanad) -> None:
    await sanad_sqlite.store.engine.dispose()
    sanad_sqlite.store.engine.sync_engine.url  # noqa: B018  (the engine object stays)
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    broken = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    sanad_sqlite.store.sessionmaker = async_sessionmaker(broken)
    client = await client_for(sanad_sqlite)
    try:
        response = await client.get("/readyz")
        assert response.status == 503
    finally:
        await client.close()
        await broken.dispose()


async def test_model_parse_is_rasa_compatible(sanad_sqlite: Sanad) -> None:
    client = await client_for(sanad_sqlite)
    try:
        response = await client.post("/model/parse", json={"text": "ana 3ayez asafer italya"})
        assert response.status == 200
        body = await response.json()
        assert set(body) >= {"text", "intent", "intent_ranking", "entities", "language"}
        assert body["language"] == {"code": "ar", "script": "Latn",
                                    "confidence": body["language"]["confidence"]}
        assert body["intent"]["name"] in {r["name"] for r in body["intent_ranking"]}
        for bad in (b"not json", b"[]", b'{"text": 5}', b"{}"):
            response = await client.post("/model/parse", data=bad)
            assert response.status == 400, bad
        huge = await client.post("/model/parse", data=b'{"text": "' + b"a" * 400_000 + b'"}')
        assert huge.status == 413
    finally:
        await client.close()


def with_settings(sanad: Sanad, **changes: object) -> Sanad:
    return replace(sanad, settings=replace(sanad.settings, **changes))


async def test_production_keeps_metrics_and_the_parse_api_private(sanad_sqlite: Sanad) -> None:
    """The counters tell how often people quick-exit; the parse API is a free classifier."""
    client = await client_for(with_settings(sanad_sqlite, environment="production",
                                            metrics_token=None, parse_api=False))
    try:
        assert (await client.get("/metrics")).status == 404
        assert (await client.post("/model/parse", json={"text": "hello"})).status in (404, 405)
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_a_metrics_token_is_required_when_set(sanad_sqlite: Sanad) -> None:
    token = "metrics-token-0123456789"
    client = await client_for(with_settings(sanad_sqlite, environment="production",
                                            metrics_token=token))
    try:
        assert (await client.get("/metrics")).status == 401
        wrong = {"Authorization": "Bearer metrics-token-wrong-0000"}
        assert (await client.get("/metrics", headers=wrong)).status == 401
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status == 200
    finally:
        await client.close()


async def test_the_parse_api_is_rate_limited_per_client(sanad_sqlite: Sanad) -> None:
    client = await client_for(sanad_sqlite)
    try:
        statuses = [(await client.post("/model/parse", json={"text": "hi"})).status
                    for _ in range(PARSE_BURST + 5)]
        assert statuses[:PARSE_BURST] == [200] * PARSE_BURST
        assert 429 in statuses[PARSE_BURST:]
    finally:
        await client.close()


def test_metrics_tokens_are_long_enough() -> None:
    with pytest.raises(ConfigError, match="SANAD_METRICS_TOKEN"):
        Settings.from_env({"SANAD_METRICS_TOKEN": "short"})
    assert Settings.from_env({"SANAD_ENV": "production", "SANAD_SECRET_KEY": "x" * 32}
                             ).parse_api is False
    assert Settings.from_env({}).parse_api is True


async def test_the_web_chat_is_served_where_enabled_and_only_there(sanad_sqlite: Sanad) -> None:
    """On in development; production serves it only when SANAD_WEB_CHAT says so."""
    assert Settings.from_env({}).web_chat is True
    production = {"SANAD_ENV": "production", "SANAD_SECRET_KEY": "x" * 32}
    assert Settings.from_env(production).web_chat is False
    assert Settings.from_env({**production, "SANAD_WEB_CHAT": "1"}).web_chat is True
    for enabled, status in ((True, 200), (False, 404)):
        client = await client_for(with_settings(sanad_sqlite, web_chat=enabled))
        try:
            assert (await client.get("/chat")).status == status
        finally:
            await client.close()
