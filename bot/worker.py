"""``sanad worker``: background jobs that must run even when nobody writes to the bot."""

from __future__ import annotations

import asyncio
import logging

from bot.config import Settings
from bot.store.crypto import FieldCipher, Pseudonymizer
from bot.store.db import DatabaseUnavailable, create_engine, upgrade
from bot.store.repository import Store

log = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 3600


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(self, *, once: bool = False) -> int:
        engine = create_engine(self.settings.database_url)
        await upgrade(engine)
        store = Store(engine, FieldCipher(self.settings.secret_key, self.settings.old_secret_keys),
                      Pseudonymizer(self.settings.secret_key))
        try:
            while True:
                try:
                    purged = await store.purge_expired(self.settings.retention_days)
                    log.info("retention: purged %s", purged)
                except DatabaseUnavailable:
                    log.warning("retention: database unavailable; will retry")
                if once:
                    return 0
                await asyncio.sleep(RETENTION_INTERVAL_S)
        finally:
            await engine.dispose()
