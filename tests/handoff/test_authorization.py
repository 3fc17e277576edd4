"""Every console and API route against every kind of caller, as a table.

Callers: anonymous, ``cw1`` (a caseworker who holds the case), ``cw2`` (another caseworker),
``sup`` (supervisor), ``out`` (outreach), ``adm`` (admin). ``{held}`` is a case claimed by
cw1, ``{waiting}`` an unclaimed one, ``{missing}`` a case id that does not exist,
``{campaign}`` a new campaign (paused for a resume, scheduled otherwise). Every response
of these routes must carry the security headers.
"""

from __future__ import annotations

import secrets

import aiohttp
import pytest
from sqlalchemy import select

from bot.outreach.models import Campaign
from bot.store.repository import utcnow
from handoff.guard import SECURITY_HEADERS
from handoff.models import Caseworker
from tests.handoff.conftest import ACCOUNTS, Browser, Console, make_case

CALLERS = ("anon", "cw1", "cw2", "sup", "out", "adm")

GETS = [
    # path                               anon  cw1  cw2  sup  out  adm
    ("/console",                         302,  302, 302, 302, 302, 302),
    ("/console/login",                   200,  302, 302, 302, 302, 302),
    ("/console/home",                    302,  200, 200, 200, 200, 200),
    ("/console/queue",                   302,  200, 200, 200, 403, 403),
    ("/console/queue/poll",              401,  200, 200, 200, 403, 403),
    ("/console/cases/{held}",            302,  200, 403, 200, 403, 403),
    ("/console/cases/{held}/poll",       401,  200, 403, 200, 403, 403),
    ("/console/cases/{waiting}",         302,  200, 200, 200, 403, 403),
    ("/console/cases/{missing}",         302,  404, 404, 404, 403, 403),
    ("/console/reports",                 302,  403, 403, 200, 403, 403),
    ("/console/accounts",                302,  403, 403, 403, 403, 200),
    ("/console/dashboard",               302,  403, 403, 200, 200, 200),
    ("/console/dashboard.csv",           302,  403, 403, 200, 200, 200),
    ("/console/campaigns",               302,  403, 403, 200, 200, 200),
    ("/console/static/console.js",       200,  200, 200, 200, 200, 200),
]

POSTS = [
    # console form, fields                                    anon cw1  cw2  sup  out  adm
    ("/console/queue/claim-next", {},                         302, 303, 303, 303, 403, 403),
    ("/console/cases/{held}/claim", {},                       302, 303, 303, 303, 403, 403),
    ("/console/cases/{held}/reply", {"text": "hello"},        302, 303, 403, 303, 403, 403),
    ("/console/cases/{held}/notes", {"text": "a note"},       302, 303, 403, 303, 403, 403),
    ("/console/cases/{held}/refer", {"service": "iom_egypt"}, 302, 303, 403, 303, 403, 403),
    ("/console/cases/{held}/transfer", {"to": ""},            302, 303, 403, 303, 403, 403),
    ("/console/cases/{held}/close", {"outcome": "other"},     302, 200, 403, 200, 403, 403),
    ("/console/cases/{held}/close", {"outcome": "other", "confirm": "yes"},  # asked: closes
                                                              302, 303, 403, 303, 403, 403),
    ("/console/accounts", {"name": "new{n}", "role": "outreach"},  # shows the invite link
                                                              302, 403, 403, 403, 403, 200),
    ("/console/accounts/{account}/unlock", {},                302, 403, 403, 403, 403, 303),
    ("/console/campaigns/{campaign}/pause", {},               302, 403, 403, 303, 303, 303),
    ("/console/campaigns/{campaign}/resume", {},              302, 403, 403, 303, 303, 303),
]

API = [
    # method, path, JSON body                                   anon cw1  cw2  sup  out  adm
    ("GET", "/api/cases", None,                                 401, 200, 200, 200, 403, 403),
    ("GET", "/api/cases/{held}", None,                          401, 200, 403, 200, 403, 403),
    ("GET", "/api/cases/{missing}", None,                       401, 404, 404, 404, 403, 403),
    ("POST", "/api/cases/{held}/claim", None,                   401, 200, 409, 409, 403, 403),
    ("GET", "/api/cases/{held}/messages", None,                 401, 200, 403, 200, 403, 403),
    ("POST", "/api/cases/{held}/messages", {"text": "hello"},   401, 201, 403, 409, 403, 403),
    ("POST", "/api/cases/{held}/close", {"outcome": "other"},   401, 200, 403, 200, 403, 403),
]

async def browsers(console: Console) -> dict[str, Browser]:
    result = {"anon": await console.browser()}
    for name in ACCOUNTS:
        result[name] = await console.browser(login_as=name)
    return result


async def fill(console: Console, template: str, *, held: int | None = None,
               waiting: int = 0) -> str:
    """Put real ids in a path; without ``held``, a new case held by cw1 (one per POST)."""
    if held is None:
        held = await make_case(console.sanad, status="claimed", assignee="cw1")
    async with console.sanad.store.session() as db:
        account = await db.scalar(select(Caseworker.id).where(Caseworker.name == "cw2"))
        campaign = ""
        if "{campaign}" in template:
            campaign = f"c-{secrets.token_hex(4)}"
            db.add(Campaign(name=campaign, messages=[], segment="", created_at=utcnow(),
                            status="paused" if template.endswith("/resume") else "scheduled"))
    return template.format(held=held, waiting=waiting, missing=99999, account=account,
                           campaign=campaign)


def unique(fields: dict[str, str]) -> dict[str, str]:
    return {k: v.format(n=secrets.token_hex(3)) for k, v in fields.items()}


def assert_headers(response: aiohttp.ClientResponse, where: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, f"{where}: header {name}"


async def test_console_pages(console: Console) -> None:
    held = await make_case(console.sanad, status="claimed", assignee="cw1")
    waiting = await make_case(console.sanad)
    people = await browsers(console)
    failures = []
    for path, *expected in GETS:
        url = await fill(console, path, held=held, waiting=waiting)
        for caller, status in zip(CALLERS, expected, strict=True):
            response = await people[caller].get(url)
            assert_headers(response, f"GET {url} as {caller}")
            if response.status != status:
                failures.append(f"GET {path} as {caller}: {response.status}, expected {status}")
    assert not failures, "\n".join(failures)


async def test_console_forms(console: Console) -> None:
    people = await browsers(console)
    failures = []
    for path, fields, *expected in POSTS:
        for caller, status in zip(CALLERS, expected, strict=True):
            url = await fill(console, path)
            data = unique(fields)
            response = await people[caller].post(url, data)
            assert_headers(response, f"POST {url} as {caller}")
            if response.status != status:
                failures.append(f"POST {path} as {caller}: {response.status}, expected {status}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("token", ["", "forged-token", "missing"])
async def test_every_form_needs_the_csrf_token(console: Console, token: str) -> None:
    people = await browsers(console)
    forms = [*POSTS, ("/console/logout", {}, 302, 303, 303, 303, 303, 303)]
    failures = []
    for path, fields, *_ in forms:
        for caller in ACCOUNTS:
            url = await fill(console, path)
            browser = people[caller]
            real = browser.csrf
            browser.csrf = ""
            data = unique(fields)
            if token != "missing":
                data["csrf"] = token
            response = await browser.post(url, data)
            browser.csrf = real
            assert_headers(response, f"POST {url} as {caller}")
            if response.status != 403:
                failures.append(f"POST {path} as {caller} with csrf={token!r}: "
                                f"{response.status}")
    assert not failures, "\n".join(failures)
    # Nothing happened: every case is still held by cw1, every session still works.
    queue = await people["cw1"].get("/console/queue")
    assert queue.status == 200


async def test_api_routes_with_bearer_tokens(console: Console) -> None:
    anon = await console.browser()
    failures = []
    for method, path, body, *expected in API:
        for caller, status in zip(CALLERS, expected, strict=True):
            url = await fill(console, path)
            headers = {} if caller == "anon" else {
                "Authorization": f"Bearer {console.tokens[caller]}"}
            response = await anon.request(method, url, json=body, headers=headers)
            assert_headers(response, f"{method} {url} as {caller}")
            if response.status != status:
                failures.append(f"{method} {path} as {caller}: {response.status}, "
                                f"expected {status}: {await response.text()}")
    assert not failures, "\n".join(failures)


async def test_api_with_the_console_cookie_needs_the_csrf_header(console: Console) -> None:
    cw1 = await console.browser(login_as="cw1")
    case_id = await make_case(console.sanad)
    assert (await cw1.request("GET", "/api/cases")).status == 200
    for header in ({}, {"X-CSRF-Token": "forged"}):
        response = await cw1.request("POST", f"/api/cases/{case_id}/claim", headers=header)
        assert response.status == 403
    response = await cw1.request("POST", f"/api/cases/{case_id}/claim",
                                 headers={"X-CSRF-Token": cw1.csrf})
    assert response.status == 200


@pytest.mark.parametrize("authorization", [
    "Bearer nope", "Bearer ", "Basic Y3cxOnB3", "bearer", "Token abc",
])
async def test_api_rejects_bad_credentials(console: Console, authorization: str) -> None:
    anon = await console.browser()
    response = await anon.request("GET", "/api/cases", headers={"Authorization": authorization})
    assert response.status == 401
    assert response.headers["Content-Type"].startswith("application/json")
