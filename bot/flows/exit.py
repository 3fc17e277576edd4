"""Quick exit: hide the conversation at once and leave only a neutral message behind."""

from __future__ import annotations

from typing import ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.routes import Routes
from bot.messages import Outbound, QuickExit


class ExitFlow:
    name: ClassVar[str] = "exit"
    button_prefixes: ClassVar[tuple[str, ...]] = ("exit",)
    routes: ClassVar[Routes] = Routes(commands={"exit": {}}, aliases={"quit": "exit"})

    def start(self, ctx: TurnContext) -> Step:
        # No buttons, nothing about the topic: someone reading over the user's shoulder sees a
        # plain, harmless line; on Telegram the channel also deletes the conversation.
        return Step(
            messages=[Outbound(text=ctx.t("exit.cover"))], flow="menu", state="menu.start",
            events=[QuickExit()],
        )

    def handle(self, ctx: TurnContext) -> Step:
        return self.start(ctx)
