"""Whole-conversation safety on held-out conversations (bot/conversation_eval.py): how many end
in a harmful answer, per expectation and per variety, on a fresh SQLite database.

Prints one JSON object. Usage:
    python bench/conversations.py [--data bench/conversations/heldout.yml]
The models come from the usual cache (``SANAD_CACHE_DIR``); a cold cache trains them first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

# bench/nlu.py would shadow the nlu package: run with the repository first on the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bot.app import build  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.conversation_eval import evaluate, load  # noqa: E402

DATA = Path(__file__).parent / "conversations" / "heldout.yml"


async def main(data: Path) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="sanad-conversations-"))
    settings = replace(Settings.from_env(), database_url=f"sqlite+aiosqlite:///{workdir}/c.db",
                       environment="development", show_drafts=True,
                       flood_rate=10_000.0, flood_burst=10_000)
    app = await build(settings)
    try:
        report = await evaluate(app.store, app.engine.handle_turn, load(data))
    finally:
        await app.store.engine.dispose()
    return {"benchmark": "conversations", "data": str(data), **report.as_dict()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    print(json.dumps(asyncio.run(main(parser.parse_args().data)), ensure_ascii=False))
