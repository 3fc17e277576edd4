"""Who may review content, CSRF, stale versions and the audit trail of ``/console/content``
(HTTP level; the whole workflow in a browser is test_content_review_browser.py)."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import build
from bot.content import ContentLibrary
from bot.content.review_models import ContentReview
from bot.content.review_store import decide, grant
from bot.store.db import transaction
from bot.store.repository import utcnow
from handoff import auth
from handoff.console_content import refresh_seconds
from handoff.models import AuditEntry, Caseworker
from tests.conftest import make_settings
from tests.handoff.conftest import FAST_PASSWORDS, PASSWORD, Console, start_console

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"

MODULE = "check_job_offer"
ITEM = f"/console/content/module/{MODULE}/fr"


async def add_reviewer(console: Console, name: str = "rev") -> None:
    async with console.sanad.store.session() as db:
        await auth.create_account(db, FAST_PASSWORDS, name=name, role="reviewer",
                                  password=PASSWORD)


async def reviews(console: Console) -> list[tuple[str, str, str]]:
    async with console.sanad.store.session() as db:
        rows = (await db.execute(select(ContentReview.item_id, ContentReview.decision,
                                        ContentReview.reviewer))).all()
    return [(r[0], r[1], r[2]) for r in rows]


async def test_only_reviewers_reach_the_review_pages(console: Console) -> None:
    anonymous = await console.browser()
    response = await anonymous.get("/console/content")
    assert response.status == 302 and response.headers["Location"].startswith("/console/login")
    for name in ("cw1", "sup", "out", "adm"):
        other = await console.browser(login_as=name)
        assert (await other.get("/console/content")).status == 403, name
        assert (await other.get(ITEM)).status == 403, name


async def test_a_reviewer_lands_on_the_content_list_and_sees_no_cases(console: Console) -> None:
    await add_reviewer(console)
    reviewer = await console.browser()
    await reviewer.get("/console/login")
    response = await reviewer.post("/console/login", {"name": "rev", "password": PASSWORD})
    assert response.headers["Location"] == "/console/content"
    page = await reviewer.get("/console/content")
    html = await page.text()
    assert page.status == 200 and f'data-item="module:{MODULE}"' in html
    assert 'href="/console/content"' in html  # the navigation link
    assert (await reviewer.get("/console/queue")).status == 403
    api = await reviewer.get("/api/cases")
    assert api.status == 403


async def test_a_supervisor_granted_the_capability_may_review(console: Console) -> None:
    supervisor = await console.browser(login_as="sup")
    assert (await supervisor.get(ITEM)).status == 403
    async with console.sanad.store.session() as db:
        account = await db.scalar(select(Caseworker).where(Caseworker.name == "sup"))
        assert account is not None
        await grant(db, account.id, by="adm", at=utcnow())
    page = await supervisor.get(ITEM)
    assert page.status == 200
    assert "/console/queue" in await page.text(), "the supervisor keeps their own pages"
    digest = (await page.text()).split('name="digest" value="', 1)[1].split('"', 1)[0]
    response = await supervisor.post(ITEM, {"decision": "approved", "digest": digest})
    assert response.status == 303
    assert response.headers["Location"] == ITEM + "?notice=content_approved"
    assert await reviews(console) == [(MODULE, "approved", "sup")]


async def test_a_decision_needs_the_csrf_token_and_the_version_read(console: Console) -> None:
    await add_reviewer(console)
    reviewer = await console.browser(login_as="rev")
    page = await reviewer.get(ITEM)
    digest = (await page.text()).split('name="digest" value="', 1)[1].split('"', 1)[0]
    forged = await reviewer.post(ITEM, {"decision": "approved", "digest": digest}, csrf="x")
    assert forged.status == 403
    stale = await reviewer.post(ITEM, {"decision": "approved", "digest": "0" * 64})
    assert stale.headers["Location"] == ITEM + "?notice=content_changed"
    silent = await reviewer.post(ITEM, {"decision": "changes_requested", "digest": digest})
    assert silent.headers["Location"] == ITEM + "?notice=content_invalid"
    assert await reviews(console) == []
    asked = await reviewer.post(ITEM, {"decision": "changes_requested", "digest": digest,
                                       "comment": "La source 2 est introuvable."})
    assert asked.headers["Location"] == ITEM + "?notice=content_changes"
    assert await reviews(console) == [(MODULE, "changes_requested", "rev")]
    history = await (await reviewer.get(ITEM)).text()
    assert "La source 2 est introuvable." in history


async def test_views_and_decisions_are_audited(console: Console) -> None:
    await add_reviewer(console)
    reviewer = await console.browser(login_as="rev")
    await reviewer.get("/console/content")
    page = await reviewer.get(ITEM)
    digest = (await page.text()).split('name="digest" value="', 1)[1].split('"', 1)[0]
    await reviewer.post(ITEM, {"decision": "approved", "digest": digest})
    async with console.sanad.store.session() as db:
        trail = (await db.execute(select(AuditEntry.action, AuditEntry.detail)
                                  .where(AuditEntry.actor == "rev")
                                  .order_by(AuditEntry.id))).all()
    actions = [(a, d) for a, d in trail if a.startswith("content.")]
    assert actions == [("content.list", None),  # landing after login
                       ("content.list", None), ("content.view", f"module:{MODULE}:fr"),
                       ("content.approve", f"module:{MODULE}:fr")]


async def test_unknown_items_are_404(console: Console) -> None:
    await add_reviewer(console)
    reviewer = await console.browser(login_as="rev")
    for path in ("/console/content/module/nope/en", f"/console/content/module/{MODULE}/de",
                 "/console/content/quiz/screening/en"):
        assert (await reviewer.get(path)).status == 404, path


async def test_every_item_and_language_renders(console: Console) -> None:
    await add_reviewer(console)
    reviewer = await console.browser(login_as="rev")
    for path in ("/console/content/screening/screening/ar",
                 "/console/content/services/services/fr",
                 f"/console/content/module/{MODULE}/ar?lang=en"):
        page = await reviewer.get(path)
        assert page.status == 200, path
        assert 'id="approve"' in await page.text()


async def test_an_approval_given_elsewhere_arrives_by_the_periodic_refresh(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        embedded_nlu: Any, safety_detector: Any) -> None:
    root = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, root)
    monkeypatch.setenv("SANAD_CONTENT_DIR", str(root))
    monkeypatch.setenv("SANAD_CONTENT_REFRESH_SECONDS", "0.05")
    library = ContentLibrary.load(root, show_drafts=False)
    async with transaction(sqlite_url) as db:  # the partner directory needs services served
        for entry in library.review_items():
            if entry.kind == "services":
                await decide(db, entry, decision="approved", reviewer="b", comment="",
                             at=utcnow())
    sanad = await build(replace(make_settings(sqlite_url), show_drafts=False),
                        nlu=embedded_nlu, safety=safety_detector)
    running = await start_console(sanad)
    try:
        assert sanad.content.module(MODULE, "ar") is None
        target = next(i for i in library.review_items() if i.key == ("module", MODULE, "ar"))
        async with transaction(sqlite_url) as db:  # another process, another connection
            await decide(db, target, decision="approved", reviewer="Amal", comment="",
                         at=utcnow())
        for _ in range(400):  # a wait for the background task, not a speed requirement
            if sanad.content.module(MODULE, "ar") is not None:
                break
            await asyncio.sleep(0.05)
        assert sanad.content.module(MODULE, "ar") is not None
    finally:
        await running.close()
        await running.server.close()
        await sanad.aclose()


def test_the_refresh_interval_is_read_from_the_environment() -> None:
    assert refresh_seconds({}) == 30.0
    assert refresh_seconds({"SANAD_CONTENT_REFRESH_SECONDS": "5"}) == 5.0
    assert refresh_seconds({"SANAD_CONTENT_REFRESH_SECONDS": "-1"}) == 30.0
    assert refresh_seconds({"SANAD_CONTENT_REFRESH_SECONDS": "soon"}) == 30.0


async def test_only_web_addresses_become_links(console: Console, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor's mistake (or worse) in a source URL never becomes a clickable script."""
    import yaml

    root = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, root)
    path = root / "fr" / "modules" / f"{MODULE}.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["sources"][0]["url"] = "javascript:alert(1)"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(console.sanad.content, "_root", root)
    await add_reviewer(console)
    reviewer = await console.browser(login_as="rev")
    html = await (await reviewer.get(ITEM)).text()
    assert 'href="javascript:' not in html
    assert 'href="https://' in html  # the other sources still are links
