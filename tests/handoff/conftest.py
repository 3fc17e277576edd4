"""Fixtures for the back office: the real web app (console + API) on a real database, accounts
in every role, cases inserted directly, and a small cookie-keeping client per person."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from yarl import URL

from bot.app import Sanad
from bot.store.models import Case, CaseMessage, User
from bot.store.repository import utcnow
from bot.web.app import create_app
from handoff import auth
from handoff.auth import AuthPolicy, Passwords
from handoff.queue import new_alias, seal_indicators
from handoff.web import setup

PASSWORD = "correct horse battery staple"
ACCOUNTS = {"cw1": "caseworker", "cw2": "caseworker", "sup": "supervisor", "out": "outreach",
            "adm": "admin"}
FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


async def add_accounts(sanad: Sanad) -> dict[str, str]:
    """Every role's account, and a bearer token for each."""
    tokens = {}
    async with sanad.store.session() as db:
        for name, role in ACCOUNTS.items():
            await auth.create_account(db, FAST_PASSWORDS, name=name, role=role, password=PASSWORD)
            tokens[name] = await auth.issue_token(db, name)
    return tokens


async def make_case(sanad: Sanad, *, priority: str = "normal", status: str = "waiting",
                    assignee: str | None = None, user: str | None = None,
                    minutes_ago: int = 0, reason: str = "user_request",
                    channel: str = "terminal", last_inbound_at: datetime | None = None) -> int:
    """A case (and its pseudonymous user) straight in the database, without a conversation."""
    from datetime import timedelta

    from handoff.queue import PRIORITY_RANK

    async with sanad.store.session() as db:
        now = utcnow()
        key = sanad.store.pseudonyms.user_key(channel, user or f"u-{now.timestamp()}")
        person = User(key=key, channel=channel, language="ar", language_locked=False,
                      unreachable=False, created_at=now, last_active_at=now,
                      last_inbound_at=last_inbound_at)
        db.add(person)
        await db.flush()
        case = Case(
            user_id=person.id, alias=new_alias(), status=status,
            priority=priority, priority_rank=PRIORITY_RANK[priority], reason=reason,
            risk_level="high", language="ar",
            indicators_enc=seal_indicators(sanad.store.cipher, ["documents_retained"]),
            channel=channel, assignee=assignee, created_at=now - timedelta(minutes=minutes_ago),
            claimed_at=now if assignee else None,
        )
        db.add(case)
        await db.flush()
        return case.id


async def write_message(sanad: Sanad, case_id: int, text: str, sender: str = "user") -> None:
    """A message in a case's thread now, sealed as the relay seals it (people made by
    ``make_case`` have no data key of their own: the master key)."""
    async with sanad.store.session() as db:
        db.add(CaseMessage(case_id=case_id, sender=sender,
                           author="cw1" if sender == "caseworker" else None,
                           text_enc=sanad.store.cipher.encrypt_text(
                               text, context=b"case_messages.text"),
                           created_at=utcnow()))


@dataclass
class Browser:
    """One person's HTTP client: its own cookie jar, the last CSRF token it saw."""

    server: TestServer
    session: aiohttp.ClientSession
    csrf: str = ""
    last: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> URL:
        return self.server.make_url(path)

    async def request(self, method: str, path: str, **kw: Any) -> aiohttp.ClientResponse:
        kw.setdefault("allow_redirects", False)
        response = await self.session.request(method, self.url(path), **kw)
        await response.read()
        return response

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        response = await self.request("GET", path, **kw)
        if response.content_type == "text/html":
            found = CSRF_RE.search(await response.text())
            if found:
                self.csrf = found.group(1)
        return response

    async def post(self, path: str, data: dict[str, str] | None = None, *,
                   csrf: str | None = None, **kw: Any) -> aiohttp.ClientResponse:
        form = dict(data or {})
        token = self.csrf if csrf is None else csrf
        if token:
            form["csrf"] = token
        return await self.request("POST", path, data=form, **kw)

    async def login(self, name: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        await self.get("/console/login")
        response = await self.post("/console/login", {"name": name, "password": password})
        if response.status == 303:
            await self.get(response.headers["Location"])
        return response

    def cookie(self, name: str) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


@dataclass
class Console:
    sanad: Sanad
    server: TestServer
    tokens: dict[str, str]
    _sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    async def browser(self, login_as: str | None = None,
                      headers: dict[str, str] | None = None) -> Browser:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                        headers=headers)
        self._sessions.append(session)
        browser = Browser(self.server, session)
        if login_as:
            response = await browser.login(login_as)
            assert response.status == 303, f"login as {login_as}: {response.status}"
        return browser

    async def close(self) -> None:
        for session in self._sessions:
            await session.close()


async def start_console(sanad: Sanad, policy: AuthPolicy | None = None) -> Console:
    app = create_app(sanad, channels=[], back_office=False)
    setup(app, sanad, policy=policy, passwords=FAST_PASSWORDS)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return Console(sanad, server, await add_accounts(sanad))


@pytest.fixture
async def console(sanad_sqlite: Sanad) -> AsyncIterator[Console]:
    running = await start_console(sanad_sqlite)
    yield running
    await running.close()
    await running.server.close()


@pytest.fixture
async def inbox(sanad: Sanad) -> AsyncIterator[Console]:
    """The console and API on the parametrized database (SQLite, then PostgreSQL)."""
    running = await start_console(sanad)
    yield running
    await running.close()
    await running.server.close()


# --- The console on a real port, for a real browser (Debian chromium + Playwright) ---

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)",
)
"""Mark for browser tests: they run only where Debian's chromium is (no browser download)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LiveConsole:
    """A console served on 127.0.0.1: its base URL and the running app."""

    base: str
    app: web.Application


@asynccontextmanager
async def serve_console(sanad: Sanad, *, accounts: bool = True,
                        **setup_options: Any) -> AsyncIterator[LiveConsole]:
    """The real app (console + API) on a free port, with every role's account unless
    ``accounts`` is false; ``setup_options`` go to :func:`handoff.web.setup`."""
    setup_options.setdefault("passwords", FAST_PASSWORDS)
    app = create_app(sanad, channels=[], back_office=False)
    setup(app, sanad, **setup_options)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        if accounts:
            await add_accounts(sanad)
        yield LiveConsole(f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()


@pytest.fixture
async def live_console(sanad_sqlite: Sanad) -> AsyncIterator[str]:
    """The console on a real port (SQLite, every role's account): its base URL."""
    async with serve_console(sanad_sqlite) as running:
        yield running.base


async def launch_chromium(playwright: Any) -> Any:
    """Debian's chromium, headless, as the sandboxed CI container allows."""
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])


async def sign_in(page: Any, base: str, name: str, lang: str | None = None,
                  password: str = PASSWORD) -> None:
    """Fill and send the login form (in ``lang`` when given) and wait for the next page."""
    await page.goto(f"{base}/console/login" + (f"?lang={lang}" if lang else ""))
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("button[type=submit].primary")
    await page.wait_for_load_state()
