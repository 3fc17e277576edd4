"""What every channel does to join the web app: start with it, stop with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def bind_to_app(app: web.Application, channel: Startable) -> None:
    """Start ``channel`` when the app starts and stop it (even after a failure) when it stops."""

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await channel.start()
        try:
            yield
        finally:
            await channel.stop()

    app.cleanup_ctx.append(lifecycle)
