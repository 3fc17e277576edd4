"""A campaign sender in its own process, for the ``kill -9`` test.

    python -m tests.outreach.crash_worker DATABASE_URL LOG_FILE CAMPAIGN_ID

Its deliverer "reaches the platform" by appending the address to LOG_FILE (one ``write``, so
a line is either there or not), after a few milliseconds on the network; several calls are in
flight at once. The test kills it with SIGKILL at a random moment.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import timedelta

from bot.messages import Outbound
from bot.outreach.sender import CampaignSender, SenderOptions
from tests.outreach.conftest import open_store

LEASE = timedelta(seconds=1)
CONCURRENCY = 8
RATE = 300.0


class FileDeliverer:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> None:
        await asyncio.sleep(0.01)
        os.write(self.fd, f"{address}\n".encode())
        await asyncio.sleep(0.005)  # the answer travels back


async def main(url: str, log_file: str, campaign_id: int) -> None:
    store = await open_store(url)
    sender = CampaignSender(store, "telegram", FileDeliverer(log_file),
                            SenderOptions(rate=RATE, lease=LEASE, concurrency=CONCURRENCY,
                                          idle=0.05), campaign_id=campaign_id)
    await sender.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
