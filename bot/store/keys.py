"""Key rotation: re-seal every encrypted column with the current key.

Every ``*_enc`` column is sealed with the authenticated context ``<table>.<column minus _enc>``
(e.g. ``sessions.data``), so one routine covers the whole schema, including tables added later.
Run ``sanad keys rotate`` with the new key in ``SANAD_SECRET_KEY`` and the old one in
``SANAD_OLD_SECRET_KEYS``; afterwards the old key can be retired.
"""

from __future__ import annotations

from sqlalchemy import Column, Table, select, update

from bot.store.crypto import FieldCipher
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
