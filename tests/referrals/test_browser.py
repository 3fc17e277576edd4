"""Referrals in a real browser (Debian chromium driven by Playwright), Arabic right to left: the
caseworker proposes a shelter referral from the case page, the person agrees in the chat, the
shelter's staff accept and complete it on their own page; the other organisation's page stays
empty."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Sanad
from tests.handoff.conftest import (
    launch_chromium,
    make_case,
    needs_chromium,
    serve_console,
    sign_in,
)
from tests.referrals.conftest import Person, partner_accounts

SUMMARY = "محتاجة مكان آمن تبات فيه"

pytestmark = needs_chromium


@pytest.fixture
async def live(sanad_sqlite: Sanad) -> AsyncIterator[str]:
    async with serve_console(sanad_sqlite) as running:
        yield running.base


async def test_propose_consent_accept_complete_in_the_browser(sanad_sqlite: Sanad,
                                                              live: str) -> None:
    from playwright.async_api import async_playwright, expect

    sanad = sanad_sqlite
    await partner_accounts(sanad)
    case_id = await make_case(sanad, user="browser-person", status="claimed", assignee="cw1")
    person = Person(sanad, "browser-person")
    await person.say("hello")

    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        errors: list[str] = []
        caseworker = await browser.new_page(locale="ar-EG")
        caseworker.on("console",
                      lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        await sign_in(caseworker, live, "cw1")
        await caseworker.goto(f"{live}/console/cases/{case_id}")
        await caseworker.click("#structured-referrals")
        await caseworker.wait_for_url(f"**/console/cases/{case_id}/referrals")
        assert await caseworker.get_attribute("html", "dir") == "rtl"
        await caseworker.select_option("#target", "moss_shelters/moss_trafficking_shelters")
        await caseworker.select_option("#urgency", "urgent")
        for field in ("language", "risk_level", "summary"):
            await caseworker.check(f"input[name=fields][value={field}]")
        await caseworker.fill("#summary", SUMMARY)
        await caseworker.click("#propose button[type=submit]")
        await caseworker.wait_for_url("**notice=referral_proposed")
        card = caseworker.locator("article.referral")
        await expect(card).to_have_attribute("data-status", "proposed")

        [question] = await person.check_phone()
        assert "مراكز إيواء" in question.text
        await person.say("أيوه، موافق", button=person.phone.button("rc:yes:"))

        shelter = await browser.new_page(locale="ar-EG")
        await sign_in(shelter, live, "shelter1")
        await shelter.wait_for_url("**/console/partner")
        item = shelter.locator("#partner-referrals article.referral")
        await expect(item).to_have_count(1)
        await expect(item.locator("dd.shared[data-field=summary]")).to_have_text(SUMMARY)
        await shelter.click("#partner-referrals form[action$='/accept'] button")
        await expect(item).to_have_attribute("data-status", "accepted")
        await shelter.select_option("select[name=outcome]", "service_delivered")
        await shelter.click("#partner-referrals form[action$='/complete'] button")
        await expect(item).to_have_attribute("data-status", "completed")

        other = await browser.new_page(locale="ar-EG")
        await sign_in(other, live, "iom1")
        await other.wait_for_url("**/console/partner")
        await expect(other.locator("#partner-referrals article.referral")).to_have_count(0)
        assert SUMMARY not in await other.content()
        forbidden = await other.goto(f"{live}/console/cases/{case_id}/referrals")
        assert forbidden is not None and forbidden.status == 403

        await caseworker.reload()
        await expect(card).to_have_attribute("data-status", "completed")
        await expect(card.locator("ol.steps li")).to_have_count(4)  # no "start"
        await browser.close()
    assert errors == []
