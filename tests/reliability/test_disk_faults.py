"""A full disk and a read-only SQLite database: refuse cleanly, keep what was there, recover.

CI runs as root, so ``chmod`` does not stop writes: a full disk is ``PRAGMA max_page_count``
(the next write that needs a page fails with SQLITE_FULL) and a read-only database is
``PRAGMA query_only`` on every connection, or the ``mode=ro`` URI for a child process.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import event, func, select

from bot.app import Sanad
from bot.store.models import ProcessedInbound
from nlu import EmbeddedNLU
from tests.reliability.support import REPO, sanad_env
from tests.telegram.conftest import Harness, bot_core, running, telegram_settings
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.updates import Updates

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@asynccontextmanager
async def every_connection(sanad: Sanad, *pragmas: str) -> AsyncIterator[None]:
    """Run ``pragmas`` on every new connection until the block ends (the pool is renewed)."""
    engine = sanad.store.engine

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)
    await engine.dispose()
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "connect", on_connect)
        await engine.dispose()


def disk_full(sanad: Sanad) -> Any:
    # max_page_count never goes below the current size: 1 means "no page more than now"
    return every_connection(sanad, "PRAGMA max_page_count = 1")


def read_only(sanad: Sanad) -> Any:
    return every_connection(sanad, "PRAGMA query_only = 1")


def integrity(url: str) -> str:
    conn = sqlite3.connect(url.split("///", 1)[1])
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


async def processed(sanad: Sanad) -> int:
    async with sanad.store.session() as db:
        return int(await db.scalar(select(func.count()).select_from(ProcessedInbound)) or 0)


@pytest.fixture
async def tg_sqlite(sqlite_url: str, embedded_nlu: EmbeddedNLU) -> AsyncIterator[Harness]:
    fake = FakeBotAPI()
    await fake.start()
    try:
        async with bot_core(telegram_settings(sqlite_url, fake), embedded_nlu) as sanad, \
                running(sanad, fake) as harness:
            yield harness
    finally:
        await fake.stop()


@pytest.mark.parametrize("fault", [disk_full, read_only], ids=["disk_full", "read_only"])
async def test_webhook_answers_503_keeps_data_and_processes_the_retry_once(
    tg_sqlite: Harness, sqlite_url: str, fault: Callable[[Sanad], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = tg_sqlite
    before = [Updates(chat_id=4400 + i, _update_ids=itertools.count(10 * i)) for i in range(3)]
    for updates in before:
        assert await h.post(updates.message("مرحبا")) == 200
    answered = list(h.texts())
    stored = await processed(h.sanad)
    assert stored == 3

    caplog.set_level(logging.WARNING)
    secret_text = "my passport was taken 0791234567"
    refused: dict[str, Any] | None = None
    async with fault(h.sanad):
        # Fill what is left of the last pages: sooner or later a turn needs a new page.
        for i in range(200):
            update = Updates(chat_id=5500 + i, _update_ids=itertools.count(1000 + 10 * i))
            candidate = update.message(secret_text)
            status = await h.post(candidate)
            if status == 503:
                refused = candidate
                break
            assert status == 200
        assert refused is not None, "the full or read-only database must refuse a turn"
        chat = refused["message"]["chat"]["id"]
        assert h.texts(chat) == []  # nothing sent for the refused update
        assert await h.post(refused) == 503  # Telegram's retry while it lasts: refused again
    assert integrity(sqlite_url) == "ok"
    assert h.texts()[:len(answered)] == answered
    assert await processed(h.sanad) >= stored  # earlier data intact

    # Space is back (or the database writable again): the retried update is processed once.
    assert await h.post(refused) == 200
    replies = h.texts(chat)
    assert replies
    assert await h.post(refused) == 200  # a later duplicate delivery is not answered again
    assert h.texts(chat) == replies
    assert integrity(sqlite_url) == "ok"

    reason = "disk full" if fault is disk_full else "read-only"
    lines = [r.getMessage() for r in caplog.records if "database unavailable" in r.getMessage()]
    assert any(reason in line and "503" in line for line in lines), lines
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "passport" not in logged and "0791234567" not in logged and str(chat) not in logged


def run_cli(args: list[str], env: dict[str, str],
            stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def migrated(tmp_path: Path, nlu_cache: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "sanad.db"
    env = sanad_env(f"sqlite+aiosqlite:///{path}", SANAD_CACHE_DIR=str(nlu_cache))
    done = run_cli(["caseworker", "add", "mona", "--role", "caseworker", "--password-stdin"],
                   env, stdin="a-long-enough-password-1\n")
    assert done.returncode == 0, done.stderr
    return path, env


def read_only_env(path: Path, env: dict[str, str]) -> dict[str, str]:
    return {**env, "DATABASE_URL": f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"}


def test_cli_write_on_a_read_only_database_is_one_clear_line_and_exit_3(
    migrated: tuple[Path, dict[str, str]],
) -> None:
    path, env = migrated
    result = run_cli(["caseworker", "add", "sara", "--role", "caseworker", "--password-stdin"],
                     read_only_env(path, env), stdin="another-long-password-2\n")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert lines == ["sanad: the database is unavailable (read-only); the command did not complete"]
    assert "Traceback" not in result.stderr and "password" not in result.stderr
    listing = run_cli(["cases", "list", "--json"], read_only_env(path, env))  # reads still work
    assert listing.returncode == 0 and orjson.loads(listing.stdout) == []
    assert integrity(f"sqlite:///{path}") == "ok"


def test_chat_on_a_read_only_database_answers_each_line_with_one_clear_message(
    migrated: tuple[Path, dict[str, str]],
) -> None:
    path, env = migrated
    result = run_cli(["chat", "--json", "--lang", "en"], read_only_env(path, env),
                     stdin="hello\nI need help\n")
    assert result.returncode == 0, result.stderr
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2  # one answer per input line, never a crash
    for line in lines:
        (message,) = line["messages"]
        assert message["text"]  # the apology: try again later, and the emergency numbers
    assert lines[0] == lines[1]
    assert "Traceback" not in result.stderr and "I need help" not in result.stderr
    assert integrity(f"sqlite:///{path}") == "ok"

