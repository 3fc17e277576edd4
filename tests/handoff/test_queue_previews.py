"""The queue's last-message preview and per-case unread count (issue #20), on SQLite and the
real PostgreSQL: the count follows the holder's own reads of the thread, previews appear only
for cases the viewer may open, and every preview shown is an audited read of that case."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.app import Sanad
from handoff.models import AuditEntry
from handoff.policy import Principal
from handoff.previews import PREVIEW_CHARS, shorten
from handoff.queue import case_summary
from handoff.reads import Forbidden, previews_for
from tests.handoff.conftest import Browser, Console, make_case, write_message

ROW_RE = re.compile(r'<tr class="[^"]*">\s*<td><a class="alias" href="/console/cases/(\d+)"'
                    r'(.*?)</tr>', re.S)
UNREAD_RE = re.compile(r'data-unread="(\d+)"')



async def queue_rows(browser: Browser, query: str = "") -> dict[int, str]:
    """The queue page's rows by case id (the row's HTML)."""
    response = await browser.get("/console/queue" + query)
    assert response.status == 200
    return {int(m.group(1)): m.group(2) for m in ROW_RE.finditer(await response.text())}


def unread(row: str) -> int:
    found = UNREAD_RE.search(row)
    return int(found.group(1)) if found else 0


async def previews_audited(sanad: Sanad, actor: str) -> list[int | None]:
    async with sanad.store.session() as db:
        return list(await db.scalars(select(AuditEntry.case_id).where(
            AuditEntry.action == "case.preview", AuditEntry.actor == actor)
            .order_by(AuditEntry.id)))


async def test_the_unread_count_follows_the_holders_reads(inbox: Console) -> None:
    sanad = inbox.sanad
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    cw1, sup = await inbox.browser("cw1"), await inbox.browser("sup")

    assert "class=\"preview\"" not in (await queue_rows(cw1))[case_id], "no message yet"
    await write_message(sanad, case_id, "first message")
    await write_message(sanad, case_id, "they took my   passport\nat the airport")
    row = (await queue_rows(cw1))[case_id]
    assert unread(row) == 2, "never read by its holder: both messages are new"
    assert "they took my passport at the airport" in row, "the last message, folded"
    assert "first message" not in row

    assert (await cw1.get(f"/console/cases/{case_id}")).status == 200
    assert unread((await queue_rows(cw1))[case_id]) == 0, "read by the holder"

    await write_message(sanad, case_id, "are you there?")
    await write_message(sanad, case_id, "Sorry for the delay", sender="caseworker")
    row = (await queue_rows(cw1))[case_id]
    assert unread(row) == 1, "only the person's messages count"
    assert "Sorry for the delay" in row, "the preview is the thread's last message"

    assert (await sup.get(f"/console/cases/{case_id}")).status == 200
    assert unread((await queue_rows(sup))[case_id]) == 1, "a supervisor's read is not the holder's"
    assert (await cw1.get(f"/console/cases/{case_id}")).status == 200
    assert unread((await queue_rows(sup))[case_id]) == 0

    await write_message(sanad, case_id, "hello?")
    assert unread((await queue_rows(cw1))[case_id]) == 1
    api = await inbox.browser(headers={"Authorization": f"Bearer {inbox.tokens['cw1']}"})
    assert (await api.get(f"/api/cases/{case_id}/messages")).status == 200
    assert unread((await queue_rows(cw1))[case_id]) == 0, "reading the thread by API counts"


async def test_an_unclaimed_case_counts_from_anyones_read(inbox: Console) -> None:
    sanad = inbox.sanad
    case_id = await make_case(sanad)
    cw1, cw2 = await inbox.browser("cw1"), await inbox.browser("cw2")
    await write_message(sanad, case_id, "hello")
    assert unread((await queue_rows(cw2))[case_id]) == 1
    assert (await cw1.get(f"/console/cases/{case_id}")).status == 200
    assert unread((await queue_rows(cw2))[case_id]) == 0, "someone has seen it"


async def test_no_preview_of_a_case_the_viewer_may_not_open(inbox: Console) -> None:
    sanad = inbox.sanad
    theirs = await make_case(sanad, status="claimed", assignee="cw1")
    waiting = await make_case(sanad)
    await write_message(sanad, theirs, "PRIVATE-CANARY")
    await write_message(sanad, waiting, "waiting here")
    cw2 = await inbox.browser("cw2")
    for query in ("", "?view=closed", "?view=urgent", "?q=S-"):
        page = await cw2.get("/console/queue" + query)
        assert "PRIVATE-CANARY" not in await page.text(), query
    rows = await queue_rows(cw2)
    assert theirs not in rows and "waiting here" in rows[waiting]
    assert theirs not in await previews_audited(sanad, "cw2")

    # Even handed a case it may not open, the read gives no preview and audits nothing.
    async with sanad.store.session() as db:
        summaries = [await case_summary(db, theirs), await case_summary(db, waiting)]
        cw2_principal = Principal(id=0, name="cw2", role="caseworker", via="session")
        shown = await previews_for(db, sanad.store.cipher, cw2_principal,
                                   [s for s in summaries if s is not None])
        outreach = Principal(id=0, name="out", role="outreach", via="session")
        with pytest.raises(Forbidden):
            await previews_for(db, sanad.store.cipher, outreach, [])
    assert set(shown) == {waiting}
    async with sanad.store.session() as db:
        assert (await db.scalars(select(AuditEntry.case_id).where(
            AuditEntry.action == "case.preview", AuditEntry.actor == "cw2",
            AuditEntry.case_id == theirs))).first() is None


async def test_each_preview_shown_is_an_audited_read(inbox: Console) -> None:
    sanad = inbox.sanad
    first, second = await make_case(sanad), await make_case(sanad, priority="urgent")
    silent = await make_case(sanad)
    await write_message(sanad, first, "one")
    await write_message(sanad, second, "two")
    sup = await inbox.browser("sup")
    before = await previews_audited(sanad, "sup")
    page = await sup.get("/console/queue")
    assert (await previews_audited(sanad, "sup"))[len(before):] == sorted([first, second]), (
        "one row per case whose last message was shown; none for a case without messages")
    assert silent not in await previews_audited(sanad, "sup")

    version = re.search(r'data-version="([0-9a-f]+)"', await page.text())
    assert version
    audited = len(await previews_audited(sanad, "sup"))
    unchanged = await sup.get(f"/console/queue/poll?v={version.group(1)}")
    assert "html" not in await unchanged.json()
    assert len(await previews_audited(sanad, "sup")) == audited, "nothing sent, nothing read"
    await write_message(sanad, first, "three")
    changed = await (await sup.get(f"/console/queue/poll?v={version.group(1)}")).json()
    assert "three" in changed["html"]
    assert len(await previews_audited(sanad, "sup")) == audited + 2


def test_a_long_message_is_cut_on_one_line() -> None:
    text = "word " * 40
    short = shorten(text)
    assert len(short) <= PREVIEW_CHARS and short.endswith("…") and "\n" not in short
    assert shorten("  a\n b  ") == "a b"
