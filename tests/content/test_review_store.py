"""Review decisions in the database (SQLite and PostgreSQL), the production start-up, and the
``sanad content status|approve|reviewer`` / ``check --production`` commands."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import build
from bot.cli import main
from bot.content import ContentLibrary
from bot.content.review import Item
from bot.content.review_store import (
    ReviewError,
    decide,
    grant,
    is_granted,
    load_approvals,
    refresh,
    revoke,
)
from bot.store.db import transaction
from bot.store.repository import utcnow
from handoff.models import AuditEntry, Caseworker
from tests.conftest import make_settings

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"
MODULE = "check_job_offer"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, root)
    monkeypatch.setenv("SANAD_CONTENT_DIR", str(root))
    return root


@pytest.fixture
async def db_url(database_url: str) -> AsyncIterator[str]:
    async with transaction(database_url):
        pass  # migrated
    yield database_url


def item(library: ContentLibrary, key: tuple[str, str, str]) -> Item:
    return next(i for i in library.review_items() if i.key == key)


async def test_an_approval_round_trips_and_serves_the_module(db_url: str, content: Path) -> None:
    library = ContentLibrary.load(content, show_drafts=False)
    target = item(library, ("module", MODULE, "en"))
    async with transaction(db_url) as db:
        await decide(db, target, decision="approved", reviewer="Amal (IOM)", comment="ok",
                     at=T0, expected_digest=target.digest)
    async with transaction(db_url) as db:
        approvals = await refresh(library, db)
    (review,) = approvals.reviews
    assert (review.digest, review.reviewer, review.comment) == (target.digest, "Amal (IOM)", "ok")
    assert review.snapshot == target.data
    assert [m.id for m in library.modules("en")] == [MODULE]


async def test_a_decision_on_a_version_nobody_read_is_refused(db_url: str, content: Path) -> None:
    library = ContentLibrary.load(content, show_drafts=False)
    target = item(library, ("module", MODULE, "en"))
    async with transaction(db_url) as db:
        with pytest.raises(ReviewError, match="changed"):
            await decide(db, target, decision="approved", reviewer="Amal", comment="",
                         at=utcnow(), expected_digest="f" * 64)
        with pytest.raises(ReviewError, match="what should change"):
            await decide(db, target, decision="changes_requested", reviewer="Amal",
                         comment="  ", at=utcnow())
        with pytest.raises(ReviewError, match="decision"):
            await decide(db, target, decision="publish", reviewer="Amal", comment="",
                         at=utcnow())
    async with transaction(db_url) as db:
        assert (await load_approvals(db)).reviews == ()


async def test_changes_requested_after_approval_withdraw_it(db_url: str, content: Path) -> None:
    library = ContentLibrary.load(content, show_drafts=False)
    target = item(library, ("module", MODULE, "fr"))
    async with transaction(db_url) as db:
        await decide(db, target, decision="approved", reviewer="Amal", comment="", at=T0)
        await decide(db, target, decision="changes_requested", reviewer="Omar",
                     comment="la source est périmée", at=T0 + timedelta(minutes=1))
    async with transaction(db_url) as db:
        await refresh(library, db)
    assert library.module(MODULE, "fr") is None


async def test_the_review_capability_is_granted_and_revoked(db_url: str) -> None:
    async with transaction(db_url) as db:
        account = Caseworker(name="sup1", role="supervisor", password_hash=None, active=True,
                             created_at=utcnow())
        db.add(account)
        await db.flush()
        assert not await is_granted(db, account.id)
        assert await grant(db, account.id, by="adm", at=utcnow())
        assert not await grant(db, account.id, by="adm", at=utcnow())
        assert await is_granted(db, account.id)
        assert await revoke(db, account.id)
        assert not await is_granted(db, account.id)
        assert not await revoke(db, account.id)


async def test_production_start_applies_approvals_and_warns_what_is_hidden(
        sqlite_url: str, content: Path, embedded_nlu: object, safety_detector: object,
        caplog: pytest.LogCaptureFixture) -> None:
    library = ContentLibrary.load(content, show_drafts=False)
    async with transaction(sqlite_url) as db:
        await decide(db, item(library, ("module", MODULE, "ar")), decision="approved",
                     reviewer="Amal", comment="", at=utcnow())
    settings = replace(make_settings(sqlite_url), environment="production", show_drafts=False)
    with caplog.at_level(logging.WARNING, logger="bot.content.review_store"):
        sanad = await build(settings, nlu=embedded_nlu, safety=safety_detector)  # type: ignore[arg-type]
    try:
        assert [m.id for m in sanad.content.modules("ar")] == [MODULE]
        assert sanad.content.modules("en") == ()
        assert not sanad.content.screening_offered
        warning = "\n".join(r.getMessage() for r in caplog.records)
        assert "production hides" in warning
        assert "module what_is_trafficking (en): never approved" in warning
        assert "screening questionnaire: not approved in ar, en, fr" in warning
        assert "only the verified emergency numbers are listed" in warning
        assert f"module {MODULE} (ar)" not in warning
    finally:
        await sanad.aclose()


# --- command line ------------------------------------------------------------------------------
@pytest.fixture
def cli_env(sqlite_url: str, content: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SANAD_SECRET_KEY", "test-secret-key-that-is-long-enough")
    monkeypatch.delenv("SANAD_ENV", raising=False)
    return sqlite_url


def test_check_production_fails_on_an_empty_library(
        cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["content", "check"]) == 0
    capsys.readouterr()
    assert main(["content", "check", "--production"]) == 1
    err = capsys.readouterr().err
    assert "production would serve no awareness module in ar" in err
    assert "screening questionnaire" in err and "services.yml" in err


def test_status_and_an_audited_approval_from_the_command_line(
        cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["content", "status", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["items"] and {i["status"] for i in before["items"]} == {"never"}
    assert main(["content", "approve", MODULE, "--lang", "en", "--reviewer", "Amal (IOM)"]) == 0
    capsys.readouterr()
    assert main(["content", "status", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    approved = [i for i in after["items"] if i["status"] == "approved"]
    assert [(i["kind"], i["id"], i["lang"], i["approved_by"]) for i in approved] == [
        ("module", MODULE, "en", "Amal (IOM)")]
    assert f"module {MODULE} (en): never approved" not in after["hidden"]
    assert main(["content", "status"]) == 0
    text = capsys.readouterr().out
    assert "1 approved, 0 changed since approval" in text
    assert main(["content", "approve", "nope", "--lang", "en", "--reviewer", "x"]) == 1


def test_cli_approval_and_grant_are_audited(cli_env: str) -> None:
    async def add_account() -> None:
        async with transaction(cli_env) as db:
            db.add(Caseworker(name="sup1", role="supervisor", password_hash=None, active=True,
                              created_at=utcnow()))

    async def trail() -> list[tuple[str, str, str | None]]:
        async with transaction(cli_env) as db:
            rows = (await db.execute(select(AuditEntry.actor, AuditEntry.action,
                                            AuditEntry.detail).order_by(AuditEntry.id))).all()
        return [(r[0], r[1], r[2]) for r in rows]

    asyncio.run(add_account())
    assert main(["content", "approve", "services", "--lang", "ar", "--reviewer", "Amal"]) == 0
    assert main(["content", "reviewer", "sup1"]) == 0
    assert main(["content", "reviewer", "nobody"]) == 1
    assert [r for r in asyncio.run(trail()) if r[1].startswith("content.")] == [
        ("cli", "content.approve", "services:services:ar"), ("cli", "content.grant", "sup1")]


async def test_an_unapproved_questionnaire_is_never_asked(
        sqlite_url: str, content: Path, embedded_nlu: object, safety_detector: object) -> None:
    from bot.messages import Inbound

    settings = replace(make_settings(sqlite_url), environment="production", show_drafts=False)
    sanad = await build(settings, nlu=embedded_nlu, safety=safety_detector)  # type: ignore[arg-type]
    try:
        user = sanad.store.user_ref("terminal", "asker")
        await sanad.engine.handle_turn(Inbound(user=user, text="", button_id="lang:en"))
        turn = await sanad.engine.handle_turn(Inbound(user=user, text="", button_id="menu:check"))
        text = "\n".join(m.text for m in turn.outbound)
        assert "still being reviewed" in text and "Shall we start?" not in text
        assert not any(b.id.startswith("sc:consent") for m in turn.outbound for b in m.buttons)

        async with sanad.store.session() as db:
            for entry in sanad.content.review_items():
                if entry.kind in ("screening", "services"):
                    await decide(db, entry, decision="approved", reviewer="Amal", comment="",
                                 at=T0)
            await refresh(sanad.content, db)
        turn = await sanad.engine.handle_turn(Inbound(user=user, text="", button_id="menu:check"))
        assert any(b.id == "sc:consent:yes" for m in turn.outbound for b in m.buttons)
    finally:
        await sanad.aclose()
