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

Each transcript is played through the engine as the terminal user does, through the Telegram
webhook against the fake Bot API (:class:`TelegramSpeaker`) and through the web chat channel's
HTTP endpoint (:class:`WebChatSpeaker`): what the platform receives is checked, the events are
the engine's (a spy; no platform is told them). Steps a platform cannot produce are skipped
there: media on the web page, an empty text on Telegram.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import Sanad, build
from bot.channels.webchat import TURN, WebChatChannel
from bot.messages import Button, Inbound, MediaKind, Outbound, Turn
from bot.store.models import Session, User
from bot.web.app import create_app
from nlu import EmbeddedNLU
from nlu.safeguard import SafetyDetector
from tests.telegram.conftest import Harness, running, telegram_settings
from tests.telegram.fake_bot_api import FakeBotAPI

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


async def state_of(sanad: Sanad, user_id: str,
                   channel: str = "terminal") -> tuple[str | None, str | None]:
    key = sanad.store.pseudonyms.user_key(channel, user_id)
    async with sanad.store.session() as db:
        user = await db.scalar(select(User).where(User.key == key))
        if user is None:
            return None, None
        session = await db.get(Session, user.id)
        return (session.state if session else None), user.language


class Speaker(Protocol):
    """Says a step's words to the bot somehow; the turn as the user's side saw it."""

    channel: str

    def platform_id(self, user_id: str) -> str: ...

    def can_say(self, step: dict[str, Any]) -> bool: ...

    async def say(self, user_id: str, inbound: Inbound) -> Turn: ...


@dataclass
class EngineSpeaker:
    """The engine itself, as ``sanad chat`` calls it."""

    sanad: Sanad
    channel: str = "terminal"

    def platform_id(self, user_id: str) -> str:
        return user_id

    def can_say(self, step: dict[str, Any]) -> bool:
        return True

    async def say(self, user_id: str, inbound: Inbound) -> Turn:
        return await self.sanad.engine.handle_turn(inbound, address=user_id)


class _Spy:
    """Records the engine's turns while a channel drives it."""

    def __init__(self, sanad: Sanad) -> None:
        self.sanad = sanad
        self.turns: list[Turn] = []
        self._real = sanad.engine.handle_turn

    async def handle_turn(self, inbound: Inbound, **kwargs: Any) -> Turn:
        turn = await self._real(inbound, **kwargs)
        self.turns.append(turn)
        return turn

    def events(self) -> tuple[Any, ...]:
        found = tuple(e for turn in self.turns for e in turn.events)
        self.turns.clear()
        return found

    def __enter__(self) -> _Spy:
        self.sanad.engine.handle_turn = self.handle_turn  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.sanad.engine.handle_turn


@dataclass
class TelegramSpeaker:
    """The Telegram webhook of the real app, answering through the fake Bot API."""

    harness: Harness
    spy: _Spy
    chats: dict[str, int] = field(default_factory=dict)
    channel: str = "telegram"

    def platform_id(self, user_id: str) -> str:
        return str(self.chats[user_id])

    def can_say(self, step: dict[str, Any]) -> bool:
        return "tap" in step or "media" in step or bool(str(step.get("say", "")))

    async def say(self, user_id: str, inbound: Inbound) -> Turn:
        updates, fake = self.harness.updates, self.harness.fake
        updates.chat_id = self.chats.setdefault(user_id, 900001 + len(self.chats))
        if inbound.media is not None:
            update = {MediaKind.VOICE: updates.voice, MediaKind.STICKER: updates.sticker,
                      MediaKind.LOCATION: updates.location}[inbound.media]()
        elif inbound.button_id is not None:
            update = updates.callback(inbound.button_id)
        else:
            update = updates.message(inbound.text)
        before = len(fake.calls_to("sendMessage"))
        self.spy.events()
        assert await self.harness.post(update) == 200
        outbound = tuple(
            Outbound(call.params["text"], tuple(
                Button(b["callback_data"], b["text"])
                for row in (call.result.get("reply_markup") or {}).get("inline_keyboard", [])
                for b in row))
            for call in fake.calls_to("sendMessage")[before:])
        return Turn(outbound=outbound, events=self.spy.events())


@asynccontextmanager
async def telegram_chat(database_url: str, nlu: EmbeddedNLU,
                        safety: SafetyDetector) -> AsyncIterator[tuple[Sanad, TelegramSpeaker]]:
    """A bot with the Telegram channel on the real app, against the fake Bot API."""
    fake = FakeBotAPI()
    await fake.start()
    sanad = await build(telegram_settings(database_url, fake), nlu=nlu, safety=safety)
    try:
        async with running(sanad, fake) as harness:
            with _Spy(sanad) as spy:
                yield sanad, TelegramSpeaker(harness, spy)
    finally:
        await sanad.store.engine.dispose()
        await fake.stop()


@dataclass
class WebChatSpeaker:
    """The web chat's JSON endpoint, one conversation token per transcript user."""

    client: TestClient[web.Request, web.Application]
    spy: _Spy
    tokens: dict[str, str] = field(default_factory=dict)
    channel: str = "webchat"
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def platform_id(self, user_id: str) -> str:
        return self.tokens[user_id]

    def can_say(self, step: dict[str, Any]) -> bool:
        return "media" not in step

    async def say(self, user_id: str, inbound: Inbound) -> Turn:
        if inbound.media is not None:
            pytest.fail("a web page sends no media: such steps are engine-only")
        body: dict[str, Any] = {"token": self.tokens.get(user_id),
                                "id": f"step-{next(self._ids):04d}"}
        if inbound.button_id is not None:
            body["button"] = inbound.button_id
        else:
            body["text"] = inbound.text
        self.spy.events()
        response = await self.client.post(TURN, json=body)
        assert response.status == 200, await response.text()
        answer = await response.json()
        self.tokens[user_id] = answer["token"]
        outbound = tuple(Outbound(m["text"], tuple(Button(b["id"], b["title"])
                                                   for b in m["buttons"]))
                         for m in answer["messages"])
        events = self.spy.events()
        assert answer["exit"] == any(e.name == "QuickExit" for e in events)
        return Turn(outbound=outbound, events=events)


@asynccontextmanager
async def web_chat(sanad: Sanad) -> AsyncIterator[WebChatSpeaker]:
    """The real app with only the web chat mounted, and a spy on the engine's turns."""
    app = create_app(sanad, channels=[WebChatChannel(sanad).mount], back_office=False)
    async with TestClient(TestServer(app)) as client:
        with _Spy(sanad) as spy:
            yield WebChatSpeaker(client, spy)


async def play(sanad: Sanad, transcript: Transcript, speaker: Speaker | None = None) -> None:
    speaker = speaker or EngineSpeaker(sanad)
    steps = [step for step in transcript.steps if speaker.can_say(step)]
    for number, step in enumerate(steps, 1):
        where = f"{transcript.path.name} step {number} ({speaker.channel})"
        inbound = Inbound(
            user=sanad.store.user_ref(speaker.channel, transcript.user_id),
            text=str(step.get("say", "")), button_id=step.get("tap"),
            media=MediaKind(step["media"]) if "media" in step else None,
        )
        turn = await speaker.say(transcript.user_id, inbound)
        await check(sanad, speaker.platform_id(transcript.user_id), turn,
                    step.get("expect") or {}, where, channel=speaker.channel)


async def check(sanad: Sanad, user_id: str, turn: Turn, expect: dict[str, Any],
                where: str, *, channel: str = "terminal") -> None:
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
        state, language = await state_of(sanad, user_id, channel)
        if "state" in expect:
            assert state == expect["state"], f"{where}: state {state!r} != {expect['state']!r}"
        if "language" in expect:
            assert language == expect["language"], f"{where}: language {language!r}"
