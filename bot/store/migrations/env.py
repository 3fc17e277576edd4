"""Alembic environment: runs on a connection handed over by ``bot.store.db.upgrade``.

Run by hand with ``sanad db upgrade``; ``alembic`` on the command line is not needed.
"""

from __future__ import annotations

from alembic import context

from bot.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through bot.store.db
    raise RuntimeError("run migrations with `sanad db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
