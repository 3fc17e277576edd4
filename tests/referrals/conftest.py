"""Fixtures for referrals: the real console and API on SQLite and PostgreSQL, accounts for two
partner organisations, a high-risk person handed off after an Egyptian Arabic screening, and a
recorder standing in for the person's chat."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.app import Sanad
from bot.messages import Inbound, Outbound, Turn
from bot.outbox import OutboxSender
from handoff import auth
from handoff.queue import list_cases
from handoff.referrals import partners
from handoff.referrals.directory import PartnerDirectory
from tests.handoff.conftest import FAST_PASSWORDS, PASSWORD, Console, start_console

SHELTER = "moss_shelters"
OTHER = "iom_egypt"
PARTNER_ACCOUNTS = {"shelter1": SHELTER, "iom1": OTHER}


class ChatRecorder:
    """The person's phone: what the outbox delivered to them, newest last."""

    def __init__(self) -> None:
        self.delivered: list[Outbound] = []

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> None:
        self.delivered.extend(messages)

    def button(self, prefix: str) -> str:
        for message in reversed(self.delivered):
            for button in message.buttons:
                if button.id.startswith(prefix):
                    return button.id
        raise AssertionError(f"no button {prefix}* was delivered")


@dataclass
class Person:
    sanad: Sanad
    user: str
    phone: ChatRecorder = field(default_factory=ChatRecorder)
    turns: list[Turn] = field(default_factory=list)

    async def say(self, text: str = "", button: str | None = None) -> Turn:
        ref = self.sanad.store.user_ref("terminal", self.user)
        turn = await self.sanad.engine.handle_turn(
            Inbound(user=ref, text=text, button_id=button), address=self.user)
        self.turns.append(turn)
        return turn

    async def check_phone(self) -> list[Outbound]:
        """Run the outbox once for this person; what arrived now."""
        before = len(self.phone.delivered)
        sender = OutboxSender(self.sanad.store, "terminal", self.phone,
                              user_key=self.sanad.store.user_ref("terminal", self.user).key)
        await sender.run_once()
        return self.phone.delivered[before:]


def buttons(turn: Turn) -> list[str]:
    return [b.id for m in turn.outbound for b in m.buttons]


async def handed_off_high_risk(sanad: Sanad, user: str) -> tuple[Person, int]:
    """An Egyptian Arabic speaker answers the screening "yes" throughout and accepts a person."""
    person = Person(sanad, user)
    await person.say("ازيك عامل ايه")
    await person.say(button="menu:check")
    turn = await person.say("ايوه")
    turn = await person.say(button="sc:age:18_24")
    for _ in range(30):
        if "sc:ans:yes" not in buttons(turn):
            break
        turn = await person.say("ايوه")
    assert "sc:handoff:yes" in buttons(turn)
    await person.say("ايوه")
    async with sanad.store.session() as db:
        cases = [c for c in await list_cases(db) if c.risk_level in ("high", "urgent")]
    assert cases, "a high-risk case was opened"
    return person, cases[-1].id


async def add_partner_accounts(console: Console) -> dict[str, str]:
    return await partner_accounts(console.sanad)


async def partner_accounts(sanad: Sanad) -> dict[str, str]:
    """A console login for a shelter's staff and one for another organisation, and a token
    with both scopes for each organisation."""
    directory = PartnerDirectory.load(sanad.content)
    async with sanad.store.session() as db:
        for name, partner_id in PARTNER_ACCOUNTS.items():
            await auth.create_account(db, FAST_PASSWORDS, name=name, role="partner",
                                      password=PASSWORD)
            await partners.add_member(db, directory, name=name, partner_id=partner_id)
        return {pid: await partners.issue_token(db, directory, pid)
                for pid in (SHELTER, OTHER)}


@pytest.fixture
async def console_any_db(sanad: Sanad) -> AsyncIterator[Console]:
    """The console on each database of ``database_url`` (SQLite and PostgreSQL)."""
    running = await start_console(sanad)
    yield running
    await running.close()
    await running.server.close()


@pytest.fixture
async def console_sqlite(sanad_sqlite: Sanad) -> AsyncIterator[Console]:
    running = await start_console(sanad_sqlite)
    yield running
    await running.close()
    await running.server.close()


async def propose_via_api(console: Console, case_id: int, *, as_: str = "cw1",
                          claim: bool = True, **overrides: Any) -> tuple[int, dict[str, Any]]:
    """Claim (optionally) and propose a shelter referral; (HTTP status, body)."""
    client = await console.browser()
    auth_header = {"Authorization": f"Bearer {console.tokens[as_]}"}
    if claim:
        await client.request("POST", f"/api/cases/{case_id}/claim", headers=auth_header)
    body = {"partner_id": SHELTER, "service_id": "moss_trafficking_shelters",
            "urgency": "high", "fields": ["language", "risk_level", "summary"],
            "summary": "needs a safe place tonight", **overrides}
    response = await client.request("POST", f"/api/cases/{case_id}/referrals", json=body,
                                    headers=auth_header)
    return response.status, await response.json()


async def call(console: Console, method: str, path: str, token: str,
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    client = await console.browser()
    response = await client.request(method, path, json=body,
                                    headers={"Authorization": f"Bearer {token}"})
    return response.status, await response.json()
