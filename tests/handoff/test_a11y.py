"""Accessibility and phone layout of every console page, for every role, in Arabic, English and
French, at 1366x768 and 390x844: axe-core (axe-playwright-python) finds no serious or critical
violation, and no page scrolls sideways (``scrollWidth <= innerWidth``).

To cover a new page, add its path to ``PAGES`` under each role that may open it (``{case}``
becomes the id of an open case the role can see).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import Sanad
from tests.handoff.conftest import (
    ACCOUNTS,
    launch_chromium,
    make_case,
    needs_chromium,
    serve_console,
    sign_in,
    write_message,
)

pytestmark = [
    needs_chromium,
    pytest.mark.timeout(900),
]
SIZES = {"desktop": (1366, 768), "phone": (390, 844)}
BLOCKING = ("serious", "critical")

PAGES: dict[str | None, tuple[str, ...]] = {
    None: ("/console/login",),
    "cw1": ("/console/queue", "/console/cases/{case}", "/console/account"),
    "sup": ("/console/queue", "/console/cases/{case}", "/console/reports",
            "/console/indicators", "/console/dashboard", "/console/campaigns",
            "/console/canned"),
    "out": ("/console/home", "/console/dashboard", "/console/campaigns"),
    "adm": ("/console/accounts", "/console/dashboard", "/console/campaigns"),
}
"""Pages by account (``tests/handoff/conftest.py``'s ``ACCOUNTS``; None: signed out)."""


@pytest.fixture
async def site(sanad_sqlite: Sanad) -> AsyncIterator[str]:
    async with serve_console(sanad_sqlite) as running:
        yield running.base


def blocking(results: Any) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']} @ "
            + "; ".join(str(n.get("target")) for n in v.get("nodes", [])[:3])
            for v in results.response.get("violations", []) if v.get("impact") in BLOCKING]


def test_every_account_in_the_list_exists() -> None:
    assert {name for name in PAGES if name} <= set(ACCOUNTS)


@pytest.mark.parametrize("lang", ["ar", "en", "fr"])
async def test_every_page_of_every_role_is_accessible_at_both_sizes(
    sanad_sqlite: Sanad, site: str, lang: str,
) -> None:
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import async_playwright

    case = await make_case(sanad_sqlite, priority="urgent")
    held = await make_case(sanad_sqlite, status="claimed", assignee="cw1")
    for case_id in (case, held):  # queue rows with a preview and an unread count
        await write_message(sanad_sqlite, case_id, "صاحب الشغل واخد الباسبور بتاعي " * 4)
    axe = Axe()
    problems: list[str] = []
    checked = 0
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        for size, (width, height) in SIZES.items():
            for name, paths in PAGES.items():
                context = await browser.new_context(viewport={"width": width, "height": height})
                page = await context.new_page()
                if name:
                    await sign_in(page, site, name, lang)
                for path in paths:
                    url = site + path.format(case=case) + f"?lang={lang}"
                    response = await page.goto(url)
                    assert response is not None and response.status == 200, (name, path)
                    assert await page.get_attribute("html", "lang") == lang, (name, path)
                    where = f"{lang} {size} {name or 'signed out'} {path}"
                    problems += [f"{where}: {p}" for p in blocking(await axe.run(page))]
                    scroll, inner = await page.evaluate(
                        "[document.documentElement.scrollWidth, window.innerWidth]")
                    if scroll > inner:
                        problems.append(f"{where}: scrolls sideways ({scroll} > {inner})")
                    checked += 1
                await context.close()
        await browser.close()
    assert checked == 2 * sum(len(p) for p in PAGES.values())
    assert not problems, "\n".join(problems)
