"""Sensitive reads carry the client address and the stated reason; supervisors (only) browse
the trail, filtered; ``sanad audit verify`` exits 1 on a broken chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.cli import main
from handoff.models import AuditEntry
from tests.conftest import SECRET
from tests.handoff.conftest import Console, make_case


async def last_row(console: Console) -> AuditEntry:
    async with console.sanad.store.session() as db:
        row = await db.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
        assert row is not None
        return row


async def test_case_reads_record_the_client_and_the_reason(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw1")
    sup = await console.browser(login_as="sup")
    bearer = {"Authorization": f"Bearer {console.tokens['sup']}",
              "X-Access-Reason": "safeguarding"}
    assert (await sup.get(f"/api/cases/{case_id}", headers=bearer)).status == 200
    row = await last_row(console)
    assert (row.actor, row.action, row.case_id) == ("sup", "api.case", case_id)
    assert row.client == "127.0.0.1" and row.reason == "safeguarding"
    assert (await sup.get(f"/console/cases/{case_id}?reason=supervision")).status == 200
    row = await last_row(console)
    assert (row.action, row.reason) == ("case.view", "supervision")
    assert (await sup.get(f"/console/cases/{case_id}?reason=my+cousin+asked")).status == 200
    assert (await last_row(console)).reason is None, "only fixed codes, never free text"


async def test_supervisors_browse_the_trail_and_nobody_else_does(console: Console) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw1")
    other = await make_case(console.sanad, status="claimed", assignee="cw2")
    cw1 = await console.browser(login_as="cw1")
    cw2 = await console.browser(login_as="cw2")
    await cw1.get(f"/console/cases/{case_id}")
    await cw2.get(f"/console/cases/{other}")
    for name in ("cw1", "out", "adm"):
        browser = await console.browser(login_as=name)
        assert (await browser.get("/console/audit")).status == 403, name
    sup = await console.browser(login_as="sup")
    page = await sup.get("/console/audit?staff=cw1")
    html = await page.text()
    assert page.status == 200 and "case.view" in html
    assert "cw2" not in html.split("<tbody>")[1]
    by_case = await (await sup.get(f"/console/audit?case={other}")).text()
    rows = by_case.split("<tbody>")[1]
    assert f">{other}<" in rows and f">{case_id}<" not in rows
    by_action = (await (await sup.get("/console/audit?action=login")).text()).split("<tbody>")[1]
    assert "login" in by_action and "case.view" not in by_action
    row = await last_row(console)
    assert (row.actor, row.action) == ("sup", "audit.view")


def run_cli(argv: list[str], url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SANAD_SECRET_KEY", SECRET.decode())
    return main(argv)


def test_audit_verify_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from bot.store.db import transaction
    from handoff import audit

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def write() -> None:
        for n in range(3):
            async with transaction(url) as db:
                audit.record(db, "sup", "case.view", case_id=n)

    async def tamper() -> None:
        async with transaction(url) as db:
            await db.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="x"))

    asyncio.run(write())
    assert run_cli(["audit", "verify"], url, monkeypatch) == 0
    assert "intact: 3 rows" in capsys.readouterr().out
    asyncio.run(tamper())
    assert run_cli(["audit", "verify", "--json"], url, monkeypatch) == 1
    out = capsys.readouterr().out
    assert '"ok":false' in out and '"seq":2' in out
