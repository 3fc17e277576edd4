"""Staff logins under attack: parallel guesses, hashing that could stall the bot, proxies,
and passwords that are long but guessable."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from argon2 import PasswordHasher
from sqlalchemy import select

from bot.app import Sanad
from bot.config import ConfigError, Settings
from bot.messages import Inbound
from bot.store.repository import utcnow
from handoff import auth
from handoff.auth import AccountError, AuthPolicy, Passwords, check_new_password, digest
from handoff.clients import TrustedProxies
from handoff.models import LoginThrottle
from tests.handoff.conftest import PASSWORD, Console

POLICY = AuthPolicy()


async def failures_of(app: Sanad, key: str) -> tuple[int, object]:
    async with app.store.session() as db:
        row = await db.get(LoginThrottle, key)
        assert row is not None
        return row.failures, row.locked_until


async def test_thirty_parallel_wrong_passwords_lock_the_name_for_the_right_one(
    sanad: Sanad,
) -> None:
    """Production hashing, one transaction per attempt, all at once: no failure is lost."""
    passwords = Passwords(max_waiting=64)
    async with sanad.store.session() as db:
        await auth.create_account(db, passwords, name="mona", role="caseworker",
                                  password=PASSWORD)

    async def attempt(n: int, password: str) -> auth.LoginResult:
        return await auth.login(sanad.store.session, passwords, POLICY, name="mona",
                                password=password, client=f"10.0.0.{n}")

    results = await asyncio.gather(*(attempt(n, f"wrong guess number {n}") for n in range(30)))
    assert not any(r.account for r in results)
    failures, locked_until = await failures_of(sanad, digest("name:mona"))
    refused_unchecked = sum(r.locked for r in results)  # arrived after the lock: not counted
    assert failures + refused_unchecked == 30, "every checked guess was counted"
    assert failures >= POLICY.max_name_failures and locked_until is not None
    right = await attempt(99, PASSWORD)
    assert right.account is None and right.locked


async def test_a_name_lock_grows_with_each_failure_up_to_the_cap(sanad_sqlite: Sanad) -> None:
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    now = utcnow()
    locks: list[int | None] = []
    for n in range(1, 10):  # each guess comes just after the previous lock ran out
        result = await auth.login(sanad_sqlite.store.session, passwords, POLICY, name="sara",
                                  password="nope nope nope", client=f"10.1.0.{n}", now=now)
        assert not result.locked
        _, locked_until = await failures_of(sanad_sqlite, digest("name:sara"))
        if locked_until is None:
            locks.append(None)
            now += timedelta(seconds=1)
            continue
        until = auth.as_utc(locked_until)
        locks.append(round((until - now).total_seconds() / 60))
        now = until + timedelta(seconds=1)
    assert locks == [None, None, None, None, 1, 2, 4, 8, 15]
    # quiet for the whole lockout: a fresh count
    await auth.login(sanad_sqlite.store.session, passwords, POLICY, name="sara",
                     password="nope nope nope", client="10.1.1.1",
                     now=now + POLICY.lockout + timedelta(minutes=1))
    assert (await failures_of(sanad_sqlite, digest("name:sara")))[0] == 1


async def test_password_hashing_never_runs_on_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    class Recording(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            seen.append(threading.get_ident())
            return super().verify(hash, password)

    passwords = Passwords(Recording(time_cost=1, memory_cost=8, parallelism=1))
    hashed = await passwords.hash(PASSWORD)
    assert await passwords.verify(hashed, PASSWORD)
    assert not await passwords.verify(hashed, "something else entirely")
    assert seen and loop_thread not in seen


async def test_beyond_the_waiting_limit_a_login_is_refused_at_once(sanad_sqlite: Sanad) -> None:
    release = threading.Event()

    class Stuck(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            release.wait(10)
            return False

    passwords = Passwords(Stuck(time_cost=1, memory_cost=8, parallelism=1), max_waiting=2)

    async def attempt(n: int) -> auth.LoginResult:
        return await auth.login(sanad_sqlite.store.session, passwords, POLICY,
                                name=f"user{n}", password="irrelevant here", client="10.2.0.1")

    waiting = [asyncio.create_task(attempt(n)) for n in range(2)]
    while passwords.waiting < 2:  # both are now queued on the pool
        await asyncio.sleep(0.01)
    refused = await attempt(3)
    assert refused.busy and refused.account is None
    # Logins waiting for argon2 hold no database connection: the bot still answers (SQLite
    # has one connection; the timeout only turns a deadlock into a failure).
    ref = sanad_sqlite.store.user_ref("terminal", "someone")
    turn = await asyncio.wait_for(sanad_sqlite.engine.handle_turn(Inbound(user=ref, text="hi")),
                                  timeout=30)
    assert turn.outbound
    release.set()
    assert [r.busy for r in await asyncio.gather(*waiting)] == [False, False]
    async with sanad_sqlite.store.session() as db:
        assert await db.get(LoginThrottle, digest("name:user3")) is None, "busy is no failure"


@pytest.mark.parametrize("password", [
    "aaaaaaaaaaaa", "Password1234", "qwertyuiop12", "123456789012", "ilovemymother",
    "mona.mona.mona", "sanadsanad12",
])
def test_long_but_guessable_passwords_are_refused(password: str) -> None:
    with pytest.raises(AccountError, match="too easy to guess"):
        check_new_password(password, name="mona")


@pytest.mark.parametrize("password", [PASSWORD, "tram-Velvet-orbit-91", "قطة تحت الشجرة الخضراء"])
def test_phrases_are_accepted(password: str) -> None:
    check_new_password(password, name="mona")


# --- client addresses behind a proxy --------------------------------------------------------
def request_from(peer: str, forwarded: str | None) -> web.Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("POST", "/console/login", headers=headers)
    request._transport_peername = (peer, 1234)  # type: ignore[attr-defined]
    return request


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a proxy: the header is a lie
    ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.2", "1.2.3.4, 198.51.100.1", "198.51.100.1"),  # left part is client-chosen
    ("10.0.0.2", "198.51.100.1, 10.0.0.3", "198.51.100.1"),  # two proxies in a row
    ("10.0.0.2", "10.0.0.7", "10.0.0.7"),
    ("10.0.0.2", "not-an-ip, 198.51.100.1", "198.51.100.1"),
    ("10.0.0.2", "198.51.100.1, not-an-ip", "10.0.0.2"),
    ("10.0.0.2", None, "10.0.0.2"),
])
def test_the_client_is_read_through_trusted_proxies_only(
    peer: str, forwarded: str | None, client: str,
) -> None:
    proxies = TrustedProxies.parse(["10.0.0.0/8"])
    assert proxies.client_of(request_from(peer, forwarded)) == client


def test_untrusted_setups_ignore_the_header() -> None:
    assert TrustedProxies().client_of(request_from("10.0.0.2", "198.51.100.1")) == "10.0.0.2"


def test_trusted_proxies_are_validated_at_start_up() -> None:
    assert Settings.from_env({"SANAD_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}).trusted_proxies == (
        "10.0.0.0/8", "::1")
    with pytest.raises(ConfigError, match="SANAD_TRUSTED_PROXIES"):
        Settings.from_env({"SANAD_TRUSTED_PROXIES": "proxy.local"})


async def test_anonymous_failures_behind_the_proxy_do_not_lock_out_staff(
    console: Console,
) -> None:
    """Twenty failures from one address lock that address, not everyone behind the proxy."""
    from handoff.context import HANDOFF

    app = console.server.app
    app[HANDOFF] = type(app[HANDOFF])(**{**app[HANDOFF].__dict__,
                                         "proxies": TrustedProxies.parse(["127.0.0.1"])})
    attacker = await console.browser(headers={"X-Forwarded-For": "198.51.100.66"})
    for n in range(21):
        await attacker.login(f"guess{n}", "wrong password!!")
    assert (await attacker.login("cw1", PASSWORD)).status == 429, "the attacker is locked"
    staff = await console.browser(headers={"X-Forwarded-For": "198.51.100.10"})
    ok = await staff.login("cw1", PASSWORD)
    assert ok.status == 303
    async with console.sanad.store.session() as db:
        keys = set(await db.scalars(select(LoginThrottle.key)))
    assert digest("client:198.51.100.66") in keys and digest("client:127.0.0.1") not in keys


def test_the_lock_never_exceeds_the_policy() -> None:
    assert POLICY.first_lock * 2 ** 10 > POLICY.lockout  # so the cap is what applies
    assert POLICY.lockout == timedelta(minutes=15)


async def test_a_failed_login_never_writes_the_typed_name_to_the_audit_log(
    console: Console,
) -> None:
    """A password pasted into the name field must not end up in the audit trail."""
    from handoff.models import AuditEntry

    browser = await console.browser()
    assert (await browser.login("Sup3r-Secret-Passw0rd", "whatever it is")).status == 401
    assert (await browser.login("Sup3r-Secret-Passw0rd", "again")).status == 401
    async with console.sanad.store.session() as db:
        actors = [a for (a,) in await db.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "login.failed"))]
    assert len(actors) == 2 and actors[0] == actors[1], "the same name, the same keyed mark"
    assert all("Secret" not in a and a.startswith("name#") for a in actors)
