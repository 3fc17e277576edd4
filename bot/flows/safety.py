"""The safety layer's answers, from any state: ask, support, protect, and offer a person.

The engine enters this flow when the safety detector (``nlu.safeguard``) found something in a
message, before any other flow answers it:

* ``check``: worrying but unclear. One neutral question, "are you safe right now?", with two
  buttons and the emergency line, instead of "I didn't understand".
* ``self_harm``: a warm crisis message with the sourced crisis lines and a person; no
  screening, no module.
* ``minor`` / ``child_at_risk``: the child helpline and an urgent offer of a person; the case
  is flagged.
* ``coercion``: what the person described can be exploitation: check privately or talk.

"Not now" goes on with what the message asked for, so protection never costs an answer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.menu import FREE_TEXT_CONFIDENCE, route_free_text
from bot.flows.routes import Routes
from bot.flows.services import emergency_numbers, format_services
from bot.messages import (
    ChildAtRiskReported,
    Event,
    HandoffRequested,
    MinorDisclosed,
    RelayedToCase,
    SafetyCheckAsked,
    SelfHarmDisclosed,
)

MINOR_INDICATOR = "minor"
HANDOFF: dict[str, tuple[str, str]] = {
    "self_harm": ("self_harm", "urgent"),
    "minor": ("minor", "high"),
    "child_at_risk": ("child_at_risk", "high"),
    "coercion": ("safety", "high"),
    "travel": ("safety", "high"),
}
"""Offer -> (case reason, priority) when the person taps "talk to a person"."""
SERVICES: dict[str, str] = {"self_harm": "crisis", "minor": "child", "child_at_risk": "child"}
EVENTS: dict[str, type[Event]] = {
    "self_harm": SelfHarmDisclosed, "minor": MinorDisclosed,
    "child_at_risk": ChildAtRiskReported,
}


def lines(ctx: TurnContext, category: str, *, besides: str | None = None) -> str:
    """The verified services of a category, formatted (empty when there are none); with
    ``besides``, only those not already listed under that category (shown just above)."""
    found = tuple(s for s in ctx.content.services(category=category)
                  if besides is None or besides not in s.categories)
    return format_services(ctx, found) if found else ""


def indicators_of(ctx: TurnContext) -> tuple[str, ...]:
    """The coercion indicators of this message, plus `minor` when the person is one."""
    found = list(ctx.safety.indicators)
    if "minor" in ctx.safety or ctx.profile.age_band == "under_18":
        found.append(MINOR_INDICATOR)
    return tuple(found)


class SafetyFlow:
    name: ClassVar[str] = "safety"
    button_prefixes: ClassVar[tuple[str, ...]] = ("sf",)
    routes: ClassVar[Routes] = Routes(awaits_answer=True, answers_worry=True)

    def start(self, ctx: TurnContext, entry: str = "check", escalate_case: bool = False) -> Step:
        if entry == "check":
            return self._check(ctx)
        if escalate_case:
            return self._escalate(ctx, entry)
        text = ctx.t(f"safety.{entry}")
        block = lines(ctx, SERVICES[entry]) if entry in SERVICES else ""
        if block:
            text += "\n\n" + block
        if entry in ("self_harm", "minor"):
            text += "\n\n" + ctx.t(f"safety.{entry}_offer")
        buttons = [ctx.button(f"sf:human:{entry}", "safety.talk_now")]
        if entry == "coercion" or entry == "travel":
            buttons = [ctx.button("sc:start", "safety.coercion_check"),
                       ctx.button(f"sf:human:{entry}", "safety.coercion_human")]
        buttons.append(ctx.button("sf:notnow", "safety.not_now"))
        event = EVENTS.get(entry)
        return Step(
            messages=[ctx.say_text(text, *buttons)], flow="safety", state=f"safety.{entry}",
            data=self._remember(ctx), events=[event()] if event else [],
        )

    def handle(self, ctx: TurnContext) -> Step:
        button = ctx.button_id or ""
        state = ctx.conversation.state
        answer = ctx.understanding.yes_no if not button else None
        if button == "sf:unsafe" or (state == "safety.check" and answer == "no"):
            return ctx.start("emergency")
        if button == "sf:safe" or (state == "safety.check" and answer == "yes"):
            return ctx.start("menu", intro="safety.check_safe_reply")
        if button.startswith("sf:human:"):
            reason, priority = HANDOFF.get(button.removeprefix("sf:human:"), ("safety", "high"))
            return ctx.start("handoff", reason=reason, priority=priority,
                             indicators=tuple(ctx.data.get("indicators", ())))
        if button == "sf:notnow" or (answer == "no" and state != "safety.check"):
            return self._go_on(ctx)
        if answer == "yes" and state in {f"safety.{e}" for e in HANDOFF}:
            reason, priority = HANDOFF[state.removeprefix("safety.")]
            return ctx.start("handoff", reason=reason, priority=priority,
                             indicators=tuple(ctx.data.get("indicators", ())))
        return route_free_text(ctx)

    # --- steps ---------------------------------------------------------------------
    @staticmethod
    def _check(ctx: TurnContext) -> Step:
        text = ctx.t("safety.check") + "\n\n" + emergency_numbers(ctx)
        return Step(
            messages=[ctx.say_text(text, ctx.button("sf:unsafe", "safety.check_unsafe"),
                                   ctx.button("sf:safe", "safety.check_safe"))],
            flow="safety", state="safety.check", data=SafetyFlow._remember(ctx),
            events=[SafetyCheckAsked()],
        )

    @staticmethod
    def _escalate(ctx: TurnContext, entry: str) -> Step:
        """Already waiting for or talking to a caseworker: raise and flag the case, make sure
        the caseworker reads the very words, and give the lines at once."""
        reason, priority = HANDOFF[entry]
        events: list[Event] = [HandoffRequested(priority=priority, reason=reason,
                                                indicators=indicators_of(ctx))]
        if entry in EVENTS:
            events.insert(0, EVENTS[entry]())
        if ctx.text:
            events.append(RelayedToCase(text=ctx.text))
        text = ctx.t(f"safety.{entry}")
        block = lines(ctx, SERVICES.get(entry, "emergency"))
        if block:
            text += "\n\n" + block
        text += "\n\n" + ctx.t("handoff.flagged")
        return Step(messages=[ctx.say_text(text)], flow="handoff", state="handoff.waiting",
                    data=dict(ctx.data), events=events)

    @staticmethod
    def _remember(ctx: TurnContext) -> dict[str, Any]:
        """What "not now" and "talk to a person" need later: the message's intent and flags."""
        return {"intent": ctx.understanding.intent,
                "confidence": ctx.understanding.confidence,
                "indicators": list(indicators_of(ctx))}

    @staticmethod
    def _go_on(ctx: TurnContext) -> Step:
        """Answer what the earlier message asked for, as if no safety answer had come first."""
        intent = ctx.data.get("intent")
        route = ctx.flows.routing.intent(str(intent)) if intent else None
        confidence = float(ctx.data.get("confidence", 0))
        if route is None or route.flow == "menu" or confidence < FREE_TEXT_CONFIDENCE:
            return ctx.start("menu")
        return ctx.start(route.flow, **route.entry)
