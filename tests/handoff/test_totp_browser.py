"""Second-factor enrolment in a real browser (Debian chromium, Playwright): the QR code is drawn
under the strict CSP (no violation, no script), the first code opens the console, the recovery
codes are shown once."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from aiohttp import web

from bot.app import Sanad
from bot.web.app import create_app
from handoff.auth import AuthPolicy
from handoff.web import setup
from tests.handoff.conftest import FAST_PASSWORDS, PASSWORD, add_accounts

CHROMIUM = Path("/usr/bin/chromium")
MOMENT = datetime(2026, 12, 7, 18, 0, 0, tzinfo=UTC)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian chromium is not installed at /usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def live_console(sanad_sqlite: Sanad) -> AsyncIterator[str]:
    app = create_app(sanad_sqlite, channels=[], back_office=False)
    setup(app, sanad_sqlite, passwords=FAST_PASSWORDS,
          policy=AuthPolicy(require_totp=True, clock=lambda: MOMENT))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await add_accounts(sanad_sqlite)
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_enrolment_in_the_browser(live_console: str) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(msg.text)
                if msg.type == "error" or "Content Security Policy" in msg.text else None)
        await page.goto(live_console + "/console/login?lang=en")
        await page.fill("#name", "sup")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit].primary")
        await page.wait_for_url("**/console/totp/enrol")
        qr = page.locator("figure.qr svg")
        await expect(qr).to_have_count(1)
        box = await qr.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
        secret = (await page.locator("code.secret").first.inner_text()).strip()
        await page.goto(live_console + "/console/queue")  # not yet: back to the second step
        await page.wait_for_url("**/console/totp/enrol")
        assert (await page.locator("code.secret").first.inner_text()).strip() == secret
        await page.fill("#code", pyotp.TOTP(secret).at(MOMENT))
        await page.click("button[type=submit].primary")
        await expect(page.locator("ul.codes li")).to_have_count(10)
        await page.click("a.button.primary")
        await page.wait_for_url("**/console/queue")
        await browser.close()
    assert problems == []
