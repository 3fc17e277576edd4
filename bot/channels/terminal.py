"""The terminal channel behind ``sanad chat``: the whole bot on stdin/stdout.

Interactive on a TTY; otherwise every input line is one user message. Buttons are shown
numbered (the engine maps a typed number or title back to the button). With ``--json`` each
input line yields exactly one JSON line, flushed before the next line is read; messages that
arrive outside a turn (a caseworker's reply) are printed as their own line with ``"async": true``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from bot.app import Sanad
from bot.channels.runtime import ChannelRuntime, Job, Outcome, quick_exit
from bot.messages import Event, Inbound, Outbound, Turn, UserRef
from bot.outbox import OutboxSender

CHANNEL = "terminal"
_CLEAR_SCREEN = "\033[2J\033[3J\033[H"
_RTL_MARK = "\u200f"


def render_json(messages: Sequence[Outbound], *, is_async: bool = False,
                events: Sequence[Event] = ()) -> str:
    """One output line of `sanad chat --json`: the messages, and for a turn the names of its
    domain events (names only: no personal data)."""
    payload: dict[str, object] = {"messages": [
        {"text": m.text, "buttons": [{"id": b.id, "title": b.title} for b in m.buttons]}
        for m in messages
    ]}
    if is_async:
        payload["async"] = True
    else:
        payload["events"] = [e.name for e in events]
    return json.dumps(payload, ensure_ascii=False)


def render_text(messages: Sequence[Outbound]) -> str:
    """Human-readable: each message, then its buttons numbered from 1."""
    blocks = []
    for message in messages:
        lines = [_directional(line) for line in message.text.splitlines()]
        lines += [f"  {n}) {_directional(b.title)}" for n, b in enumerate(message.buttons, 1)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _directional(line: str) -> str:
    """Start Arabic lines with a right-to-left mark so bidi-aware terminals align them."""
    first = next((c for c in line if c.isalpha()), "")
    return _RTL_MARK + line if "\u0600" <= first <= "\u06ff" else line


class TerminalChannel:
    def __init__(
        self, sanad: Sanad, *, user_id: str = "local", as_json: bool = False,
        stdin: TextIO | None = None, stdout: TextIO | None = None, language: str | None = None,
    ) -> None:
        self.sanad = sanad
        self.user: UserRef = sanad.store.user_ref(CHANNEL, user_id)
        self.user_id = user_id
        self.as_json = as_json
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = not as_json and self.stdin.isatty()
        self.language = language
        self._language = language or sanad.settings.default_language
        self._write_lock = asyncio.Lock()
        self.runtime = ChannelRuntime(sanad, CHANNEL, counter="sanad_terminal_messages_total",
                                      counter_help="Terminal messages by outcome")

    async def run(self) -> int:
        """Read lines until EOF, while caseworker replies are printed as they arrive."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        sender = OutboxSender(self.sanad.store, CHANNEL, self, user_key=self.user.key)
        deliveries = asyncio.create_task(sender.run(stop))
        try:
            while True:
                if self.interactive:
                    self._write("\n> ", end="")
                line = await loop.run_in_executor(None, self.stdin.readline)
                if line == "":
                    return 0
                await self.handle_line(line.rstrip("\r\n"))
        finally:
            stop.set()
            await deliveries

    async def deliver(self, address: str, messages: Sequence[Outbound]) -> None:
        """Outbox delivery for this terminal user: a line of its own, marked async."""
        await self.emit(messages, is_async=True)

    async def handle_line(self, text: str) -> None:
        job = Job(Inbound(user=self.user, text=text), self.user_id,
                  language_hint=self._language, language=self.language)
        served = await self.runtime.serve(self, job)
        if served.status != 200:  # the database is down: nobody will send it again for us
            await self.send_apology(job, self.runtime.apology(self._language))

    async def deliver_turn(self, job: Job, turn: Turn) -> Outcome:
        """Print the turn (after clearing the screen on a quick exit); the runtime marks its
        outbox rows sent (if the database is down by then, the lease runs out and the reply
        is shown again later)."""
        if quick_exit(turn.events) and self.interactive:
            self._write(_CLEAR_SCREEN, end="")
        await self.emit(turn.outbound, events=turn.events)
        return Outcome.SENT_UNMARKED

    async def send_apology(self, job: Job, message: Outbound) -> None:
        await self.emit([message])

    async def emit(self, messages: Sequence[Outbound], *, is_async: bool = False,
                   events: Sequence[Event] = ()) -> None:
        """Print one turn's messages (or a message pushed outside a turn)."""
        async with self._write_lock:
            if self.as_json:
                self._write(render_json(messages, is_async=is_async, events=events))
            elif messages:
                self._write(render_text(messages))

    def _write(self, text: str, *, end: str = "\n") -> None:
        self.stdout.write(text + end)
        self.stdout.flush()
