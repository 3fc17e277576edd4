"""Per-user data keys: crypto-shredding of a user's own data.

Each user gets a random data key when they first write; the ``user_keys`` row holds it sealed
by the master key (context ``user_keys.key``), so rotating the master key re-wraps data keys
and never touches the rows they seal. What the user said or answered (conversation data,
screening answers, case indicators, their messages in a case thread) is sealed with
:class:`~bot.store.crypto.UserCipher` under that key. Erasure deletes the row in the
erasure's own transaction: from then on no copy of those rows (a WAL page, a dead tuple, a
copied table) opens with a key the system still has. A copy that also holds the old
``user_keys`` row (a full backup) still opens with the master key until it expires
(SECURITY.md, "Crypto-shredding").

An unwrapped key lives only as long as the turn or the read that opened it (a
:class:`UserCipher` object); nothing here caches keys across turns.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.crypto import FieldCipher, UserCipher, new_data_key
from bot.store.models import Case, UserKey

CONTEXT = b"user_keys.key"
"""The authenticated context of a wrapped key (``<table>.<column minus _enc>``, as every
sealed column, so ``bot.store.keys.rotate`` re-wraps them like any other master-sealed
column)."""

SESSION_CIPHER = "sanad.cipher"
"""Key of the master cipher in ``AsyncSession.info`` for sessions the ``Store`` opens, so a
read that must open sealed case fields (``handoff.queue.list_cases``) finds it."""


def create(master: FieldCipher) -> tuple[UserCipher, bytes]:
    """A new data key: its cipher, and the key wrapped by ``master`` for ``user_keys``."""
    key = new_data_key()
    return UserCipher(master, key), master.encrypt(key, context=CONTEXT)


def unwrap(master: FieldCipher, key_enc: bytes) -> UserCipher:
    """The cipher of a wrapped data key (raises ``DecryptionError`` for a foreign key)."""
    return UserCipher(master, master.decrypt(key_enc, context=CONTEXT))


def master_of(db: AsyncSession) -> FieldCipher:
    """The master cipher of a session opened by the ``Store`` (``Store.session`` or a turn)."""
    cipher = db.info.get(SESSION_CIPHER)
    if not isinstance(cipher, FieldCipher):
        raise RuntimeError("this session was not opened by the Store: no cipher to open "
                           "sealed fields with")
    return cipher


async def cipher_for_user(db: AsyncSession, master: FieldCipher, user_id: int | None, *,
                          create_missing: bool = False) -> FieldCipher:
    """The user's cipher; without a data key (erased, or ``user_id`` None) the master cipher,
    which opens master-sealed rows only. ``create_missing`` gives the user a key then (only
    where the user's row is locked, i.e. in their turn)."""
    if user_id is None:
        return master
    key_enc = await db.scalar(select(UserKey.key_enc).where(UserKey.user_id == user_id))
    if key_enc is not None:
        return unwrap(master, key_enc)
    if not create_missing:
        return master
    cipher, wrapped = create(master)
    db.add(UserKey(user_id=user_id, key_enc=wrapped, created_at=datetime.now(UTC)))
    return cipher


async def cipher_for_case(db: AsyncSession, master: FieldCipher, case_id: int) -> FieldCipher:
    """The cipher of the case's user (the master cipher once the user erased their data)."""
    user_id = await db.scalar(select(Case.user_id).where(Case.id == case_id))
    return await cipher_for_user(db, master, user_id)


class KeyRing:
    """Data keys of many users for one read (a queue page): each unwrapped once, then dropped
    with the ring."""

    def __init__(self, master: FieldCipher) -> None:
        self.master = master
        self._opened: dict[bytes, UserCipher] = {}

    def cipher(self, key_enc: bytes | None) -> FieldCipher:
        if key_enc is None:
            return self.master
        found = self._opened.get(key_enc)
        if found is None:
            found = self._opened[key_enc] = unwrap(self.master, key_enc)
        return found


async def forget(db: AsyncSession, user_ids: Iterable[int]) -> None:
    """Crypto-shred: delete the data keys (in the caller's erasure transaction)."""
    ids = list(user_ids)
    if ids:
        await db.execute(delete(UserKey).where(UserKey.user_id.in_(ids)))
