"""``sanad keys status``: which key seals what, per sealed column, counted in the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from sqlalchemy import func, select

from bot.app import build
from bot.messages import Inbound
from bot.store.keys import KeyStatus, rotate, status
from bot.store.models import Session
from nlu import EmbeddedNLU
from tests.conftest import make_settings

OLD, NEW = b"status-old-key-0123456789abcdef", b"status-new-key-0123456789abcdef"
SCREENING = [{"text": "hello"}, {"button_id": "menu:check"}, {"button_id": "sc:consent:yes"},
             {"button_id": "sc:age:18_24"}, *[{"text": "yes"}] * 14,
             {"button_id": "sc:handoff:yes"}, {"text": "please call me"}]


def column(found: KeyStatus, name: str) -> tuple[dict[str, int], int, int]:
    [item] = [c for c in found.columns if c.column == name]
    return item.master, item.user_rows, item.user_keys


async def test_status_counts_rows_per_key_and_follows_a_rotation(
        database_url: str, embedded_nlu: EmbeddedNLU) -> None:
    before = replace(make_settings(database_url), secret_key=OLD)
    app = await build(before, nlu=embedded_nlu)
    for user, steps in (("a", SCREENING), ("b", SCREENING[:3]), ("c", SCREENING[:1])):
        ref = app.store.user_ref("terminal", user)
        for step in steps:
            await app.engine.handle_turn(Inbound(user=ref, **step), address=user)
    found = await status(app.store)
    async with app.store.session() as db:
        sessions = await db.scalar(select(func.count()).select_from(Session)
                                   .where(Session.data_enc.is_not(None)))
    assert sessions
    old_id = app.store.cipher.current_key_id.hex()
    assert found.current == old_id and found.old == () and found.stale == 0
    assert found.users_with_key == 3
    assert column(found, "user_keys.key_enc") == ({old_id: 3}, 0, 0)
    assert column(found, "users.address_enc") == ({}, 3, 3)
    assert column(found, "sessions.data_enc") == ({}, sessions, sessions), "a key per user"
    assert column(found, "screening_results.answers_enc") == ({}, 1, 1)
    assert column(found, "cases.indicators_enc") == ({}, 1, 1)
    assert column(found, "case_messages.text_enc") == ({}, 1, 1)
    assert json.loads(json.dumps(found.to_dict()))["users_with_key"] == 3
    under_master = sum(n for c in found.columns for n in c.master.values())
    assert under_master == 3, "only the wrapped data keys are under the master key"
    await app.aclose()

    rotated = replace(before, secret_key=NEW, old_secret_keys=(OLD,), pseudonym_key=OLD)
    app = await build(rotated, nlu=embedded_nlu)
    found = await status(app.store)
    new_id = app.store.cipher.current_key_id.hex()
    assert found.current == new_id and found.old == (old_id,)
    assert found.stale == under_master, "every master-sealed row is under the old key now"
    await rotate(app.store)
    found = await status(app.store)
    assert found.stale == 0
    assert column(found, "user_keys.key_enc") == ({new_id: 3}, 0, 0)
    assert column(found, "sessions.data_enc") == ({}, sessions, sessions), "keys unchanged"
    await app.aclose()


def test_the_keys_status_command(tmp_path: Path, nlu_cache: Path,
                                 embedded_nlu: EmbeddedNLU) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}",
           "SANAD_SECRET_KEY": "keys-status-secret-0123456789", "SANAD_CACHE_DIR": str(nlu_cache)}

    def sanad(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin,
                              capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=300, encoding="utf-8")

    chat = sanad("chat", "--user", "someone", stdin="hello\n1\n")
    assert chat.returncode == 0, chat.stderr
    result = sanad("keys", "status", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["users_with_key"] == 1 and found["stale_rows"] == 0
    columns = {c["column"]: c for c in found["columns"]}
    assert columns["user_keys.key_enc"]["master"] == {found["current"]: 1}
    assert columns["sessions.data_enc"]["master"] == {}, "no session sealed by the master key"

    text = sanad("keys", "status")
    assert text.returncode == 0, text.stderr
    assert f"current master key: {found['current']}" in text.stdout
    assert "users with a data key: 1" in text.stdout
    assert f"user_keys.key_enc: master {found['current']}: 1" in text.stdout
