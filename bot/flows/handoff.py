"""The user's side of a handoff: ask for a person, wait honestly, talk, or stop talking."""

from __future__ import annotations

from typing import ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.services import emergency_numbers
from bot.messages import HandoffEnded, HandoffRequested, RelayedToCase


class HandoffFlow:
    name: ClassVar[str] = "handoff"
    button_prefixes: ClassVar[tuple[str, ...]] = ("ho",)

    def start(
        self, ctx: TurnContext, reason: str = "user_request", priority: str = "normal",
        risk_level: str | None = None, indicators: tuple[str, ...] = (),
    ) -> Step:
        request = HandoffRequested(
            priority=priority, reason=reason, risk_level=risk_level, indicators=indicators
        )
        key = "handoff.joined" if ctx.profile.open_case_id else f"handoff.requested_{priority}"
        text = ctx.t(key)
        if ctx.staff is not None and ctx.staff.on_duty == 0:
            # Honest: nobody is there now; say so and give the numbers that answer at once.
            text += "\n\n" + ctx.t("handoff.nobody_on_duty") + "\n" + emergency_numbers(ctx)
        elif ctx.staff is not None:
            text += "\n\n" + ctx.t("handoff.on_duty", waiting=ctx.staff.waiting)
        return Step(
            messages=[ctx.say_text(text, ctx.button("ho:end", "handoff.end_button"))],
            flow="handoff", state="handoff.waiting", events=[request],
        )

    def handle(self, ctx: TurnContext) -> Step:
        if ctx.button_id == "ho:end" or self._wants_to_stop(ctx):
            return ctx.start("menu", intro="handoff.ended").then_events(HandoffEnded())
        if ctx.button_id and ctx.button_id.startswith("ho:"):
            return self._stay(ctx, [])
        if not ctx.text:
            return self._stay(ctx, [])
        acked = bool(ctx.data.get("acked"))
        messages = [] if acked else [
            ctx.say("handoff.relayed", ctx.button("ho:end", "handoff.end_button"))
        ]
        return Step(
            messages=messages, flow="handoff", state="handoff.waiting",
            data={**ctx.data, "acked": True}, events=[RelayedToCase(text=ctx.text)],
        )

    @staticmethod
    def _wants_to_stop(ctx: TurnContext) -> bool:
        words = {w.strip().casefold() for w in ctx.t("words.end_handoff").split(",")}
        return ctx.text.strip().casefold() in words

    @staticmethod
    def _stay(ctx: TurnContext, messages: list) -> Step:
        return Step(messages=messages, flow="handoff", state="handoff.waiting", data=dict(ctx.data))
