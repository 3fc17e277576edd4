"""Regenerate the initial migration from the models (development only, before the first
release: once a schema is deployed, add a new revision instead of rewriting this one).

    python -m bot.store.regenerate
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from bot.store.db import MIGRATIONS_DIR

INITIAL = MIGRATIONS_DIR / "versions" / "0001_initial_schema.py"


def main() -> None:
    INITIAL.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    print(f"wrote {INITIAL}")


if __name__ == "__main__":
    main()
