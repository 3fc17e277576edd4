"""Opt-in to awareness tips, and opt-out at any time ("stop", "الغاء", /stop)."""

from __future__ import annotations

from typing import ClassVar

from bot.flows.base import Step, TurnContext
from bot.messages import Subscribed, Unsubscribed


class SubscribeFlow:
    name: ClassVar[str] = "subscribe"
    button_prefixes: ClassVar[tuple[str, ...]] = ("sub",)

    def start(self, ctx: TurnContext, entry: str = "offer") -> Step:
        if entry == "stop":
            return ctx.start("menu", intro="subscribe.stopped").then_events(Unsubscribed())
        return Step(
            messages=[ctx.say("subscribe.offer", ctx.button("sub:yes", "common.yes"),
                              ctx.button("sub:no", "common.no"))],
            flow="subscribe", state="subscribe.offer",
        )

    def handle(self, ctx: TurnContext) -> Step:
        answer = (ctx.button_id or "").removeprefix("sub:") if ctx.button_id else (
            ctx.understanding.yes_no
        )
        if answer == "yes":
            return ctx.start("menu", intro="subscribe.done").then_events(Subscribed())
        if answer == "no":
            return ctx.start("menu", intro="subscribe.declined")
        from bot.flows.menu import route_free_text

        return route_free_text(ctx)
