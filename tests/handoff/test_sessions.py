"""Logging in and out: lockout, a new session id at every login, idle expiry, cookie flags."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.store.repository import utcnow
from handoff.auth import digest
from handoff.guard import LOGIN_COOKIE, SESSION_COOKIE
from handoff.models import ConsoleSession, LoginThrottle
from tests.handoff.conftest import PASSWORD, Console


async def sessions(console: Console) -> int:
    async with console.sanad.store.session() as db:
        return int(await db.scalar(select(func.count()).select_from(ConsoleSession)) or 0)


async def test_five_failures_lock_the_account_even_with_the_right_password(
    console: Console,
) -> None:
    browser = await console.browser()
    for _ in range(5):
        response = await browser.login("cw1", "wrong password!!")
        assert response.status == 401
        assert "اسم المستخدم أو كلمة المرور غير صحيحة" in await response.text()
    locked = await browser.login("cw1", PASSWORD)
    assert locked.status == 429
    assert browser.cookie(SESSION_COOKIE) is None
    assert await sessions(console) == 0

    other = await console.browser()
    assert (await other.login("cw2")).status == 303, "other accounts are not locked"

    async with console.sanad.store.session() as db:  # 15 minutes later
        await db.execute(update(LoginThrottle).values(
            locked_until=utcnow() - timedelta(seconds=1),
            window_start=utcnow() - timedelta(minutes=16)))
    assert (await browser.login("cw1", PASSWORD)).status == 303


async def test_unknown_names_lock_too_and_say_the_same(console: Console) -> None:
    browser = await console.browser()
    known = await (await console.browser()).login("cw2", "wrong password!!")
    known_error = (await known.text()).split('role="alert">')[1].split("<")[0]
    for _ in range(5):
        response = await browser.login("nobody", "whatever-password")
        assert response.status == known.status == 401
        assert known_error in await response.text()
    assert (await browser.login("nobody", "whatever-password")).status == 429
    async with console.sanad.store.session() as db:
        keys = set(await db.scalars(select(LoginThrottle.key)))
    assert digest("name:nobody") in keys, "throttle keys are hashed, never the raw name"
    assert "nobody" not in "".join(keys)


async def test_login_needs_its_csrf_token(console: Console) -> None:
    browser = await console.browser()
    await browser.get("/console/login")
    response = await browser.post("/console/login", {"name": "cw1", "password": PASSWORD},
                                  csrf="forged")
    assert response.status == 403
    assert browser.cookie(SESSION_COOKIE) is None


async def test_a_new_session_id_at_every_login(console: Console) -> None:
    browser = await console.browser()
    # A fixation attempt: a session id chosen before login must not survive it.
    browser.session.cookie_jar.update_cookies({SESSION_COOKIE: "attacker-chosen"},
                                              browser.url("/"))
    await browser.login("cw1")
    first = browser.cookie(SESSION_COOKIE)
    assert first and first != "attacker-chosen"
    assert browser.cookie(LOGIN_COOKIE) in (None, "")

    await browser.get("/console/login")  # logged in: redirected, no new form token
    stale = await console.browser()
    await stale.get("/console/login")
    browser.csrf = stale.csrf
    browser.session.cookie_jar.update_cookies({LOGIN_COOKIE: stale.cookie(LOGIN_COOKIE) or ""},
                                              browser.url("/"))
    response = await browser.post("/console/login", {"name": "cw1", "password": PASSWORD})
    assert response.status == 303
    second = browser.cookie(SESSION_COOKIE)
    assert second and second != first

    replay = await console.browser()
    replay.session.cookie_jar.update_cookies({SESSION_COOKIE: first}, replay.url("/"))
    assert (await replay.get("/console/queue")).status == 302, "the old id no longer works"
    assert await sessions(console) == 1


async def test_idle_sessions_expire_and_polling_does_not_keep_them_alive(
    console: Console,
) -> None:
    browser = await console.browser(login_as="cw1")
    async with console.sanad.store.session() as db:
        await db.execute(update(ConsoleSession).values(
            last_seen_at=utcnow() - timedelta(minutes=20)))
    assert (await browser.get("/console/queue/poll")).status == 200
    async with console.sanad.store.session() as db:
        seen = await db.scalar(select(ConsoleSession.last_seen_at))
    assert seen is not None and seen.replace(tzinfo=None) < (
        utcnow() - timedelta(minutes=19)).replace(tzinfo=None), "a poll is not activity"

    async with console.sanad.store.session() as db:
        await db.execute(update(ConsoleSession).values(
            last_seen_at=utcnow() - timedelta(minutes=31)))
    poll = await browser.get("/console/queue/poll")
    assert poll.status == 401
    page = await browser.get("/console/queue")
    assert page.status == 302
    assert page.headers["Location"].replace("%2F", "/") == (
        "/console/login?notice=expired&next=/console/queue"), "back to the queue after"
    assert await sessions(console) == 0


async def test_activity_keeps_a_session_alive(console: Console) -> None:
    browser = await console.browser(login_as="cw1")
    async with console.sanad.store.session() as db:
        await db.execute(update(ConsoleSession).values(
            last_seen_at=utcnow() - timedelta(minutes=29)))
    assert (await browser.get("/console/queue")).status == 200
    async with console.sanad.store.session() as db:
        seen = await db.scalar(select(ConsoleSession.last_seen_at))
    assert seen is not None and seen.replace(tzinfo=None) > (
        utcnow() - timedelta(minutes=1)).replace(tzinfo=None)


async def test_logout_ends_the_session(console: Console) -> None:
    browser = await console.browser(login_as="sup")
    cookie = browser.cookie(SESSION_COOKIE)
    response = await browser.post("/console/logout")
    assert response.status == 303
    assert response.headers["Location"] == "/console/login?notice=logged_out"
    assert await sessions(console) == 0
    replay = await console.browser()
    replay.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie or ""}, replay.url("/"))
    assert (await replay.get("/console/queue")).status == 302


async def test_cookie_flags(console: Console) -> None:
    browser = await console.browser()
    form = await browser.get("/console/login")
    assert "HttpOnly" in form.headers["Set-Cookie"]
    assert "SameSite=Strict" in form.headers["Set-Cookie"]
    assert "Secure" not in form.headers["Set-Cookie"], "plain http in this test"
    response = await browser.post("/console/login", {"name": "cw1", "password": PASSWORD},
                                  headers={"X-Forwarded-Proto": "https"})
    session_cookie = next(v for v in response.headers.getall("Set-Cookie")
                          if v.startswith(SESSION_COOKIE + "="))
    for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"):
        assert flag in session_cookie
    assert "Max-Age" not in session_cookie and "expires" not in session_cookie.lower()
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    assert "Strict-Transport-Security" not in form.headers, "never over plain http"


async def test_language_toggle_is_remembered(console: Console) -> None:
    browser = await console.browser(login_as="cw1")
    arabic = await browser.get("/console/queue")
    assert '<html lang="ar" dir="rtl">' in await arabic.text()
    await browser.get("/console/queue?lang=en")
    english = await browser.get("/console/queue")
    body = await english.text()
    assert '<html lang="en" dir="ltr">' in body and "Case queue" in body
