"""`sanad serve` routes that need no channel: health, readiness, metrics, the parse API."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from bot.app import Sanad
from bot.web.app import create_app


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
