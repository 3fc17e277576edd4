"""Emergency: from any state, the numbers first, then a person at urgent priority in one tap."""

from __future__ import annotations

from typing import ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.menu import route_free_text
from bot.flows.routes import Routes
from bot.flows.services import emergency_numbers
from bot.messages import EmergencyTriggered, HandoffRequested, RelayedToCase


class EmergencyFlow:
    name: ClassVar[str] = "emergency"
    button_prefixes: ClassVar[tuple[str, ...]] = ("em",)
    routes: ClassVar[Routes] = Routes(commands={"help_now": {}, "sos": {}}, answers_worry=True)

    def start(self, ctx: TurnContext, escalate_case: bool = False) -> Step:
        text = ctx.t("emergency.intro") + "\n\n" + emergency_numbers(ctx)
        events: list = [EmergencyTriggered()]
        if escalate_case:
            # Already talking to a caseworker: raise the case to urgent without asking, and
            # make sure the caseworker reads the very words that raised it.
            events.append(HandoffRequested(priority="urgent", reason="emergency"))
            if ctx.text:
                events.append(RelayedToCase(text=ctx.text))
            return Step(
                messages=[ctx.say_text(text + "\n\n" + ctx.t("emergency.case_escalated"))],
                flow="handoff", state="handoff.waiting", data=dict(ctx.data), events=events,
            )
        return Step(
            messages=[ctx.say_text(
                text + "\n\n" + ctx.t("emergency.offer"),
                ctx.button("em:human", "emergency.human"), ctx.button("em:safe", "emergency.safe"),
            )],
            flow="emergency", state="emergency.offer", events=events,
        )

    def handle(self, ctx: TurnContext) -> Step:
        button = ctx.button_id
        if button == "em:human" or (button is None and ctx.understanding.yes_no == "yes"):
            return ctx.start("handoff", reason="emergency", priority="urgent")
        if button == "em:safe" or (button is None and ctx.understanding.yes_no == "no"):
            return ctx.start("menu", intro="emergency.stay_safe")
        return route_free_text(ctx)
