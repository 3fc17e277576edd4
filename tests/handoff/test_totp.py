"""The second factor: case roles must pass TOTP (always in production), a code works once,
recovery codes work once, wrong codes lock, and a half-logged-in session reaches nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select

from bot.app import Sanad
from bot.store.db import open_database
from bot.store.repository import Store
from handoff import auth, totp
from handoff.auth import AuthPolicy
from handoff.guard import CSP, SESSION_COOKIE
from handoff.models import Caseworker, ConsoleSession, RecoveryCode
from tests.conftest import make_settings
from tests.handoff.conftest import FAST_PASSWORDS, PASSWORD, Browser, Console, start_console

SECRET_RE = re.compile(r'<code class="secret">([A-Z2-7]{32})</code>')
CODE_RE = re.compile(r"<li><code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code></li>")


@dataclass
class Clock:
    """The time TOTP codes are checked against; moves only when told to."""

    now: datetime = datetime(2026, 12, 7, 18, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def step(self, steps: int = 1) -> None:
        self.now += timedelta(seconds=30 * steps)

    def code(self, secret: str) -> str:
        return pyotp.TOTP(secret).at(self.now)


async def totp_console(sanad: Sanad, clock: Clock, **policy: object) -> AsyncIterator[Console]:
    running = await start_console(sanad, AuthPolicy(clock=clock, **policy))  # type: ignore[arg-type]
    yield running
    await running.close()
    await running.server.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def console(sanad_sqlite: Sanad, clock: Clock) -> AsyncIterator[Console]:
    async for running in totp_console(sanad_sqlite, clock, require_totp=True):
        yield running


async def enrol(browser: Browser, name: str, clock: Clock) -> tuple[str, list[str]]:
    """Log in for the first time, scan the secret, confirm with a first code: full session."""
    response = await browser.login(name)
    assert response.status == 303
    assert response.headers["Location"] == "/console/totp/enrol"
    page = await (await browser.get("/console/totp/enrol")).text()
    secret = SECRET_RE.search(page)
    assert secret is not None
    confirmed = await browser.post("/console/totp/enrol", {"code": clock.code(secret.group(1))})
    assert confirmed.status == 200
    codes = CODE_RE.findall(await confirmed.text())
    assert len(codes) == totp.RECOVERY_CODES
    return secret.group(1), codes


async def second_step(browser: Browser, name: str, code: str) -> int:
    assert (await browser.login(name)).headers["Location"] == "/console/login/totp"
    await browser.get("/console/login/totp")
    return (await browser.post("/console/login/totp", {"code": code})).status


async def test_a_case_role_must_enrol_and_a_pending_session_reaches_nothing(
    console: Console, clock: Clock,
) -> None:
    browser = await console.browser()
    response = await browser.login("cw1")
    assert response.status == 303 and response.headers["Location"] == "/console/totp/enrol"
    for path, refused in (("/console/queue", 302), ("/api/cases", 401),
                          ("/console/account", 302), ("/console/queue/poll", 401)):
        assert (await browser.get(path)).status == refused, path
    enrol_page = await browser.get("/console/totp/enrol")
    html = await enrol_page.text()
    assert "<svg" in html and "otpauth://totp/Sanad:cw1?secret=" in html
    assert "<script>" not in html and enrol_page.headers["Content-Security-Policy"] == CSP
    wrong = await browser.post("/console/totp/enrol", {"code": "000000"})
    assert wrong.status == 401
    assert (await browser.get("/console/queue")).status == 302
    secret = SECRET_RE.search(html)
    assert secret is not None
    assert (await browser.post("/console/totp/enrol",
                               {"code": clock.code(secret.group(1))})).status == 200
    assert (await browser.get("/console/queue")).status == 200
    assert (await browser.get("/api/cases")).status == 200


async def test_every_later_login_asks_for_a_code_and_a_code_works_once(
    console: Console, clock: Clock,
) -> None:
    first = await console.browser()
    secret, _ = await enrol(first, "cw1", clock)
    clock.step()
    code = clock.code(secret)
    second = await console.browser()
    assert await second_step(second, "cw1", code) == 303
    assert (await second.get("/console/queue")).status == 200
    replay = await console.browser()
    assert await second_step(replay, "cw1", code) == 401, "the same code again is refused"
    assert (await replay.get("/console/queue")).status == 302
    clock.step()
    assert (await replay.post("/console/login/totp", {"code": clock.code(secret)})).status == 303
    assert (await replay.get("/console/queue")).status == 200


async def test_a_code_from_the_step_before_is_accepted_but_not_an_older_one(
    console: Console, clock: Clock,
) -> None:
    secret, _ = await enrol(await console.browser(), "cw1", clock)
    clock.step(5)
    old = pyotp.TOTP(secret).at(clock.now - timedelta(seconds=90))
    late = pyotp.TOTP(secret).at(clock.now - timedelta(seconds=30))
    browser = await console.browser()
    assert await second_step(browser, "cw1", old) == 401
    assert (await browser.post("/console/login/totp", {"code": late})).status == 303


async def test_a_recovery_code_works_once(console: Console, clock: Clock) -> None:
    _, codes = await enrol(await console.browser(), "sup", clock)
    browser = await console.browser()
    assert await second_step(browser, "sup", codes[3].upper().replace("-", " ")) == 303
    assert (await browser.get("/console/reports")).status == 200
    again = await console.browser()
    assert await second_step(again, "sup", codes[3]) == 401
    async with console.sanad.store.session() as db:
        used = list(await db.scalars(select(RecoveryCode.used_at)))
    assert sum(u is not None for u in used) == 1 and len(used) == totp.RECOVERY_CODES


async def test_five_wrong_codes_lock_the_name_even_for_the_right_password(
    console: Console, clock: Clock,
) -> None:
    secret, _ = await enrol(await console.browser(), "cw1", clock)
    clock.step()
    attacker = await console.browser()
    statuses = []
    for n in range(5):
        if n == 0:
            statuses.append(await second_step(attacker, "cw1", "123456"))
        else:
            statuses.append((await attacker.post("/console/login/totp",
                                                 {"code": f"{n:06d}"})).status)
    assert statuses[:4] == [401] * 4 and statuses[4] == 303  # the 5th: out, locked
    assert (await attacker.get("/console/login/totp")).status == 302
    owner = await console.browser()
    assert (await owner.login("cw1")).status == 429, "the name is locked, password or not"
    assert clock.code(secret)  # the owner's code exists but cannot be tried while locked


async def test_roles_without_case_data_need_no_code(console: Console) -> None:
    for name, home in (("out", "/console/home"), ("adm", "/console/accounts")):
        browser = await console.browser()
        response = await browser.login(name)
        assert response.status == 303 and response.headers["Location"] == home


async def test_the_secret_is_sealed_and_recovery_codes_hashed(
    console: Console, clock: Clock,
) -> None:
    secret, codes = await enrol(await console.browser(), "cw1", clock)
    async with console.sanad.store.session() as db:
        account = await db.scalar(select(Caseworker).where(Caseworker.name == "cw1"))
        stored = list(await db.scalars(select(RecoveryCode.code_hash)))
    assert account is not None and account.totp_secret_enc is not None
    assert secret.encode() not in account.totp_secret_enc
    assert totp.secret_of(console.sanad.store.cipher, account) == secret
    dump = " ".join(stored)
    assert not any(code.replace("-", "") in dump or code in dump for code in codes)


async def test_a_pending_session_expires_after_five_minutes(console: Console) -> None:
    browser = await console.browser()
    await browser.login("cw1")
    async with console.sanad.store.session() as db:
        row = await db.scalar(select(ConsoleSession))
        assert row is not None and row.second_factor_at is None
        row.created_at = row.created_at - timedelta(minutes=6)
    assert (await browser.get("/console/totp/enrol")).status == 302
    assert browser.cookie(SESSION_COOKIE) is not None
    async with console.sanad.store.session() as db:
        assert await db.scalar(select(ConsoleSession)) is None


async def test_production_requires_totp_even_when_the_policy_turns_it_off(
    sanad: Sanad, clock: Clock,
) -> None:
    """SQLite and PostgreSQL: SANAD_ENV=production, a policy that says no TOTP: still TOTP."""
    production = dataclasses.replace(
        sanad, settings=dataclasses.replace(sanad.settings, environment="production"))
    async for running in totp_console(production, clock, require_totp=False):
        cw1 = await running.browser()
        response = await cw1.login("cw1")
        assert response.headers["Location"] == "/console/totp/enrol"
        assert (await cw1.get("/console/queue")).status == 302
        assert (await cw1.get("/api/cases")).status == 401
        secret, _ = await enrol(await running.browser(), "sup", clock)
        sup = await running.browser()
        clock.step()
        assert await second_step(sup, "sup", clock.code(secret)) == 303
        assert (await sup.get("/console/queue")).status == 200
    assert auth.enforced(AuthPolicy(require_totp=False), "production").require_totp is True
    assert auth.enforced(AuthPolicy(), "development").require_totp is False
    assert auth.enforced(AuthPolicy(require_totp=True), "development").require_totp is True


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with open_database(database_url) as engine:
        yield Store.from_settings(make_settings(database_url), engine)


async def test_two_requests_racing_with_one_code_cannot_both_win(store: Store) -> None:
    """SQLite and PostgreSQL: the step is claimed by one conditional UPDATE."""
    now = datetime(2026, 12, 7, 18, 0, 0, tzinfo=UTC)
    async with store.session() as db:
        account = await auth.create_account(db, FAST_PASSWORDS, name="mona",
                                            role="caseworker", password=PASSWORD)
        secret = totp.offer_secret(store.cipher, account)
        assert await totp.confirm(db, store.cipher, account, pyotp.TOTP(secret).at(now), now)
    later = now + timedelta(seconds=30)
    code = pyotp.TOTP(secret).at(later)

    async def attempt() -> bool:
        async with store.session() as db:
            found = await db.scalar(select(Caseworker).where(Caseworker.name == "mona"))
            assert found is not None
            return await totp.use_code(db, store.cipher, found, code, later)

    results = await asyncio.gather(*(attempt() for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_an_admin_may_turn_it_on_and_then_every_login_asks_for_it(
    console: Console, clock: Clock,
) -> None:
    admin = await console.browser(login_as="adm")
    page = await (await admin.get("/console/account/totp")).text()
    secret = SECRET_RE.search(page)
    assert secret is not None
    done = await admin.post("/console/account/totp", {"code": clock.code(secret.group(1))})
    assert done.status == 200 and len(CODE_RE.findall(await done.text())) == 10
    clock.step()
    again = await console.browser()
    assert await second_step(again, "adm", "999999") == 401
    assert (await again.get("/console/accounts")).status == 302
    assert (await again.post("/console/login/totp",
                             {"code": clock.code(secret.group(1))})).status == 303
    assert (await again.get("/console/accounts")).status == 200
