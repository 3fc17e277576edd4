"""Golden conversation transcripts: YAML files of what the user says and what the bot answers.

```yaml
name: Arabic greeting opens the menu
user_id: t-ar-1          # optional
steps:
  - say: "مرحبا"             # or `tap: menu:learn` (a button id), or `media: voice`
    expect:
      contains: ["سند"]       # substrings of the whole answer
      not_contains: [...]
      buttons: [menu:learn]   # button ids that must be offered
      state: menu.main        # the conversation state after the turn
      events: [QuickExit]     # event names that must be emitted
      language: ar
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from bot.app import Sanad
from bot.messages import Inbound, MediaKind, Turn
from bot.store.models import Session, User

TRANSCRIPTS = Path(__file__).with_name("transcripts")


@dataclass
class Transcript:
    name: str
    path: Path
    user_id: str
    steps: list[dict[str, Any]]

    @classmethod
    def load_all(cls) -> list[Transcript]:
        found = []
        for path in sorted(TRANSCRIPTS.glob("*.yml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            found.append(cls(data["name"], path, str(data.get("user_id", path.stem)),
                             data["steps"]))
        return found


async def state_of(sanad: Sanad, user_id: str) -> tuple[str | None, str | None]:
    key = sanad.store.pseudonyms.user_key("terminal", user_id)
    async with sanad.store.session() as db:
        user = await db.scalar(select(User).where(User.key == key))
        if user is None:
            return None, None
        session = await db.get(Session, user.id)
        return (session.state if session else None), user.language


async def play(sanad: Sanad, transcript: Transcript) -> None:
    user = sanad.store.user_ref("terminal", transcript.user_id)
    for number, step in enumerate(transcript.steps, 1):
        where = f"{transcript.path.name} step {number}"
        inbound = Inbound(
            user=user, text=str(step.get("say", "")), button_id=step.get("tap"),
            media=MediaKind(step["media"]) if "media" in step else None,
        )
        turn = await sanad.engine.handle_turn(inbound, address=transcript.user_id)
        await check(sanad, transcript.user_id, turn, step.get("expect") or {}, where)


async def check(sanad: Sanad, user_id: str, turn: Turn, expect: dict[str, Any],
                where: str) -> None:
    text = "\n".join(m.text for m in turn.outbound)
    buttons = [b.id for m in turn.outbound for b in m.buttons]
    for fragment in expect.get("contains", []):
        assert fragment in text, f"{where}: {fragment!r} not in answer:\n{text}"
    for fragment in expect.get("not_contains", []):
        assert fragment not in text, f"{where}: {fragment!r} unexpectedly in answer:\n{text}"
    for button in expect.get("buttons", []):
        assert button in buttons, f"{where}: button {button!r} not offered; got {buttons}"
    names = [e.name for e in turn.events]
    for event in expect.get("events", []):
        assert event in names, f"{where}: event {event} not emitted; got {names}"
    if "state" in expect or "language" in expect:
        state, language = await state_of(sanad, user_id)
        if "state" in expect:
            assert state == expect["state"], f"{where}: state {state!r} != {expect['state']!r}"
        if "language" in expect:
            assert language == expect["language"], f"{where}: language {language!r}"
