"""Second-factor enrolment in a real browser (Debian chromium, Playwright): the QR code is drawn
under the strict CSP (no violation, no script), the first code opens the console, the recovery
codes are shown once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pyotp
import pytest

from bot.app import Sanad
from handoff.auth import AuthPolicy
from tests.handoff.conftest import launch_chromium, needs_chromium, serve_console, sign_in

MOMENT = datetime(2026, 12, 7, 18, 0, 0, tzinfo=UTC)

pytestmark = needs_chromium


@pytest.fixture
async def live_console(sanad_sqlite: Sanad) -> AsyncIterator[str]:
    async with serve_console(
            sanad_sqlite, policy=AuthPolicy(require_totp=True, clock=lambda: MOMENT)) as running:
        yield running.base


async def test_enrolment_in_the_browser(live_console: str) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(msg.text)
                if msg.type == "error" or "Content Security Policy" in msg.text else None)
        await sign_in(page, live_console, "sup", "en")
        await page.wait_for_url("**/console/totp/enrol")
        qr = page.locator("figure.qr svg")
        await expect(qr).to_have_count(1)
        box = await qr.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
        secret = (await page.locator("code.secret").first.inner_text()).strip()
        await page.goto(live_console + "/console/reports")  # not yet: back to the second step
        asked = re.compile(r"/console/totp/enrol\?next=(%2F|/)console(%2F|/)reports$")
        await page.wait_for_url(asked)
        assert (await page.locator("code.secret").first.inner_text()).strip() == secret
        await page.fill("#code", pyotp.TOTP(secret).at(MOMENT))
        await page.click("button[type=submit].primary")
        await expect(page.locator("ul.codes li")).to_have_count(10)
        await page.click("a.button.primary")
        await page.wait_for_url("**/console/reports")  # then on to the page asked for
        await browser.close()
    assert problems == []
