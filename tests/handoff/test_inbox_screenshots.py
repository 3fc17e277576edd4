"""The queue and a case in a real browser, Arabic and English, 1366x768 and 390x844, fed by
real conversations: the pages show what a caseworker needs (urgent first, previews, the thread,
the composer with its canned-reply search) without sideways scrolling, and are photographed.

The pictures go to ``$SANAD_SCREENSHOTS`` when set (``docs/screenshots`` to refresh the docs:
``SANAD_SCREENSHOTS=docs/screenshots pytest tests/handoff/test_inbox_screenshots.py``), else
to the test's temporary directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Sanad
from handoff import actions, relay
from handoff.queue import list_cases
from tests.handoff.conftest import launch_chromium, needs_chromium, serve_console, sign_in
from tests.handoff.test_inbox_browser import SIZES, no_sideways_scroll, say

pytestmark = [needs_chromium, pytest.mark.timeout(600)]


@pytest.fixture
async def base(sanad_sqlite: Sanad) -> AsyncIterator[str]:
    async with serve_console(sanad_sqlite) as running:
        yield running.base


async def scene(sanad: Sanad) -> int:
    """Two people asking for a person and one emergency, claimed by cw1 with a reply and an
    answer: the urgent case's id."""
    assert "HandoffRequested" in await say(sanad, "nour", "I want to talk to a person")
    await say(sanad, "nour", "I have a question about my work contract abroad")
    assert "HandoffRequested" in await say(sanad, "lina", "I want to talk to a person")
    assert "EmergencyTriggered" in await say(sanad, "karim", "ساعدوني أنا في خطر")
    assert "HandoffRequested" in await say(sanad, "karim", button="em:human")
    await say(sanad, "karim", "أنا في الجيزة، قريب من المحطة")
    async with sanad.store.session() as db:
        urgent = next(c for c in await list_cases(db) if c.priority == "urgent")
        assert await actions.claim(db, urgent.id, "cw1")
    async with sanad.store.session() as db:
        await relay.reply(db, cipher=sanad.store.cipher, ui=sanad.ui, case_id=urgent.id,
                          author="cw1", text="أنا معاك. هل أنت في مكان آمن الآن؟")
    await say(sanad, "karim", "أيوه، أنا في مكان آمن دلوقتي")
    return urgent.id


def out_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("SANAD_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("lang", ["ar", "en"])
async def test_queue_and_case_photographed(
    sanad_sqlite: Sanad, base: str, lang: str, tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    case_id = await scene(sanad_sqlite)
    folder = out_dir(tmp_path)
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        for size, (width, height) in SIZES.items():
            prefix = "inbox-phone-" if size == "phone" else "inbox-"
            page = await browser.new_page(viewport={"width": width, "height": height})
            await sign_in(page, base, "cw1", lang)
            await page.wait_for_url("**/console/queue")
            rows = page.locator("#queue-rows tr")
            await expect(rows).to_have_count(3)
            await expect(rows.first).to_have_class("p-urgent mine")
            await no_sideways_scroll(page)
            await page.screenshot(path=str(folder / f"{prefix}queue-{lang}.png"), full_page=True)

            await page.goto(f"{base}/console/cases/{case_id}")
            await expect(page.locator(".msg.from-user").last).to_contain_text("مكان آمن")
            await page.locator("#reply-text").click()
            await page.keyboard.press("/")
            await expect(page.locator("#canned-list")).to_be_visible()
            await no_sideways_scroll(page)
            await page.screenshot(path=str(folder / f"{prefix}case-{lang}.png"), full_page=True)
            await page.close()
        await browser.close()
    for name in ("queue", "case"):
        for prefix in ("inbox-", "inbox-phone-"):
            assert (folder / f"{prefix}{name}-{lang}.png").stat().st_size > 10_000
