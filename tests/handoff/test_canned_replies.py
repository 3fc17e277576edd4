"""Canned replies managed in the console (issue #20), on SQLite and the real PostgreSQL:
seeded from ``handoff/canned_replies.yml``, supervisors add, edit, retire and restore them per
reply language (CSRF-checked, audited without their wording), and caseworkers pick the live
ones in the case's language, with or without JavaScript."""

from __future__ import annotations

import html
import re

from sqlalchemy import select, update

from bot.app import Sanad
from bot.store.models import Case
from handoff.models import AuditEntry, CannedReplyText
from handoff.relay import thread
from handoff.texts import REPLY_LANGUAGES, load_canned_replies
from tests.handoff.conftest import Browser, Console, make_case

OPTION_RE = re.compile(r'<option value="([a-z0-9_]+)" data-text="([^"]*)">([^<]*)</option>')



async def offered(browser: Browser, case_id: int) -> dict[str, tuple[str, str]]:
    """The case page's canned replies: id -> (title, text sent)."""
    page = await browser.get(f"/console/cases/{case_id}")
    assert page.status == 200
    return {m.group(1): (html.unescape(m.group(3)), html.unescape(m.group(2)))
            for m in OPTION_RE.finditer(await page.text())}


async def text_id(sanad: Sanad, key: str, language: str) -> int:
    async with sanad.store.session() as db:
        found = await db.scalar(select(CannedReplyText.id).where(
            CannedReplyText.key == key, CannedReplyText.language == language))
    assert found is not None, (key, language)
    return int(found)


async def canned_audit(sanad: Sanad) -> list[tuple[str, str, str | None]]:
    async with sanad.store.session() as db:
        rows = await db.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.detail)
                                .where(AuditEntry.action.like("canned.%"))
                                .order_by(AuditEntry.id))
        return [(r.actor, r.action, r.detail) for r in rows]


async def test_seeded_from_the_yaml_and_offered_in_the_case_language(inbox: Console) -> None:
    sanad = inbox.sanad
    seed = load_canned_replies()
    case_id = await make_case(sanad, status="claimed", assignee="cw1")  # an Arabic case
    cw1 = await inbox.browser("cw1")
    await cw1.get(f"/console/cases/{case_id}?lang=en")
    choices = await offered(cw1, case_id)
    assert list(choices) == [r.id for r in seed]
    greeting = next(r for r in seed if r.id == "greeting")
    assert choices["greeting"] == (greeting.title["en"], greeting.text["ar"]), (
        "titled in the console's language, sent in the case's")
    async with sanad.store.session() as db:
        rows = list(await db.scalars(select(CannedReplyText)))
    assert len(rows) == len(seed) * len(REPLY_LANGUAGES), "every reply in every language"
    assert {r.updated_by for r in rows} == {"canned_replies.yml"}


async def test_supervisors_manage_replies_per_language(inbox: Console) -> None:
    sanad = inbox.sanad
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    sup, cw1 = await inbox.browser("sup"), await inbox.browser("cw1")
    assert (await sup.get("/console/canned")).status == 200

    added = await sup.post("/console/canned", {
        "key": "documents", "language": "ar", "title": "الأوراق",
        "text": "متقلقش، ممكن نساعدك تعرف حقوقك بخصوص الباسبور."})
    assert added.headers["Location"] == "/console/canned?notice=canned_added"
    assert "documents" in await offered(cw1, case_id)
    again = await sup.post("/console/canned", {"key": "documents", "language": "ar",
                                               "title": "x", "text": "y"})
    assert again.headers["Location"].endswith("notice=canned_exists")
    for bad in ({"key": "Bad Key!", "language": "ar", "title": "t", "text": "x"},
                {"key": "fine", "language": "de", "title": "t", "text": "x"},
                {"key": "fine", "language": "ar", "title": "", "text": "x"},
                {"key": "fine", "language": "ar", "title": "t", "text": "x" * 3001}):
        refused = await sup.post("/console/canned", bad)
        assert refused.headers["Location"].endswith("notice=canned_invalid"), bad

    safe_ar = await text_id(sanad, "safe_now", "ar")
    edited = "إنت في أمان دلوقتي؟ لو في خطر كلم 122."
    await sup.get("/console/canned")
    saved = await sup.post(f"/console/canned/{safe_ar}/edit", {"title": "أمان", "text": edited})
    assert saved.headers["Location"].endswith("notice=canned_saved")
    assert (await offered(cw1, case_id))["safe_now"][1] == edited

    await sup.post(f"/console/canned/{safe_ar}/retire")
    assert "safe_now" not in await offered(cw1, case_id), (
        "retired in Arabic: not offered for an Arabic case, not even in another language")
    english_case = await make_case(sanad, status="claimed", assignee="cw1")
    async with sanad.store.session() as db:
        await db.execute(update(Case).where(Case.id == english_case).values(language="en"))
    assert "safe_now" in await offered(cw1, english_case), "the English text is still live"
    await sup.post(f"/console/canned/{safe_ar}/restore")
    assert "safe_now" in await offered(cw1, case_id)

    assert await canned_audit(sanad) == [
        ("sup", "canned.add", "documents/ar"), ("sup", "canned.edit", "safe_now/ar"),
        ("sup", "canned.retire", "safe_now/ar"), ("sup", "canned.restore", "safe_now/ar")]
    async with sanad.store.session() as db:
        details = list(await db.scalars(select(AuditEntry.detail)))
    assert not any(d and ("122" in d or "الأوراق" in d) for d in details), "no wording"


async def test_only_supervisors_with_the_csrf_token(inbox: Console) -> None:
    sanad = inbox.sanad
    sup, cw1 = await inbox.browser("sup"), await inbox.browser("cw1")
    assert (await cw1.get("/console/canned")).status == 403
    await sup.get("/console/canned")  # the first read seeds the table
    greeting = await text_id(sanad, "greeting", "en")
    for browser in (cw1, await inbox.browser("out"), await inbox.browser("adm")):
        await browser.get("/console/account")
        refused = await browser.post(f"/console/canned/{greeting}/retire")
        assert refused.status == 403
    forged = await sup.post(f"/console/canned/{greeting}/retire", csrf="not-the-token")
    assert forged.status == 403
    anonymous = await inbox.browser()
    assert (await anonymous.get("/console/canned")).status == 302
    assert (await sup.post("/console/canned/999999/retire")).status == 404
    async with sanad.store.session() as db:
        row = await db.get(CannedReplyText, greeting)
        assert row is not None and row.retired_at is None
    assert await canned_audit(sanad) == []


async def test_a_caseworker_sends_a_picked_reply_without_javascript(inbox: Console) -> None:
    sanad = inbox.sanad
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    sup, cw1 = await inbox.browser("sup"), await inbox.browser("cw1")
    await sup.get("/console/canned")
    closing = await text_id(sanad, "closing", "ar")
    await sup.post(f"/console/canned/{closing}/edit", {"title": "ختام", "text": "مع السلامة."})
    await cw1.get(f"/console/cases/{case_id}")
    sent = await cw1.post(f"/console/cases/{case_id}/reply", {"canned": "closing", "text": ""})
    assert sent.headers["Location"].endswith("notice=sent")
    async with sanad.store.session() as db:
        messages = await thread(db, cipher=sanad.store.cipher, case_id=case_id)
    assert [m.text for m in messages] == ["مع السلامة."], "the edited wording is what goes"

    await sup.post(f"/console/canned/{closing}/retire")
    await cw1.get(f"/console/cases/{case_id}")
    refused = await cw1.post(f"/console/cases/{case_id}/reply", {"canned": "closing"})
    assert refused.headers["Location"].endswith("notice=invalid"), "a retired reply is gone"
