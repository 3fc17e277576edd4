"""Crypto-shredding: a user's own rows are sealed under a data key of theirs, and erasing the
user deletes that key, so a copy of the database taken before the erasure (the SQLite file
and its WAL, or the rows as a backup would hold them) no longer opens with any live key."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.app import Sanad
from bot.messages import DataErased, Inbound
from bot.store.crypto import DecryptionError, FieldCipher, UserCipher, is_user_sealed
from bot.store.keys import context_of, sealed_columns
from bot.store.models import Case, UserKey
from bot.store.user_keys import unwrap
from handoff import actions
from handoff.queue import list_cases
from tests.conftest import SECRET

PER_USER = ("sessions.data_enc", "screening_results.answers_enc", "case_messages.text_enc",
            "cases.indicators_enc", "case_notes.text_enc", "users.address_enc",
            "outbox.payload_enc")
"""The user's own columns: sealed under their data key (SECURITY.md, Crypto-shredding)."""

ANSWERED = [{"text": "hello"}, {"button_id": "menu:check"}, {"button_id": "sc:consent:yes"},
            {"button_id": "sc:age:18_24"}, *[{"text": "yes"}] * 13]
"""Every answer yes: the screening result is stored, the person is offered a caseworker (the
conversation data still holds the answers)."""
HANDOFF = [{"text": "yes"}, {"text": "SHRED-CANARY they took my passport"}]
"""A person, please; then a message into the case thread (the conversation data is gone)."""


async def talk(sanad: Sanad, user: str, steps: list[dict[str, str]]) -> list[object]:
    ref = sanad.store.user_ref("terminal", user)
    events: list[object] = []
    for step in steps:
        turn = await sanad.engine.handle_turn(Inbound(user=ref, **step), address=user)
        events.extend(turn.events)
    return events


def test_a_user_cipher_opens_its_own_and_master_rows_only() -> None:
    master = FieldCipher(SECRET)
    mine, theirs = UserCipher(master, b"k" * 32), UserCipher(master, b"t" * 32)
    sealed = mine.encrypt_text("my answers", context=b"sessions.data")
    assert is_user_sealed(sealed) and sealed[1:5] == mine.data_key_id
    assert mine.decrypt_text(sealed, context=b"sessions.data") == "my answers"
    old = master.encrypt_text("sealed before data keys", context=b"sessions.data")
    assert mine.decrypt_text(old, context=b"sessions.data") == "sealed before data keys"
    for wrong in (lambda: theirs.decrypt(sealed, context=b"sessions.data"),
                  lambda: master.decrypt(sealed, context=b"sessions.data"),
                  lambda: mine.decrypt(sealed, context=b"cases.indicators")):
        with pytest.raises(DecryptionError):
            wrong()
    assert not master.needs_rotation(sealed), "the master key never re-seals a user's rows"


async def sealed_rows(sanad: Sanad) -> dict[str, list[bytes]]:
    """Every sealed blob of every column, as a backup taken now would hold them."""
    found: dict[str, list[bytes]] = {}
    async with sanad.store.session() as db:
        for table, column in sealed_columns():
            blobs = list(await db.scalars(select(column).where(column.is_not(None))))
            found[f"{table.name}.{column.name}"] = [bytes(b) for b in blobs]
    return found


async def live_ciphers(sanad: Sanad) -> list[FieldCipher]:
    """The master cipher and every data key still in the live database."""
    master = sanad.store.cipher
    async with sanad.store.session() as db:
        wrapped = list(await db.scalars(select(UserKey.key_enc)))
    return [master, *(unwrap(master, blob) for blob in wrapped)]


def assert_unrecoverable(rows: dict[str, list[bytes]], ciphers: list[FieldCipher]) -> int:
    """No cipher opens any of the per-user rows; returns how many rows were tried."""
    tried = 0
    contexts = {f"{t.name}.{c.name}": context_of(t, c) for t, c in sealed_columns()}
    for column in PER_USER:
        for blob in rows.get(column, []):
            assert is_user_sealed(blob), f"{column} sealed under the master key"
            for cipher in ciphers:
                with pytest.raises(DecryptionError):
                    cipher.decrypt(blob, context=contexts[column])
            tried += 1
    return tried


async def test_erased_rows_copied_before_erasure_no_longer_open(sanad: Sanad) -> None:
    await talk(sanad, "shred", ANSWERED)
    await talk(sanad, "bystander", [{"text": "hello"}, {"button_id": "menu:check"},
                                    {"button_id": "sc:consent:yes"}])
    backups = [await sealed_rows(sanad)]  # a first "backup": mid-conversation
    await talk(sanad, "shred", HANDOFF)
    async with sanad.store.session() as db:
        [old_case] = await list_cases(db)
        await actions.add_note(db, sanad.store.cipher, old_case.id, "mona",
                               "NOTE-CANARY lives in Giza")
    backups.append(await sealed_rows(sanad))  # a second one: with the case
    before = {column: [blob for backup in backups for blob in backup.get(column, [])]
              for column in backups[-1]}
    async with sanad.store.session() as db:
        assert old_case.indicators, "the case carries sealed indicators"
        keys_before = len((await db.scalars(select(UserKey))).all())
    assert keys_before == 2
    # Before the erasure, the live keys open the copy (the test can fail).
    master = sanad.store.cipher
    async with sanad.store.session() as db:
        uid = await db.scalar(select(Case.user_id))
        own = unwrap(master, (await db.scalars(
            select(UserKey.key_enc).where(UserKey.user_id == uid))).one())
    [message] = before["case_messages.text_enc"]
    assert "SHRED-CANARY" in own.decrypt_text(message, context=b"case_messages.text")

    events = await talk(sanad, "shred", [{"text": "delete my data"},
                                         {"button_id": "pv:delete:yes"}])
    assert any(isinstance(e, DataErased) for e in events)
    # The person comes back: a new data key and a new case with a new alias.
    ref = sanad.store.user_ref("terminal", "shred")
    turn = await sanad.engine.handle_turn(Inbound(user=ref, text="hello"))
    [yes] = [b.id for m in turn.outbound for b in m.buttons if b.id.startswith("cp:yes:")]
    await sanad.engine.handle_turn(Inbound(user=ref, button_id=yes))
    await sanad.engine.handle_turn(Inbound(user=ref, button_id="menu:human"))
    async with sanad.store.session() as db:
        cases = await list_cases(db)
        keys_after = len((await db.scalars(select(UserKey))).all())
    assert len(cases) == 1 and cases[0].alias != old_case.alias
    assert keys_after == 2, "the bystander's key and the returning person's new one"

    erased = {column: [b for b in before.get(column, []) if b[1:5] == own.data_key_id]
              for column in PER_USER}
    assert all(erased[c] for c in PER_USER), "every per-user column had rows to shred"
    assert assert_unrecoverable(erased, await live_ciphers(sanad)) >= len(PER_USER)


async def test_a_sqlite_file_and_wal_copied_before_erasure_stay_sealed(
        sanad_sqlite: Sanad, tmp_path: Path) -> None:
    """The literal threat: a copy of the database file and its WAL, taken while the bot runs,
    read after the erasure with the keys the live system still has."""
    async with sanad_sqlite.store.engine.connect() as conn:
        mode = await conn.scalar(text("PRAGMA journal_mode"))
    assert mode == "wal"
    copies = []
    for name, steps in (("answered", ANSWERED), ("handed-off", HANDOFF)):
        await talk(sanad_sqlite, "copied", steps)
        copy = tmp_path / name
        copy.mkdir()
        for part in tmp_path.glob("sanad.db*"):
            shutil.copy(part, copy / part.name)
        assert (copy / "sanad.db-wal").stat().st_size > 0, "the copy has an unmerged WAL"
        copies.append(copy)

    await talk(sanad_sqlite, "copied", [{"text": "delete my data"},
                                        {"button_id": "pv:delete:yes"}])
    ciphers = await live_ciphers(sanad_sqlite)

    rows: dict[str, list[bytes]] = {column: [] for column in PER_USER}
    for copy in copies:
        with sqlite3.connect(copy / "sanad.db") as old:  # replays the copied WAL
            for column in PER_USER:
                table, name = column.split(".")
                rows[column] += [bytes(r[0]) for r in old.execute(
                    f"SELECT {name} FROM {table} WHERE {name} IS NOT NULL")]
            assert old.execute("SELECT count(*) FROM user_keys").fetchone()[0] == 1
    assert all(rows[c] for c in PER_USER if c != "case_notes.text_enc"), rows.keys()
    assert assert_unrecoverable(rows, ciphers) >= 4
