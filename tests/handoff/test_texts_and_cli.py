"""Console text and canned replies are complete data; the CLI creates accounts and tokens."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.content import ContentLibrary
from bot.store.db import create_engine
from handoff import auth
from handoff.actions import OUTCOMES
from handoff.cli import register
from handoff.models import ROLES, ApiToken, Caseworker
from handoff.texts import CONSOLE_LANGUAGES, REPLY_LANGUAGES, ConsoleText, load_canned_replies
from tests.conftest import make_settings


def test_console_text_is_complete_in_arabic_and_english() -> None:
    texts = ConsoleText.load()
    assert texts.problems() == []
    screening = ContentLibrary.load().screening
    codes = {
        "indicator": [q.id for q in screening.questions] + ["minor"],
        "outcome": list(OUTCOMES), "role": list(ROLES),
        "priority": ["urgent", "high", "normal"], "risk": ["low", "medium", "high", "urgent"],
        "status": ["waiting", "claimed", "transferred", "closed"],
    }
    for lang in CONSOLE_LANGUAGES:
        for group, values in codes.items():
            for code in values:
                assert f"{group}.{code}" in texts.texts[lang], f"{lang}: {group}.{code}"


def test_canned_replies_have_every_language() -> None:
    replies = load_canned_replies()
    assert len(replies) >= 3
    for reply in replies:
        assert all(reply.text[lang].strip() for lang in REPLY_LANGUAGES)


def test_broken_canned_replies_fail_at_load(tmp_path: Path) -> None:
    bad = tmp_path / "canned.yml"
    bad.write_text("replies:\n  - id: x\n    title: {ar: a, en: b}\n    text: {ar: a}\n",
                   encoding="utf-8")
    with pytest.raises(ValueError, match=r"text\.en"):
        load_canned_replies(bad)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sanad")
    register(top.add_subparsers(dest="command", required=True))
    return top


async def test_cli_adds_an_account_and_prints_a_working_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    args = parser().parse_args(["caseworker", "add", "amal", "--role", "supervisor",
                                "--password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert await args.handler(args, settings) == 0
    args = parser().parse_args(["caseworker", "token", "amal"])
    assert await args.handler(args, settings) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]

    engine = create_engine(settings.database_url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as db, db.begin():
        principal = await auth.principal_for_token(db, token)
        stored = list(await db.scalars(select(ApiToken.token_hash)))
        account = await db.scalar(select(Caseworker).where(Caseworker.name == "amal"))
    await engine.dispose()
    assert principal is not None and (principal.name, principal.role) == ("amal", "supervisor")
    assert stored == [auth.digest(token)] and token not in stored
    assert account is not None and account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (["caseworker", "add", "x", "--role", "caseworker", "--password-stdin"], "short\n",
     "at least 12"),
    (["caseworker", "add", "bad name!", "--role", "admin", "--password-stdin"],
     "a long enough password\n", "the name must"),
    (["caseworker", "token", "nobody"], "", "no account"),
])
async def test_cli_refuses_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    argv: list[str], stdin: str, message: str,
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    args = parser().parse_args(argv)
    assert await args.handler(args, settings) == 1
    assert message in capsys.readouterr().err


async def test_cli_prompts_twice_without_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter(["first password 123", "other password 456"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    args = parser().parse_args(["caseworker", "add", "amal", "--role", "caseworker"])
    assert await args.handler(args, settings) == 1, "the two passwords differ"
