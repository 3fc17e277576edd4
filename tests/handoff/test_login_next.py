"""Login returns to the page that was asked for (issue #20): only a same-origin relative path
under ``/console/``; every open-redirect attempt lands on the role's home page instead."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from bot.app import Sanad
from handoff.next_page import safe_next
from tests.handoff.conftest import PASSWORD, Browser, Console, make_case, start_console
from tests.handoff.test_totp import SECRET_RE, Clock, enrol, totp_console

ATTEMPTS = (
    "https://evil.example/console/queue",
    "//evil.example/console/queue",
    "///evil.example/console/queue",
    "/\\evil.example/console/queue",
    "\\\\evil.example",
    "/console/\\\\evil.example",
    "/console//evil.example",
    "javascript:alert(1)",
    "http:/console/queue",
    "/console/../admin",
    "/console/%2e%2e/%2e%2e/admin",
    "/console/%2F%2Fevil.example",
    "/console/queue/./../../x",
    "/consolex/queue",
    "/api/cases",
    " /console/queue",
    "/console/queue\r\nSet-Cookie: x=1",
    "/console/queue\t",
    "/console/login?next=/console/queue",
    "/console/logout",
    "/console/queue#fragment",
    "/console/" + "a" * 600,
    "",
)


@pytest.fixture
async def console(sanad_sqlite: Sanad) -> AsyncIterator[Console]:
    running = await start_console(sanad_sqlite)
    yield running
    await running.close()
    await running.server.close()


async def sign_in_with(browser: Browser, name: str, next_page: str) -> str:
    """The login form as asked with ``?next=``, sent: where the answer points."""
    form = await browser.get("/console/login?next=" + quote(next_page, safe=""))
    assert form.status == 200
    response = await browser.post("/console/login", {"name": name, "password": PASSWORD,
                                                     "next": next_page})
    assert response.status == 303
    return response.headers["Location"]


def asked_next(location: str) -> str:
    """The ``next`` a login-page address carries, decoded."""
    parts = urlsplit(location)
    assert parts.path == "/console/login" and not parts.netloc
    return parse_qs(parts.query)["next"][0]


def test_only_console_paths_pass() -> None:
    for good in ("/console/queue", "/console/cases/12", "/console/queue?view=mine&q=S-7",
                 "/console/cases/3?lang=en", "/console/"):
        assert safe_next(good) == good
    for bad in ATTEMPTS:
        assert safe_next(bad) is None, bad
    assert safe_next(None) is None


async def test_an_anonymous_visit_comes_back_after_login(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw1")
    browser = await console.browser()
    asked = f"/console/cases/{case_id}?lang=en"
    sent_away = await browser.get(asked)
    assert sent_away.status == 302
    assert asked_next(sent_away.headers["Location"]) == asked
    form = await (await browser.get(sent_away.headers["Location"])).text()
    assert f'name="next" value="/console/cases/{case_id}?lang=en"' in form
    response = await browser.post("/console/login", {"name": "cw1", "password": PASSWORD,
                                                     "next": asked})
    assert response.headers["Location"] == asked
    page = await browser.get(asked)
    assert page.status == 200 and 'lang="en"' in await page.text(), "in the language asked"
    again = await browser.get("/console/login?next=" + quote("/console/account", safe=""))
    assert again.headers["Location"] == "/console/account", "already signed in: straight there"


async def test_open_redirect_attempts_land_on_the_home_page(console: Console) -> None:
    for attempt in ATTEMPTS:
        browser = await console.browser()
        assert await sign_in_with(browser, "cw1", attempt) == "/console/queue", attempt
    admin = await console.browser()
    assert await sign_in_with(admin, "adm", "//evil.example") == "/console/accounts"


async def test_a_failed_login_keeps_the_page_and_a_post_is_not_remembered(
    console: Console,
) -> None:
    browser = await console.browser()
    await browser.get("/console/login?next=%2Fconsole%2Faccount")
    wrong = await browser.post("/console/login", {"name": "cw1", "password": "nope",
                                                  "next": "/console/account"})
    assert wrong.status == 401
    assert 'name="next" value="/console/account"' in await wrong.text()
    posted = await browser.post("/console/cases/1/close", {"outcome": "other"})
    assert posted.headers["Location"] == "/console/login", "only a GET is a page to return to"


async def test_the_page_survives_the_second_factor(sanad_sqlite: Sanad) -> None:
    clock = Clock()
    async for console in totp_console(sanad_sqlite, clock, require_totp=True):
        secret, _codes = await enrol(await console.browser(), "sup", clock)
        clock.step()
        browser = await console.browser()
        step = await sign_in_with(browser, "sup", "/console/reports")
        assert step == "/console/login/totp?next=%2Fconsole%2Freports"
        form = await (await browser.get(step)).text()
        assert 'name="next" value="/console/reports"' in form
        done = await browser.post("/console/login/totp", {"code": clock.code(secret),
                                                          "next": "/console/reports"})
        assert done.headers["Location"] == "/console/reports"

        clock.step()
        tricked = await console.browser()
        assert await sign_in_with(tricked, "sup", "//evil.example") == "/console/login/totp"
        await tricked.get("/console/login/totp")
        answer = await tricked.post("/console/login/totp", {"code": clock.code(secret),
                                                            "next": "//evil.example"})
        assert answer.headers["Location"] == "/console/queue"


async def test_the_page_survives_first_time_enrolment(sanad_sqlite: Sanad) -> None:
    clock = Clock()
    async for console in totp_console(sanad_sqlite, clock, require_totp=True):
        browser = await console.browser()
        step = await sign_in_with(browser, "cw1", "/console/account")
        assert step == "/console/totp/enrol?next=%2Fconsole%2Faccount"
        page = await (await browser.get(step)).text()
        assert 'name="next" value="/console/account"' in page
        secret = SECRET_RE.search(page)
        assert secret is not None
        wrong = await browser.post("/console/totp/enrol", {"code": "000000",
                                                           "next": "/console/account"})
        assert wrong.status == 401
        assert 'name="next" value="/console/account"' in await wrong.text(), "kept on retry"
        done = await browser.post("/console/totp/enrol", {"code": clock.code(secret.group(1)),
                                                          "next": "/console/account"})
        assert done.status == 200
        assert 'href="/console/account"' in await done.text(), "the codes page continues there"
        assert (await browser.get("/console/account")).status == 200

        tricked = await console.browser()
        assert await sign_in_with(tricked, "cw2", "//evil.example") == "/console/totp/enrol"
        page = await (await tricked.get("/console/totp/enrol")).text()
        secret = SECRET_RE.search(page)
        assert secret is not None
        answer = await tricked.post("/console/totp/enrol", {"code": clock.code(secret.group(1)),
                                                            "next": "//evil.example"})
        assert 'href="/console/queue"' in await answer.text()
