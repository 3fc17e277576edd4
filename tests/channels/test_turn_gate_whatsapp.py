"""WhatsApp conversation replies take their sends from the number's send budget, in the same
priority order as Telegram's (the real channel against the fake Graph API)."""

from __future__ import annotations

import asyncio

from bot.sendbudget import Priority, current
from tests.whatsapp.conftest import (  # noqa: F401 - fixtures
    Harness,
    fake,
    migrated_sqlite,
    wa,
    wa_sqlite_url,
)

EMERGENCY = "أنا في خطر الآن"


class AskedBudget:
    """A budget that grants at once and remembers at which priority it was asked."""

    def __init__(self) -> None:
        self.asked: list[Priority] = []

    async def acquire(self, priority: Priority | None = None) -> None:
        self.asked.append(current() if priority is None else priority)

    async def reserve(self, priority: Priority, count: int, stop: asyncio.Event) -> list[float]:
        raise NotImplementedError

    async def pause(self, seconds: float) -> None:
        return None


def messages_sent(harness: Harness) -> int:
    """Messages Meta accepted (read receipts are not messages)."""
    return sum(1 for call in harness.fake.ok() if call.kind != "read")


async def test_whatsapp_replies_ask_the_budget_safety_first_then_first_replies(
    wa: Harness,  # noqa: F811
) -> None:
    budget = AskedBudget()
    wa.channel.client.budget = budget
    await wa.say("مرحبا")
    greeting = list(budget.asked)
    assert greeting[0] is Priority.FIRST_REPLY
    assert set(greeting[1:]) <= {Priority.LATER_REPLY}
    assert len(greeting) == messages_sent(wa)  # every message asked, no read receipt
    budget.asked.clear()
    await wa.say(EMERGENCY)
    assert budget.asked and set(budget.asked) == {Priority.EMERGENCY}
