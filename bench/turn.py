"""One engine turn in-process (no HTTP, no Telegram): CPU and wall ms per turn, SQL statements
per turn. Prints JSON.

    .venv/bin/python bench/turn.py [--db sqlite|postgres] [--users 30] [--repeat 3]

Each user plays a whole English screening (greeting, consent, age, 13 answers, menu: 18 turns)
through ``Engine.handle_turn`` on a fresh database (SQLite file in a temporary directory, or a
PostgreSQL database created and dropped on postgresql://postgres@127.0.0.1:5432/test). The
figure is the process CPU (all threads) per turn: the database's own CPU on PostgreSQL is not
included. The median of ``--repeat`` runs is reported with each run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
STEPS = [("text", "hello"), ("tap", "menu:check"), ("tap", "sc:consent:yes"),
         ("tap", "sc:age:25_plus"), *[("tap", "sc:ans:no")] * 13, ("tap", "menu")]


def count_direct_statements(statements: collections.Counter[str]) -> None:
    """The hot statements of bot.store.direct run below SQLAlchemy's events: count them at
    their cursor (an executemany counts once, as SQLAlchemy's event does)."""
    from bot.store import direct

    for name in ("execute", "executemany", "one", "all", "raw"):
        original = getattr(direct.Cursor, name)

        def counted(self: Any, statement: Any, *values: Any, _original: Any = original) -> Any:
            sql = statement if isinstance(statement, str) else \
                statement.for_dialect(self._dialect).sql
            statements[sql.split(None, 1)[0].upper()] += 1
            return _original(self, statement, *values)

        setattr(direct.Cursor, name, counted)


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def one_run(db: str, users: int) -> dict[str, Any]:
    from sqlalchemy import event

    from bot.app import build
    from bot.config import Settings
    from bot.messages import Inbound

    workdir = tempfile.mkdtemp(prefix="sanad-turn-")
    name = f"sanad_turn_{os.getpid()}"
    if db == "postgres":
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _pg(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + \
            f"/{name}"
    else:
        url = f"sqlite+aiosqlite:///{workdir}/turn.db"
    env = {"DATABASE_URL": url, "SANAD_SECRET_KEY": "bench-secret-key-0123456789abcdef",
           "SANAD_KEY_FILE": f"{workdir}/key", "SANAD_FLOOD_RATE": "1000000",
           "SANAD_FLOOD_BURST": "1000000"}
    if os.environ.get("SANAD_CACHE_DIR"):
        env["SANAD_CACHE_DIR"] = os.environ["SANAD_CACHE_DIR"]
    sanad = await build(Settings.from_env(env))
    statements: collections.Counter[str] = collections.Counter()

    @event.listens_for(sanad.store.engine.sync_engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements[statement.split(None, 1)[0].upper()] += 1

    count_direct_statements(statements)

    ids = itertools.count(1)

    async def play(chat: int) -> None:
        ref = sanad.store.user_ref("telegram", chat)
        for kind, value in STEPS:
            inbound = Inbound(user=ref, text=value if kind == "text" else "",
                              button_id=value if kind == "tap" else None,
                              message_id=f"tg:1:{next(ids)}")
            await sanad.engine.handle_turn(inbound, address=str(chat))

    try:
        for chat in range(5):  # warm-up: caches, compiled statements, the NLU
            await play(chat)
        statements.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        for chat in range(100, 100 + users):
            await play(chat)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        await sanad.aclose()
        if db == "postgres":
            await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    turns = users * len(STEPS)
    return {"turns": turns, "cpu_ms_per_turn": round(1000 * cpu / turns, 2),
            "wall_ms_per_turn": round(1000 * wall / turns, 2),
            "statements_per_turn": round(sum(statements.values()) / turns, 2),
            "by_kind": {k: round(v / turns, 2) for k, v in statements.most_common()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    load = os.getloadavg()
    runs = [asyncio.run(one_run(args.db, args.users)) for _ in range(args.repeat)]
    out = {"benchmark": "turn", "db": args.db, "users": args.users, "steps": len(STEPS),
           "cpu_ms_per_turn": statistics.median(r["cpu_ms_per_turn"] for r in runs),
           "wall_ms_per_turn": statistics.median(r["wall_ms_per_turn"] for r in runs),
           "statements_per_turn": runs[-1]["statements_per_turn"],
           "statements_by_kind": runs[-1]["by_kind"], "runs": runs,
           "loadavg_before": [round(x, 2) for x in load],
           "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
