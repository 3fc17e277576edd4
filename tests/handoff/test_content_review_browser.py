"""The content review workflow in a real browser (Debian chromium + Playwright) against an
app serving content as production does (only approved content).

A reviewer logs in (Arabic console), finds the module never reviewed, reads it with its
sources as links, approves it: the running bot serves it at once. Then an editor changes the
YAML: the console shows it as changed since approval with a line diff, and production keeps
serving the approved version until it is reviewed again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot.app import Sanad, build
from bot.content import ContentLibrary
from bot.content.review_store import decide, load_approvals
from bot.messages import Inbound
from bot.store.db import transaction
from bot.store.repository import utcnow
from handoff import auth
from handoff.models import AuditEntry
from tests.conftest import make_settings
from tests.handoff.conftest import (
    FAST_PASSWORDS,
    PASSWORD,
    launch_chromium,
    needs_chromium,
    serve_console,
    sign_in,
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / (
    "docs/screenshots" if os.environ.get("SANAD_UPDATE_SCREENSHOTS") == "1" else "test-artifacts"
)
REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"
MODULE = "check_job_offer"

pytestmark = needs_chromium


def edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


@pytest.fixture
def content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, root)
    monkeypatch.setenv("SANAD_CONTENT_DIR", str(root))
    return root


@pytest.fixture
async def production(sqlite_url: str, content: Path, embedded_nlu: Any,
                     safety_detector: Any) -> AsyncIterator[tuple[Sanad, str]]:
    # The services directory is approved first (as `sanad content approve services` would):
    # the partner directory of referrals checks its services against what is served.
    library = ContentLibrary.load(content, show_drafts=False)
    async with transaction(sqlite_url) as db:
        for item in library.review_items():
            if item.kind == "services":
                await decide(db, item, decision="approved", reviewer="bootstrap", comment="",
                             at=utcnow())
    # Content as in production (SANAD_SHOW_DRAFTS=0, what SANAD_ENV=production implies);
    # the environment stays "development" only so that the reviewer's login skips the TOTP
    # enrolment production enforces (tested with the login, tests/handoff/test_totp*).
    settings = replace(make_settings(sqlite_url), environment="development", show_drafts=False)
    sanad = await build(settings, nlu=embedded_nlu, safety=safety_detector)
    async with serve_console(sanad, accounts=False) as running:
        async with sanad.store.session() as db:
            await auth.create_account(db, FAST_PASSWORDS, name="rev", role="reviewer",
                                      password=PASSWORD)
        yield sanad, running.base
    await sanad.aclose()


async def no_accessibility_violations(page: Any) -> None:
    """axe-core (WCAG 2 A/AA rules: labels, contrast, landmarks, lang) finds nothing."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


async def topics(sanad: Sanad, user: str) -> list[str]:
    """The button ids of the English topic menu a user gets right now."""
    ref = sanad.store.user_ref("terminal", user)
    await sanad.engine.handle_turn(Inbound(user=ref, text="", button_id="lang:en"))
    turn = await sanad.engine.handle_turn(Inbound(user=ref, text="", button_id="menu:learn"))
    return [b.id for m in turn.outbound for b in m.buttons]


async def test_a_reviewer_approves_a_module_in_the_browser(
        production: tuple[Sanad, str], content: Path) -> None:
    from playwright.async_api import async_playwright, expect

    sanad, base = production
    assert sanad.content.gated and sanad.content.module(MODULE, "en") is None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    item_path = f"/console/content/module/{MODULE}/en"

    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="ar-EG")
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

        await sign_in(page, base, "rev")
        await page.wait_for_url("**/console/content")
        assert await page.get_attribute("html", "dir") == "rtl"
        cell = page.locator(f"tr[data-item='module:{MODULE}'] a[data-lang='en']")
        await expect(cell).to_have_attribute("data-status", "never")
        await expect(page.locator("#hidden-items")).to_contain_text(
            f"module {MODULE} (en): never approved")
        await page.screenshot(path=str(SCREENSHOTS / "content-review-list-ar.png"),
                              full_page=True)
        await no_accessibility_violations(page)

        await cell.click()
        await page.wait_for_url(f"**{item_path}")
        await expect(page.locator("#item-status")).to_have_attribute("data-status", "never")
        source_links = page.locator("ul.sources a[href^='http']")
        assert await source_links.count() >= 1, "sources are links"
        assert await source_links.first.get_attribute("rel") == "noopener noreferrer"
        await expect(page.locator("#diff .add").first).to_be_visible()  # all new
        assert await page.locator("#diff .del").count() == 0
        assert await page.get_attribute("label[for=review-comment]", "for") == "review-comment"

        await page.fill("#review-comment", "Checked against the IOM guidance.")
        await page.click("#approve")
        await page.wait_for_url(f"**{item_path}?notice=content_approved")
        await expect(page.locator("#item-status")).to_have_attribute("data-status", "approved")
        await expect(page.locator("#no-diff")).to_be_visible()
        await expect(page.locator("#history")).to_contain_text("Checked against the IOM")

        # The running bot serves it at once, in English only.
        assert [m.id for m in sanad.content.modules("en")] == [MODULE]
        assert sanad.content.modules("ar") == ()
        assert f"aw:open:{MODULE}" in await topics(sanad, "reader")

        # An editor changes the YAML afterwards.
        old_title = sanad.content.module(MODULE, "en").title  # type: ignore[union-attr]
        edit(content / "en" / "modules" / f"{MODULE}.yml",
             lambda d: d.update(title="A title nobody reviewed"))
        await page.goto(base + item_path + "?lang=en")
        await expect(page.locator("#item-status")).to_have_attribute("data-status", "stale")
        await expect(page.locator("#diff .del", has_text=old_title)).to_have_count(1)
        await expect(page.locator("#diff .add", has_text="A title nobody reviewed")
                     ).to_have_count(1)
        await page.screenshot(path=str(SCREENSHOTS / "content-review-diff-en.png"),
                              full_page=True)
        await no_accessibility_violations(page)

        # Asking for changes needs a comment; with one it is recorded.
        await page.click("#request-changes")
        await page.wait_for_url(f"**{item_path}?notice=content_invalid")
        await page.fill("#review-comment", "Keep the old title.")
        await page.click("#request-changes")
        await page.wait_for_url(f"**{item_path}?notice=content_changes")
        await expect(page.locator("#history")).to_contain_text("Keep the old title.")

        await page.goto(base + "/console/content")
        await expect(page.locator(f"tr[data-item='module:{MODULE}'] a[data-lang='en']")
                     ).to_have_attribute("data-status", "stale")
        await browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors

    # After a restart, production still serves the approved version (frozen), not the edit.
    restarted = ContentLibrary.load(content, show_drafts=False)
    async with sanad.store.session() as db:
        restarted.apply_approvals(await load_approvals(db))
        trail = (await db.scalars(select(AuditEntry.action).where(
            AuditEntry.actor == "rev"))).all()
    frozen = restarted.module(MODULE, "en")
    assert frozen is not None and frozen.title == old_title
    assert {"content.list", "content.view", "content.approve", "content.changes"} <= set(trail)
