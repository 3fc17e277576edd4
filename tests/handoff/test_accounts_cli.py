"""``sanad caseworker invite|token|deactivate|reactivate|revoke|reset-totp`` from the shell."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.store.db import transaction
from handoff import auth
from handoff.models import ApiToken, AuditEntry, Caseworker
from tests.conftest import SECRET
from tests.handoff.conftest import PASSWORD


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", database)
    monkeypatch.setenv("SANAD_SECRET_KEY", SECRET.decode())
    return database


def sanad(*argv: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(list(argv))


def rows(url: str, statement: object) -> list[object]:
    async def run() -> list[object]:
        async with transaction(url) as db:
            return list(await db.scalars(statement))  # type: ignore[call-overload]

    return asyncio.run(run())


def test_invite_prints_a_one_time_link_and_the_account_waits_for_approval(
    url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    assert sanad("caseworker", "invite", "mona", "--role", "caseworker",
                 "--base-url", "https://console.example.org/") == 0
    out, err = capsys.readouterr()
    assert out.startswith("https://console.example.org/console/invite/")
    assert "supervisor must approve" in err
    account = rows(url, select(Caseworker).where(Caseworker.name == "mona"))[0]
    assert isinstance(account, Caseworker)
    assert account.password_hash is None and account.approved_at is None
    assert sanad("caseworker", "invite", "mona", "--role", "caseworker") == 1


def test_tokens_with_scopes_and_days_and_the_lifecycle_commands(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert sanad("caseworker", "add", "cw1", "--role", "caseworker", "--password-stdin",
                 stdin=PASSWORD + "\n", monkeypatch=monkeypatch) == 0
    assert sanad("caseworker", "token", "cw1", "--scope", "cases:read", "--days", "7") == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    stored = rows(url, select(ApiToken))
    assert len(stored) == 1 and isinstance(stored[0], ApiToken)
    assert stored[0].scopes == "cases:read" and stored[0].token_hash == auth.digest(token)
    assert stored[0].expires_at is not None
    assert sanad("caseworker", "deactivate", "cw1") == 0
    assert rows(url, select(ApiToken.revoked_at))[0] is not None
    assert sanad("caseworker", "token", "cw1") == 1, "no token for a deactivated account"
    assert sanad("caseworker", "reactivate", "cw1") == 0
    assert "waits for a supervisor" in capsys.readouterr().out
    assert sanad("caseworker", "revoke", "cw1") == 0
    assert sanad("caseworker", "reset-totp", "cw1") == 0
    actions = rows(url, select(AuditEntry.action).order_by(AuditEntry.id))
    assert actions[-4:] == ["account.deactivate", "account.reactivate", "account.revoke",
                            "account.totp_reset"]
    assert sanad("audit", "verify") == 0
