"""Canned replies in the case composer, in a real browser (Debian chromium + Playwright), in
Arabic and English at 1366x768 and 390x844 (issue #20): "/" in an empty reply box or outside a
field opens a filterable list (combobox + listbox, arrows, Enter, Escape, axe-clean) whose
texts have their service details filled; without JavaScript the dropdown still sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import update

from bot.app import Sanad
from bot.store.models import Case
from handoff import canned
from handoff.texts import load_canned_replies
from tests.handoff.conftest import (
    launch_chromium,
    make_case,
    needs_chromium,
    serve_console,
    sign_in,
)
from tests.handoff.test_a11y import blocking
from tests.handoff.test_inbox_browser import SIZES, WAIT, no_sideways_scroll

pytestmark = [needs_chromium, pytest.mark.timeout(600)]
TITLE = {"ar": "خط نجدة الطفل", "en": "Child line"}
FILLED = {"ar": "كلم خط نجدة الطفل على 16000.", "en": "Call Child Helpline on 16000."}
NAME, PHONE = "{service:child_helpline_16000.name}", "{service:child_helpline_16000.phone}"
TEMPLATE = {"ar": f"كلم {NAME} على {PHONE}.", "en": f"Call {NAME} on {PHONE}."}


@pytest.fixture
async def base(sanad_sqlite: Sanad) -> AsyncIterator[str]:
    async with serve_console(sanad_sqlite) as running:
        yield running.base


async def held_case(sanad: Sanad, lang: str) -> int:
    """A case cw1 holds, in ``lang``, with a canned reply naming a verified service."""
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    async with sanad.store.session() as db:
        await db.execute(update(Case).where(Case.id == case_id).values(language=lang))
        await canned.add(db, load_canned_replies(), key="child_line", language=lang,
                         title=TITLE[lang], text=TEMPLATE[lang], by="sup")
    return case_id


async def visible_options(page: Any) -> list[str]:
    return list(await page.locator("#canned-list [role=option]:visible").evaluate_all(
        "els => els.map(e => e.dataset.key)"))


@pytest.mark.parametrize("lang", ["ar", "en"])
@pytest.mark.parametrize("size", list(SIZES))
async def test_slash_searches_canned_replies(
    sanad_sqlite: Sanad, base: str, lang: str, size: str,
) -> None:
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import async_playwright, expect

    case_id = await held_case(sanad_sqlite, lang)
    width, height = SIZES[size]
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        page = await browser.new_page(viewport={"width": width, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await sign_in(page, base, "cw1", lang)
        await page.goto(f"{base}/console/cases/{case_id}")
        picker, search = page.locator("#canned-picker"), page.locator("#canned-search")
        reply, listbox = page.locator("#reply-text"), page.locator("#canned-list")
        await expect(picker).to_be_hidden()
        await expect(page.locator("#canned-shortcut")).to_be_visible()
        await expect(page.locator("#canned"), "the dropdown stays").to_be_visible()

        # "/" in the empty reply box opens the list instead of typing a slash.
        await reply.click()
        await page.keyboard.press("/")
        await expect(search).to_be_focused()
        await expect(reply).to_have_value("")
        await expect(search).to_have_attribute("role", "combobox")
        await expect(search).to_have_attribute("aria-expanded", "true")
        await expect(listbox).to_have_attribute("role", "listbox")
        every = await visible_options(page)
        assert "child_line" in every and len(every) >= 5
        first = listbox.locator("[role=option]").first
        await expect(first).to_have_attribute("aria-selected", "true")
        await expect(search).to_have_attribute("aria-activedescendant",
                                               await first.get_attribute("id") or "")
        await expect(listbox, "service details filled").to_contain_text(FILLED[lang])
        await expect(listbox).not_to_contain_text("{service:")
        await no_sideways_scroll(page)
        found = await Axe().run(page)
        assert not blocking(found), blocking(found)

        # Filter, pick with Enter: the filled text lands in the reply box, focus with it.
        await page.keyboard.type("16000")
        assert await visible_options(page) == ["child_line"]
        await expect(page.locator("#canned-status")).to_contain_text("1")
        await page.keyboard.press("Enter")
        await expect(picker).to_be_hidden()
        await expect(reply).to_have_value(FILLED[lang])
        await expect(reply).to_be_focused()
        await expect(page.locator("#canned")).to_have_value("child_line")

        # With text in the box "/" is a slash; outside a field it opens the list.
        await page.keyboard.press("/")
        await expect(reply).to_have_value(FILLED[lang] + "/")
        await page.locator("h1").click()
        await page.keyboard.press("/")
        await expect(search).to_be_focused()
        await page.keyboard.press("ArrowDown")
        second = listbox.locator("[role=option]").nth(1)
        await expect(second).to_have_attribute("aria-selected", "true")
        await expect(first).to_have_attribute("aria-selected", "false")
        await page.keyboard.press("ArrowUp")
        await expect(first).to_have_attribute("aria-selected", "true")
        await page.keyboard.press("ArrowUp")  # wraps to the last
        await expect(listbox.locator("[role=option]").last).to_have_attribute(
            "aria-selected", "true")
        await page.keyboard.type("zzzq no such reply")
        await expect(page.locator("#canned-none")).to_be_visible()
        await expect(listbox).to_be_hidden()
        await expect(search).to_have_attribute("aria-expanded", "false")
        await page.keyboard.press("Escape")
        await expect(picker).to_be_hidden()
        await expect(reply).to_be_focused()
        await expect(reply, "Escape changes nothing").to_have_value(FILLED[lang] + "/")

        # A click picks too; Ctrl+Enter sends the filled text.
        await reply.fill("")
        await page.keyboard.press("/")
        await listbox.locator("[data-key=child_line]").click()
        await expect(reply).to_have_value(FILLED[lang])
        await page.keyboard.press("Control+Enter")
        await expect(page.locator(".msg.from-caseworker p", has_text=FILLED[lang])).to_have_count(
            1, timeout=WAIT)

        # "n", "f", "t" go to the note, referral and transfer; on the queue "/" to the search.
        await page.locator("h1").click()
        await page.keyboard.press("n")
        await expect(page.locator("#note-text")).to_be_focused()
        await page.locator("h1").click()
        await page.keyboard.press("f")
        await expect(page.locator("#service")).to_be_focused()
        await page.locator("h1").click()
        await page.keyboard.press("t")
        await expect(page.locator("#transfer-to")).to_be_focused()
        await page.goto(f"{base}/console/queue")
        await page.keyboard.press("/")
        await expect(page.locator("#q")).to_be_focused()
        await expect(page.locator("#q")).to_have_value("")
        await browser.close()
    assert not errors, errors


@pytest.mark.parametrize("lang", ["ar", "en"])
async def test_without_javascript_the_dropdown_sends_the_filled_text(
    sanad_sqlite: Sanad, base: str, lang: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    case_id = await held_case(sanad_sqlite, lang)
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        context = await browser.new_context(java_script_enabled=False,
                                            viewport={"width": 390, "height": 844})
        page = await context.new_page()
        await sign_in(page, base, "cw1", lang)
        await page.goto(f"{base}/console/cases/{case_id}")
        await expect(page.locator("#canned-picker")).to_be_hidden()
        await expect(page.locator("#canned-shortcut")).to_be_hidden()
        await page.select_option("#canned", "child_line")
        await page.click("form.reply button[type=submit]")
        await page.wait_for_load_state()
        await expect(page.locator(".msg.from-caseworker p", has_text=FILLED[lang])).to_have_count(1)
        await browser.close()
