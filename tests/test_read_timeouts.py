"""Slow clients cannot hold connections: headers that trickle in are cut off, and so is a
body that does not arrive. (The outer ``wait_for`` only guards against a hung test.)"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.app import Sanad
from bot.web.app import create_app

GUARD = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def port(sanad_sqlite: Sanad) -> AsyncIterator[int]:
    app = create_app(sanad_sqlite, channels=[], back_office=False, head_timeout=0.5,
                     body_timeout=0.5)
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    chosen = free_port()
    await web.TCPSite(runner, "127.0.0.1", chosen).start()
    yield chosen
    await runner.cleanup()


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def test_trickled_headers_are_cut_off(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()

    async def trickle() -> bytes:
        for n in range(1000):
            writer.write(f"X-Slow-{n}: a\r\n".encode())
            try:
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.1)
            if reader.at_eof():
                break
        return await reader.read()

    received = await asyncio.wait_for(trickle(), GUARD)
    assert b"200 OK" not in received, "the request never completed: the connection was closed"
    writer.close()


async def test_a_body_that_does_not_arrive_gets_408_and_the_connection_closes(
    port: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    await writer.drain()
    received = await asyncio.wait_for(reader.read(), GUARD)
    assert received.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_prompt_clients_are_served(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Connection: close\r\n\r\nhello")
    await writer.drain()
    received = await asyncio.wait_for(reader.read(), GUARD)
    assert received.startswith(b"HTTP/1.1 200") and received.endswith(b"hello")
    writer.close()
