"""Live console updates over server-sent events, on SQLite (in-process bus) and PostgreSQL
(LISTEN/NOTIFY): what one caseworker does reaches another's open queue without a poll; a
user's message reaches the open case through the watcher; streams keep the role rules, audit
what they show, never extend the session, and end when it does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.app import Sanad, build
from bot.store import user_keys
from bot.store.models import CaseMessage
from bot.store.repository import utcnow
from bot.web.app import create_app
from handoff import live
from handoff.auth import AuthPolicy
from handoff.models import AuditEntry, ConsoleSession
from handoff.web import setup
from tests.conftest import make_settings
from tests.handoff.conftest import FAST_PASSWORDS, Console, add_accounts, make_case

NEVER = 3600.0  # the watcher and heartbeat never fire by themselves: the tests drive them
STEP = 20.0  # a bound against a hung test, not a speed requirement


async def start(sanad: Sanad, *, accounts: bool = True,
                policy: AuthPolicy | None = None) -> Console:
    app = create_app(sanad, channels=[], back_office=False)
    setup(app, sanad, passwords=FAST_PASSWORDS, policy=policy, watch_seconds=NEVER,
          heartbeat=NEVER)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return Console(sanad, server, await add_accounts(sanad) if accounts else {})


@pytest.fixture
async def console(sanad: Sanad) -> AsyncIterator[Console]:
    running = await start(sanad)
    yield running
    await running.close()
    await running.server.close()


def hub(console: Console) -> live.Live:
    return console.server.app[live.LIVE]


@dataclass
class Stream:
    response: aiohttp.ClientResponse

    async def event(self) -> tuple[str, dict[str, Any]]:
        """The next event (comments and the retry line skipped)."""
        while True:
            block = await asyncio.wait_for(self.response.content.readuntil(b"\n\n"), STEP)
            name, data = "", b""
            for line in block.splitlines():
                if line.startswith(b"event: "):
                    name = line[7:].decode()
                elif line.startswith(b"data: "):
                    data = line[6:]
            if name:
                return name, orjson.loads(data)

    def close(self) -> None:
        self.response.close()


async def open_stream(browser: Any, path: str) -> Stream:
    response = await browser.session.get(browser.url(path))
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    return Stream(response)


async def audit_count(sanad: Sanad, action: str, actor: str = "cw1") -> int:
    async with sanad.store.session() as db:
        return int(await db.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.actor == actor)) or 0)


async def add_user_message(sanad: Sanad, case_id: int, text: str) -> None:
    """What the bot's turn writes, without publishing (the watcher must find it)."""
    async with sanad.store.session() as db:
        cipher = await user_keys.cipher_for_case(db, sanad.store.cipher, case_id)
        db.add(CaseMessage(case_id=case_id, sender="user", created_at=utcnow(),
                           text_enc=cipher.encrypt_text(text, context=b"case_messages.text")))


async def test_a_claim_by_someone_else_reaches_an_open_queue(console: Console) -> None:
    sanad = console.sanad
    first = await make_case(sanad, priority="urgent")
    second = await make_case(sanad, minutes_ago=5)
    watcher, other = await console.browser("cw1"), await console.browser("cw2")
    stream = await open_stream(watcher, "/console/queue/events")
    name, data = await stream.event()
    assert name == "queue" and data["count"] == 2 and data["urgent"] == [first]
    assert f"/console/cases/{second}" in data["html"]
    views = await audit_count(sanad, "queue.view")

    await other.get(f"/console/cases/{first}")
    response = await other.post(f"/console/cases/{first}/claim",
                                headers={"Accept": "application/json"})
    assert response.status == 200
    assert orjson.loads(await response.read()) == {
        "ok": True, "location": f"/console/cases/{first}", "notice": "claimed"}

    name, data = await stream.event()  # no watcher ran: the claim itself was published
    assert name == "queue"
    assert f"/console/cases/{first}\"" not in data["html"], "cw2's case left cw1's queue"
    assert data["count"] == 1 and data["urgent"] == []
    assert await audit_count(sanad, "queue.view") == views + 1, "what is pushed is audited"
    stream.close()


async def test_a_users_message_reaches_the_open_case_through_the_watcher(
    console: Console,
) -> None:
    sanad = console.sanad
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    browser = await console.browser("cw1")
    page = await browser.get(f"/console/cases/{case_id}")
    assert f'data-events="/console/cases/{case_id}/events"' in await page.text()
    stream = await open_stream(browser, f"/console/cases/{case_id}/events?n=0"
                                        f"&status=claimed&assignee=cw1")
    watcher = hub(console).watcher
    assert await watcher.check() is True, "the first look asks the streams to look once"
    reads = await audit_count(sanad, "case.thread")
    assert await watcher.check() is False, "nothing changed, nothing sent"
    assert await audit_count(sanad, "case.thread") == reads, "nothing new, nothing audited"

    await add_user_message(sanad, case_id, "<b>أنا هنا</b>")
    assert await watcher.check() is True
    name, data = await stream.event()
    assert name == "case" and data["n"] == 1 and data["status"] == "claimed"
    assert "&lt;b&gt;أنا هنا&lt;/b&gt;" in data["html"], "user text arrives escaped"
    assert await audit_count(sanad, "case.thread") == reads + 1
    stream.close()


async def test_a_case_made_between_a_stream_opening_and_the_first_look_still_arrives(
    console: Console,
) -> None:
    """The gap that once left a new urgent case off an open queue: the stream rendered, then
    the bot made a case, then the watcher took its first fingerprint (already with it)."""
    sanad = console.sanad
    await make_case(sanad)
    stream = await open_stream(await console.browser("cw1"), "/console/queue/events")
    name, data = await stream.event()
    assert name == "queue" and data["count"] == 1, "the stream has rendered"
    urgent = await make_case(sanad, priority="urgent")  # the bot's turn: nothing published

    assert await hub(console).watcher.check() is True
    name, data = await stream.event()
    assert name == "queue" and data["count"] == 2 and data["urgent"] == [urgent]
    stream.close()


async def test_the_watcher_rests_while_nobody_listens(console: Console) -> None:
    case_id = await make_case(console.sanad)
    watcher = hub(console).watcher
    await add_user_message(console.sanad, case_id, "hello")
    assert await watcher.check() is False
    assert watcher._last is None, "no query without a listener"


async def test_streams_keep_the_role_rules(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw2")
    anonymous = await console.browser()
    response = await anonymous.request("GET", "/console/queue/events")
    assert response.status == 401
    outreach = await console.browser("out")
    assert (await outreach.request("GET", "/console/queue/events")).status == 403
    cw1 = await console.browser("cw1")
    response = await cw1.request("GET", f"/console/cases/{case_id}/events")
    assert response.status == 403, "another caseworker's case"
    assert await audit_count(console.sanad, "case.denied") == 1


async def test_a_stream_never_extends_the_session_and_ends_with_it(sanad: Sanad) -> None:
    running = await start(sanad, policy=AuthPolicy(touch_every=timedelta(0)))
    try:
        case_id = await make_case(sanad)
        browser = await running.browser("cw1")
        async with sanad.store.session() as db:
            before = (await db.scalars(select(ConsoleSession.last_seen_at))).one()
        stream = await open_stream(browser, "/console/queue/events")
        await stream.event()
        for _ in range(3):
            await hub(running).bus.publish(live.Change(case_id))
        await add_user_message(sanad, case_id, "x")
        await hub(running).bus.publish(live.Change(case_id))
        await stream.event()
        async with sanad.store.session() as db:
            assert (await db.scalars(select(ConsoleSession.last_seen_at))).one() == before

        response = await browser.post("/console/session/keepalive",
                                      headers={"Accept": "application/json"})
        assert response.status == 204
        async with sanad.store.session() as db:
            assert (await db.scalars(select(ConsoleSession.last_seen_at))).one() > before
        assert (await browser.post("/console/session/keepalive", csrf="wrong")).status == 403

        await browser.post("/console/logout")
        await hub(running).bus.publish(live.Change(None))
        # On PostgreSQL the earlier notifications arrive on their own schedule and may still
        # render a queue (its waiting times move with the clock); the end must be "expired".
        while (event := await stream.event())[0] == "queue":
            pass
        assert event == ("expired", {})
        stream.close()
    finally:
        await running.close()
        await running.server.close()


async def test_notify_reaches_another_process(database_url: str, embedded_nlu: Any,
                                              safety_detector: Any) -> None:
    """Two ``sanad serve`` processes on one PostgreSQL database: a claim on one reaches a
    queue open on the other through LISTEN/NOTIFY (no watcher runs)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("one process on SQLite: the in-process bus is the whole story")
    one = await build(make_settings(database_url), nlu=embedded_nlu, safety=safety_detector)
    two = await build(make_settings(database_url), nlu=embedded_nlu, safety=safety_detector)
    first, second = await start(one), await start(two, accounts=False)
    try:
        assert isinstance(hub(second).bus, live.PostgresBus)
        case_id = await make_case(one)
        watcher = await second.browser("cw1")
        stream = await open_stream(watcher, "/console/queue/events")
        assert (await stream.event())[1]["count"] == 1
        claimer = await first.browser("cw2")
        await claimer.get(f"/console/cases/{case_id}")
        assert (await claimer.post(f"/console/cases/{case_id}/claim")).status == 303
        name, data = await stream.event()
        assert name == "queue" and data["count"] == 0
        stream.close()
    finally:
        for running in (first, second):
            await running.close()
            await running.server.close()
        await one.store.engine.dispose()
        await two.store.engine.dispose()
