"""The live, phone-first inbox in a real browser (Debian chromium + Playwright), in Arabic and
English, at 1366x768 and 390x844: live queue and thread over server-sent events, the tab-title
count, alerts, claim/reply/close without a reload, Ctrl+Enter, per-case drafts, the activity
keep-alive, and no sideways scrolling on a phone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.app import Sanad
from bot.messages import Inbound
from handoff import live
from handoff.queue import list_cases
from tests.handoff.conftest import launch_chromium, needs_chromium, serve_console, sign_in

pytestmark = [
    needs_chromium,
    pytest.mark.timeout(600),
]
SIZES = {"desktop": (1366, 768), "phone": (390, 844)}
WAIT = 15_000  # ms: a bound against a hung test on a loaded machine, not a speed requirement


async def say(sanad: Sanad, user: str, text: str = "", button: str | None = None) -> list[str]:
    turn = await sanad.engine.handle_turn(
        Inbound(user=sanad.store.user_ref("terminal", user), text=text, button_id=button))
    return [type(e).__name__ for e in turn.events]


@pytest.fixture
async def site(sanad_sqlite: Sanad) -> AsyncIterator[tuple[str, web.Application]]:
    async with serve_console(sanad_sqlite, watch_seconds=0.3) as running:
        yield running.base, running.app


async def no_sideways_scroll(page: Any) -> None:
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} scrolls sideways: {width}"


@pytest.mark.parametrize("lang", ["ar", "en"])
@pytest.mark.parametrize("size", list(SIZES))
async def test_the_inbox_lives_without_reloads(
    sanad_sqlite: Sanad, site: tuple[str, web.Application], lang: str, size: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    base, app = site
    sanad = sanad_sqlite
    assert "HandoffRequested" in await say(sanad, "nour", "I want to talk to a person")
    async with sanad.store.session() as db:
        (normal,) = await list_cases(db)
    width, height = SIZES[size]

    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        context = await browser.new_context(viewport={"width": width, "height": height},
                                            permissions=["notifications"])
        page = await context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)
        await sign_in(page, base, "cw1", lang)
        await page.wait_for_url("**/console/queue")
        assert await page.get_attribute("html", "dir") == ("rtl" if lang == "ar" else "ltr")
        await expect(page.locator("#queue-rows tr")).to_have_count(1)
        await expect(page).to_have_title(re.compile(r"^\(1\) "))
        await expect(page.locator("html")).to_have_attribute("data-live", "sse")
        await no_sideways_scroll(page)

        # Alerts on; a new urgent case arrives live: a new row, the count, one alert.
        await page.click("#alerts-toggle")
        await expect(page.locator("#alerts-toggle")).to_have_attribute("aria-pressed", "true")
        await page.evaluate("window.__same = true")
        assert "EmergencyTriggered" in await say(sanad, "karim", "ساعدوني أنا في خطر")
        assert "HandoffRequested" in await say(sanad, "karim", button="em:human")
        await expect(page.locator("#queue-rows tr")).to_have_count(2, timeout=WAIT)
        await expect(page.locator("#queue-rows tr").first).to_have_class(
            re.compile(r"\bp-urgent\b"))
        await expect(page).to_have_title(re.compile(r"^\(2\) "))
        await expect(page.locator("html")).to_have_attribute("data-alerted", "1")

        # Someone else claims the urgent case: it leaves this queue without a reload.
        async with sanad.store.session() as db:
            urgent = next(c for c in await list_cases(db) if c.priority == "urgent")
        from handoff import actions

        async with sanad.store.session() as db:
            assert await actions.claim(db, urgent.id, "cw2")
        await app[live.LIVE].bus.publish(live.Change(urgent.id))
        await expect(page.locator("#queue-rows tr")).to_have_count(1, timeout=WAIT)
        await expect(page).to_have_title(re.compile(r"^\(1\) "))

        # Open the case, claim it without a reload.
        await page.click(f"text={normal.alias}")
        await page.wait_for_url(f"**/console/cases/{normal.id}")
        await no_sideways_scroll(page)
        await page.evaluate("window.__same = true")
        await page.click("form.claim button")
        await expect(page.locator("#reply-text")).to_be_visible(timeout=WAIT)
        await expect(page.locator("#reply-text")).to_be_focused()
        assert await page.evaluate("window.__same === true"), "claimed without a reload"
        assert page.url.endswith(f"/console/cases/{normal.id}?notice=claimed")

        # A draft survives a reload, typing keeps the session alive, Ctrl+Enter sends.
        draft = "مرحبا، أنا هنا" if lang == "ar" else "Hello, I am here"
        await page.type("#reply-text", draft)
        await page.reload()
        await expect(page.locator("#reply-text")).to_have_value(draft)
        await page.evaluate("window.__same = true")
        async with page.expect_request("**/console/session/keepalive") as ping:
            await page.type("#reply-text", "!")  # the first activity in a page pings
        assert (await ping.value).method == "POST"
        draft += "!"
        await page.keyboard.press("Control+Enter")
        await expect(page.locator(".msg.from-caseworker p", has_text=draft)).to_have_count(
            1, timeout=WAIT)
        await expect(page.locator("#reply-text")).to_have_value("")
        assert await page.evaluate(f"localStorage.getItem('sanad.draft.{normal.id}')") is None
        assert await page.evaluate("window.__same === true"), "sent without a reload"

        # The person answers: it appears in the open thread (the watcher saw it).
        answer = "شكرا، أنا بخير" if lang == "ar" else "Thanks, I am fine"
        assert "RelayedToCase" in await say(sanad, "nour", answer)
        await expect(page.locator(".msg.from-user p", has_text=answer)).to_have_count(
            1, timeout=WAIT)
        assert await page.locator("time[dir=ltr]").count() >= 2, "times read left to right"
        await no_sideways_scroll(page)

        # Closing asks first (a stray click closes nothing), then closes without a reload.
        await page.select_option("#outcome", "referred")
        await page.click("form[action$='/close'] button")
        confirm = page.locator("dialog#close-confirm")
        await expect(confirm).to_be_visible()
        outcome = (await page.locator("#outcome option:checked").inner_text()).strip()
        await expect(confirm.locator("p")).to_contain_text(outcome)
        await no_sideways_scroll(page)
        await confirm.locator("button[value=no]").click()
        await expect(confirm).to_be_hidden()
        await expect(page.locator("#outcome")).to_be_focused()
        async with sanad.store.session() as db:
            assert (await actions.get_case(db, normal.id)).status == "claimed", "cancelled"
        await page.click("form[action$='/close'] button")
        await confirm.locator("button[value=yes]").click()
        await page.wait_for_url("**/console/queue?notice=closed", timeout=WAIT)
        await expect(page.locator("p.notice")).to_be_visible()
        assert await page.evaluate("window.__same === true"), "closed without a reload"
        await expect(page.locator("#queue-rows tr.empty")).to_have_count(1)
        await expect(page).not_to_have_title(re.compile(r"^\("))
        await no_sideways_scroll(page)

        # Signing out forgets every draft kept in this browser.
        await page.click("a[href$='/console/queue']")
        await page.evaluate("localStorage.setItem('sanad.draft.999', 'left behind')")
        await page.click("form[action='/console/logout'] button")
        await page.wait_for_url("**/console/login**")
        assert await page.evaluate("localStorage.getItem('sanad.draft.999')") is None
        await browser.close()
    assert not errors, errors


@pytest.mark.parametrize("lang", ["ar", "en"])
@pytest.mark.parametrize("size", list(SIZES))
async def test_keyboard_shortcuts(
    sanad_sqlite: Sanad, site: tuple[str, web.Application], lang: str, size: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    base, _app = site
    sanad = sanad_sqlite
    for user in ("nour", "lina"):
        assert "HandoffRequested" in await say(sanad, user, "I want to talk to a person")
    async with sanad.store.session() as db:
        first, second = await list_cases(db)
    width, height = SIZES[size]
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        page = await browser.new_page(viewport={"width": width, "height": height})
        await sign_in(page, base, "cw1", lang)
        await page.wait_for_url("**/console/queue")
        help_dialog = page.locator("dialog#shortcuts")
        await expect(help_dialog).to_be_hidden()
        await page.keyboard.press("?")
        await expect(help_dialog).to_be_visible()
        await expect(help_dialog.locator("kbd", has_text="j")).to_have_count(1)
        await no_sideways_scroll(page)
        await page.keyboard.press("Escape")
        await expect(help_dialog).to_be_hidden()

        await page.keyboard.press("j")
        await expect(page.locator(f"#queue-rows a[href$='/cases/{first.id}']")).to_be_focused()
        await page.keyboard.press("j")
        await expect(page.locator(f"#queue-rows a[href$='/cases/{second.id}']")).to_be_focused()
        await page.keyboard.press("k")
        await expect(page.locator(f"#queue-rows a[href$='/cases/{first.id}']")).to_be_focused()
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**/console/cases/{first.id}")

        await page.keyboard.press("c")  # claim
        await expect(page.locator("#reply-text")).to_be_focused(timeout=WAIT)
        await page.keyboard.type("r")  # typing in the box is text, not a shortcut
        await expect(page.locator("#reply-text")).to_have_value("r")
        await page.locator("h1").click()
        await page.keyboard.press("x")
        await expect(page.locator("#outcome")).to_be_focused()
        await page.locator("h1").click()
        await page.keyboard.press("r")
        await expect(page.locator("#reply-text")).to_be_focused()
        await browser.close()
