"""The console in a real browser (Debian chromium driven by Playwright), against the real app
on 127.0.0.1 with cases opened by real conversations through the engine.

A caseworker logs in (Arabic), sees the urgent case on top, claims it, replies (the reply is in
the thread and queued for the user), sees the user's next message arrive without a reload, and
closes the case. User text containing markup shows as text and never runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy import func, select

from bot.app import Sanad
from bot.messages import Inbound, RelayedToCase
from bot.store.models import OutboxMessage
from handoff import actions, relay
from handoff.queue import list_cases
from tests.handoff.conftest import launch_chromium, needs_chromium, sign_in

# Test artifacts by default; SANAD_UPDATE_SCREENSHOTS=1 refreshes the README's pictures.
SCREENSHOTS = Path(__file__).resolve().parents[2] / (
    "docs/screenshots" if os.environ.get("SANAD_UPDATE_SCREENSHOTS") == "1" else "test-artifacts"
)
SCRIPT = "<script>alert(1)</script>"
LIVE_SCRIPT = '<img src=x onerror="alert(2)">'

pytestmark = needs_chromium


async def say(sanad: Sanad, user: str, text: str = "", button: str | None = None) -> list[str]:
    turn = await sanad.engine.handle_turn(
        Inbound(user=sanad.store.user_ref("terminal", user), text=text, button_id=button))
    return [type(e).__name__ for e in turn.events]


async def open_cases(sanad: Sanad) -> None:
    """A normal request first, then a screening with red flags, then an emergency: the
    emergency is the newest but must top the queue."""
    assert "HandoffRequested" in await say(sanad, "nour", "I want to talk to a person")
    # (Words of danger here would now raise this case to urgent: the safety layer reads the
    # queue too. The scenario wants one case per priority.)
    await say(sanad, "nour", "I have a question about my work contract abroad")
    await say(sanad, "salma", "مرحبا")
    for button in ("menu:check", "sc:consent:yes", "sc:age:18_24"):
        await say(sanad, "salma", button=button)
    for answer in ("yes", "no", "no", "yes", "no", "no", "no", "no", "yes", "no", "no", "no",
                   "no"):  # deceived, documents retained, not free to leave: high
        await say(sanad, "salma", answer)
    assert "HandoffRequested" in await say(sanad, "salma", button="sc:handoff:yes")
    await say(sanad, "salma", "صاحب الشغل واخد الباسبور بتاعي")
    assert "EmergencyTriggered" in await say(sanad, "karim", "ساعدوني أنا في خطر")
    assert "HandoffRequested" in await say(sanad, "karim", button="em:human")
    assert "RelayedToCase" in await say(sanad, "karim", "أنا في الجيزة، قريب من المحطة")
    assert "RelayedToCase" in await say(sanad, "karim", SCRIPT)


async def test_a_caseworker_handles_an_urgent_case_in_the_browser(
    sanad_sqlite: Sanad, live_console: str,
) -> None:
    from playwright.async_api import Dialog, async_playwright, expect

    sanad = sanad_sqlite
    await open_cases(sanad)
    async with sanad.store.session() as db:
        queue = await list_cases(db)
    assert [c.priority for c in queue] == ["urgent", "high", "normal"]
    urgent = queue[0]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="ar-EG")
        dialogs: list[str] = []

        async def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

        await sign_in(page, live_console, "cw1")
        await page.wait_for_url("**/console/queue")
        assert await page.get_attribute("html", "dir") == "rtl"

        rows = page.locator("#queue-rows tr")
        await expect(rows).to_have_count(3)
        await expect(rows.first).to_contain_text(urgent.alias)
        await expect(rows.first).to_have_class(re.compile(r"\bp-urgent\b"))
        await page.screenshot(path=str(SCREENSHOTS / "console-queue-ar.png"), full_page=True)

        await page.click(f"text={urgent.alias}")
        await page.wait_for_url(f"**/console/cases/{urgent.id}")
        await expect(page.locator(".msg.from-user p", has_text=SCRIPT)).to_have_count(1)
        await page.click("form.claim button")
        await page.wait_for_url(f"**/console/cases/{urgent.id}?notice=claimed")

        await page.select_option("#canned", "safe_now")
        assert "122" in await page.input_value("#reply-text"), "a canned reply fills the box"
        reply = "أنا معاك. هل تقدر تقول لنا اسم المنطقة بالظبط؟"
        await page.fill("#reply-text", reply)
        await page.click("form.reply button")
        await page.wait_for_url("**?notice=sent")
        await expect(page.locator(".msg.from-caseworker p", has_text=reply)).to_have_count(1)
        async with sanad.store.session() as db:
            thread = await relay.thread(db, cipher=sanad.store.cipher, case_id=urgent.id)
            queued = await db.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.kind == "caseworker"))
        assert (thread[-1].sender, thread[-1].text, thread[-1].author) == (
            "caseworker", reply, "cw1")
        assert queued == 1, "the reply waits in the outbox for the user's channel"

        await page.fill("#note-text", "يحتاج متابعة مع الشرطة والمجلس القومي")
        await page.click("form[action$='/notes'] button")
        await page.wait_for_url("**?notice=noted")
        await page.select_option("#service", "nccpim_tip")
        await page.click("form[action$='/refer'] button")
        await page.wait_for_url("**?notice=referred")

        await page.evaluate("window.__notReloaded = true")
        later = "ممكن نتكلم بالليل بعد الشغل؟"
        assert "RelayedToCase" in await say(sanad, "karim", later)
        events = await sanad.engine.handle_turn(Inbound(
            user=sanad.store.user_ref("terminal", "karim"), text=LIVE_SCRIPT))
        assert any(isinstance(e, RelayedToCase) for e in events.events)
        await expect(page.locator(".msg.from-user p", has_text=later)).to_have_count(
            1, timeout=10_000)
        await expect(page.locator(".msg.from-user p", has_text=LIVE_SCRIPT)).to_have_count(1)
        assert await page.evaluate("window.__notReloaded === true"), "no reload"
        await page.screenshot(path=str(SCREENSHOTS / "console-case-ar.png"), full_page=True)

        await page.select_option("#outcome", "referred")
        await page.click("form[action$='/close'] button")
        await page.click("dialog#close-confirm button[value=yes]")
        await page.wait_for_url("**/console/queue?notice=closed")
        await expect(page.locator("#queue-rows tr")).to_have_count(2)

        await page.evaluate("window.__notReloaded = true")
        assert "HandoffRequested" in await say(sanad, "lina", "I want to talk to a person")
        await expect(page.locator("#queue-rows tr")).to_have_count(3, timeout=10_000)
        assert await page.evaluate("window.__notReloaded === true"), "new cases appear live"
        await browser.close()

    assert dialogs == [], "user text must never execute"
    assert not [e for e in errors if "Content Security Policy" in e], errors
    async with sanad.store.session() as db:
        case = await actions.get_case(db, urgent.id)
    assert (case.status, case.outcome) == ("closed", "referred")
