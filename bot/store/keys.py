"""Key rotation: re-seal every encrypted column with the current key.

Every ``*_enc`` column is sealed with the authenticated context ``<table>.<column minus _enc>``
(e.g. ``sessions.data``), so one routine covers the whole schema, including tables added later.
Run ``sanad keys rotate`` with the new key in ``SANAD_SECRET_KEY`` and the old one in
``SANAD_OLD_SECRET_KEYS``; afterwards the old key can be retired.

Rows sealed under a user's data key (crypto-shredding, ``bot.store.user_keys``) are left as
they are: rotating the master key re-wraps the data keys (``user_keys.key_enc``) only.
``sanad keys status`` (:func:`status`) shows which keys seal what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Table, func, select, update

from bot.store.crypto import FieldCipher, sealed_key_id
from bot.store.models import UserKey
from bot.store.repository import Store
from bot.store.schema import metadata

BATCH = 500


def sealed_columns() -> list[tuple[Table, Column[bytes]]]:
    return [(table, column) for table in metadata().sorted_tables
            for column in table.columns if column.name.endswith("_enc")]


def context_of(table: Table, column: Column[bytes]) -> bytes:
    return f"{table.name}.{column.name.removesuffix('_enc')}".encode()


async def rotate(store: Store) -> dict[str, int]:
    """Re-seal what the current key did not seal; returns rows re-sealed per column."""
    cipher: FieldCipher = store.cipher
    counts: dict[str, int] = {}
    for table, column in sealed_columns():
        [key] = list(table.primary_key.columns)[:1]
        context = context_of(table, column)
        done, after = 0, None
        while True:
            async with store.session() as db:
                query = select(key, column).where(column.is_not(None)).order_by(key).limit(BATCH)
                if after is not None:
                    query = query.where(key > after)
                rows = (await db.execute(query)).all()
                for row_key, blob in rows:
                    if cipher.needs_rotation(blob):
                        fresh = cipher.encrypt(cipher.decrypt(blob, context=context),
                                               context=context)
                        await db.execute(update(table).where(key == row_key)
                                         .values({column.name: fresh}))
                        done += 1
            if len(rows) < BATCH:
                break
            after = rows[-1][0]
        counts[f"{table.name}.{column.name}"] = done
    return counts


HEADER = 5
"""Version byte and key id: what tells which key sealed a blob (``crypto``)."""


@dataclass
class ColumnKeys:
    """Who seals one column's rows: master key ids with their row counts, and how many rows
    are under users' data keys (and under how many distinct data keys)."""

    column: str
    master: dict[str, int] = field(default_factory=dict)
    user_rows: int = 0
    user_keys: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "master": dict(sorted(self.master.items())),
                "user_rows": self.user_rows, "user_keys": self.user_keys}


@dataclass
class KeyStatus:
    current: str
    """The current master key's id (hex)."""
    old: tuple[str, ...]
    """Ids of the old master keys still configured (``SANAD_OLD_SECRET_KEYS``)."""
    users_with_key: int
    columns: list[ColumnKeys]

    @property
    def stale(self) -> int:
        """Rows still sealed by an old or unknown master key (``keys rotate`` re-seals them)."""
        return sum(n for c in self.columns for key, n in c.master.items() if key != self.current)

    def to_dict(self) -> dict[str, Any]:
        return {"current": self.current, "old": list(self.old),
                "users_with_key": self.users_with_key, "stale_rows": self.stale,
                "columns": [c.to_dict() for c in self.columns]}


async def status(store: Store) -> KeyStatus:
    """Key ids in use per sealed column, counted in the database (one grouped pass each on
    the blobs' 5-byte header; no row is decrypted)."""
    cipher: FieldCipher = store.cipher
    columns = []
    async with store.session() as db:
        users = int(await db.scalar(select(func.count()).select_from(UserKey)) or 0)
        for table, column in sealed_columns():
            header = func.substr(column, 1, HEADER)
            rows = await db.execute(select(header, func.count()).where(column.is_not(None))
                                    .group_by(header))
            found = ColumnKeys(f"{table.name}.{column.name}")
            for head, count in rows:
                kind, key_id = sealed_key_id(bytes(head))
                if kind == "user":
                    found.user_rows += int(count)
                    found.user_keys += 1
                else:
                    found.master[key_id.hex()] = found.master.get(key_id.hex(), 0) + int(count)
            columns.append(found)
    return KeyStatus(current=cipher.current_key_id.hex(),
                     old=tuple(k.hex() for k in cipher.key_ids if k != cipher.current_key_id),
                     users_with_key=users, columns=columns)
