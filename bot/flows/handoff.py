"""The user's side of a handoff: ask for a person, wait honestly, talk, or stop talking.

Nothing a person types ends their case: "خلاص", "bye" or "ok" while waiting is relayed and
answered with "you are still in line". Leaving takes the "stop talking" button and then a
confirmation, so an everyday word (or an abuser's glance) never drops someone in danger.
"""

from __future__ import annotations

from typing import ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.routes import Routes
from bot.flows.services import emergency_numbers
from bot.messages import (
    Button,
    DataErased,
    HandoffEnded,
    HandoffRequested,
    Outbound,
    RelayedToCase,
)

EVERYDAY_INTENTS = frozenset({"goodbye", "thanks", "affirm", "deny", "greet", "menu"})
"""What people say in passing while they wait: relayed, and answered with reassurance."""
MINOR_INDICATOR = "minor"


class HandoffFlow:
    name: ClassVar[str] = "handoff"
    button_prefixes: ClassVar[tuple[str, ...]] = ("ho",)
    routes: ClassVar[Routes] = Routes(
        commands={"human": {"reason": "user_request"}},
        intents={"talk_to_human": {"reason": "user_request"}},
        interrupts=frozenset({"talk_to_human"}), relays=True, answers_worry=True,
    )

    def start(
        self, ctx: TurnContext, reason: str = "user_request", priority: str = "normal",
        risk_level: str | None = None, indicators: tuple[str, ...] = (),
    ) -> Step:
        if ctx.profile.age_band == "under_18" and MINOR_INDICATOR not in indicators:
            indicators = (*indicators, MINOR_INDICATOR)
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
        button = ctx.button_id
        if button == "ho:end":
            return self._stay(ctx, [ctx.say("handoff.leave_confirm",
                                             ctx.button("ho:end:yes", "handoff.leave_yes"),
                                             ctx.button("ho:stay", "handoff.stay"))])
        if button == "ho:end:yes":
            return ctx.start("menu", intro="handoff.ended").then_events(HandoffEnded())
        if ctx.data.get("confirm") == "delete" and button is None:
            if ctx.understanding.yes_no == "yes":
                return erase(ctx)
            if ctx.understanding.yes_no == "no":
                return self._stay(ctx, [ctx.say("privacy.kept")])
        if button in ("ho:stay", "ho:keep"):
            key = "privacy.kept" if button == "ho:keep" else "handoff.stayed"
            return self._stay(ctx, [ctx.say(key, self._end_button(ctx))])
        if button and button.startswith("ho:"):
            return self._stay(ctx, [])
        if not ctx.text:
            return self._stay(ctx, [])
        relay = RelayedToCase(text=ctx.text)
        if ctx.understanding.intent in EVERYDAY_INTENTS:
            return self._stay(ctx, [ctx.say("handoff.still_in_line", self._end_button(ctx))],
                              relay)
        acked = bool(ctx.data.get("acked"))
        messages = [] if acked else [ctx.say("handoff.relayed", self._end_button(ctx))]
        return Step(
            messages=messages, flow="handoff", state="handoff.waiting",
            data={**ctx.data, "acked": True}, events=[relay],
        )

    def confirm_delete(self, ctx: TurnContext) -> Step:
        """"Delete my data" while waiting: ask here, without leaving the line."""
        step = self._stay(ctx, [ctx.say("privacy.delete_confirm",
                                        ctx.button("pv:delete:yes", "privacy.delete_yes"),
                                        ctx.button("ho:keep", "common.cancel"))])
        step.data["confirm"] = "delete"
        return step

    @staticmethod
    def _end_button(ctx: TurnContext) -> Button:
        return ctx.button("ho:end", "handoff.end_button")

    @staticmethod
    def _stay(ctx: TurnContext, messages: list[Outbound], *events: RelayedToCase) -> Step:
        data = {k: v for k, v in ctx.data.items() if k != "confirm"}
        return Step(messages=messages, flow="handoff", state="handoff.waiting", data=data,
                    events=list(events))


def erase(ctx: TurnContext) -> Step:
    """Everything about the person goes (the effect closes and unlinks their cases)."""
    return Step(messages=[ctx.say("privacy.deleted")], flow="menu", state="menu.start",
                events=[DataErased()])


def back_in_line(ctx: TurnContext, step: Step) -> Step:
    """After a side trip (language, privacy) a person with an open case returns to the line,
    so their next words still reach the caseworker."""
    if ctx.profile.open_case_id is None or step.flow != "menu":
        return step
    text = "\n\n".join(m.text for m in step.messages)
    note = ctx.t("handoff.still_in_line")
    return Step(messages=[Outbound(text=f"{text}\n\n{note}" if text else note,
                                   buttons=(ctx.button("ho:end", "handoff.end_button"),))],
                flow="handoff", state="handoff.waiting", events=step.events,
                language=step.language)
