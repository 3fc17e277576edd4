"""The web chat page in a real browser (Debian chromium driven by Playwright, no download),
against the real app on 127.0.0.1: a phone-sized screen, Arabic, right to left.

A person writes, reads the answer, taps a button; a caseworker's reply arrives without a
reload; the quick-exit button empties the page and the tab's storage, leaves a neutral page in
place of the chat in the history, and pauses contact on the server. The strict CSP holds (no
console errors) and axe finds nothing serious.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import Sanad
from bot.channels.webchat import PAGE, WebChatChannel
from bot.store.models import User
from bot.web.app import create_app
from handoff.queue import list_cases
from tests.test_relay import caseworker_says

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 360, "height": 640}
"""A small, cheap phone's screen."""
BLOCKING = ("serious", "critical")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")


@pytest.fixture
async def site(sanad_sqlite: Sanad) -> AsyncIterator[str]:
    channel = WebChatChannel(sanad_sqlite, poll_seconds=0.2)
    app = create_app(sanad_sqlite, channels=[channel.mount], back_office=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def paused(sanad: Sanad) -> bool:
    async with sanad.store.session() as db:
        users = list(await db.scalars(select(User).where(User.key.is_not(None))))
    return any(u.contact_paused_at is not None for u in users)


async def test_a_conversation_then_a_quick_exit_in_the_browser(
    sanad_sqlite: Sanad, site: str,
) -> None:
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = await browser.new_page(viewport=PHONE, locale="ar-EG")
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        await page.goto(site + PAGE)
        assert await page.get_attribute("html", "dir") == "rtl"
        assert await page.title() == "محادثة"
        exit_button = page.locator("#exit")
        await expect(exit_button).to_be_visible()
        await expect(exit_button).to_be_in_viewport()

        # send and receive
        await page.fill("#text", "مرحبا")
        await page.press("#text", "Enter")
        answers = page.locator("#log li.bot")
        await expect(answers.first).to_be_visible()
        await expect(page.locator("#log li.me p").first).to_have_text("مرحبا")
        directions = await page.locator("#log li p span").evaluate_all(
            "lines => lines.map(line => getComputedStyle(line).direction)")
        assert directions[0] == "rtl"  # the user's Arabic line

        # a button
        before = await answers.count()
        await page.click('#log li.bot button[data-id="menu:human"]')
        await expect(answers).to_have_count(before + 1)
        await page.fill("#text", "I need advice about my contract")
        await page.press("#text", "Enter")
        await expect(answers).to_have_count(before + 2)

        # a caseworker's reply arrives without a reload
        async with sanad_sqlite.store.session() as db:
            case = (await list_cases(db))[-1]
        await caseworker_says(sanad_sqlite, case.id, "Hello, I am Mona. Are you safe now?")
        await expect(page.locator("#log li.bot p").last).to_contain_text("Mona")
        english = page.locator("#log li.bot p span", has_text="Mona").last
        assert await english.evaluate("line => getComputedStyle(line).direction") == "ltr"

        # a reload keeps the conversation (the tab's own storage)
        shown = await page.locator("#log li").count()
        await page.reload()
        await expect(page.locator("#log li")).to_have_count(shown)

        problems = [f"{v['id']} ({v['impact']}): {v['help']}"
                    for v in (await Axe().run(page)).response.get("violations", [])
                    if v.get("impact") in BLOCKING]
        assert not problems, "\n".join(problems)
        scroll, inner = await page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner  # nothing scrolls sideways on a small phone

        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "webchat-phone-ar.png"))

        # quick exit
        await exit_button.click()
        await page.wait_for_url("**/chat/away")
        assert await page.title() == "علامة تبويب جديدة"
        storage: Any = await page.evaluate("[sessionStorage.length, localStorage.length]")
        assert storage == [0, 0]
        assert await page.locator("#log").count() == 0
        await page.go_back()
        assert not page.url.endswith(PAGE)  # the chat is no longer in the history
        for _ in range(100):  # the page told the server (keepalive) as it left
            if await paused(sanad_sqlite):
                break
            await asyncio.sleep(0.05)
        assert await paused(sanad_sqlite)
        assert errors == []
        await browser.close()
