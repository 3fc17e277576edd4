"""Confidential risk screening: consent, age, yes/no questions, an explainable level.

The questions, weights, red flags and thresholds are data (``content/screening.yml``); this
flow asks them one by one, accepts buttons or typed yes/no/skip in any variety, and scores with
:func:`score` so that the result always says which answers drove it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.services import format_services
from bot.messages import Button, ScreeningCompleted, ScreeningStarted

if TYPE_CHECKING:
    from bot.content import ScreeningSpec

LEVELS = ("low", "medium", "high", "urgent")
PRIORITY_FOR_LEVEL = {"urgent": "urgent", "high": "high", "medium": "normal", "low": "normal"}
MINOR = "minor"
MAX_EXPLAINED = 4


@dataclass(frozen=True)
class Assessment:
    level: str
    score: int
    indicators: tuple[str, ...]
    red_flags: tuple[tuple[str, ...], ...]


def score(spec: ScreeningSpec, answers: Mapping[str, str], *, minor: bool) -> Assessment:
    """Sum the weights of "yes" answers, then let red-flag rules raise the level."""
    weights = {q.id: q.weight for q in spec.questions}
    present = [q.id for q in spec.questions if answers.get(q.id) == "yes"]
    if minor:
        present.append(MINOR)
    total = sum(weights.get(i, 0) for i in present)
    level = "low"
    for name in LEVELS[1:]:
        if total >= spec.thresholds[name]:
            level = name
    fired = []
    for rule in spec.red_flags:
        if set(rule.all_of) <= set(present):
            fired.append(tuple(rule.all_of))
            if LEVELS.index(rule.min_level) > LEVELS.index(level):
                level = rule.min_level
    return Assessment(level, total, tuple(present), tuple(fired))


class ScreeningFlow:
    name: ClassVar[str] = "screening"
    button_prefixes: ClassVar[tuple[str, ...]] = ("sc",)

    def start(self, ctx: TurnContext) -> Step:
        spec = ctx.content.screening
        return Step(
            messages=[ctx.say(
                "screening.consent", ctx.button("sc:consent:yes", "screening.begin"),
                ctx.button("sc:consent:no", "screening.not_now"), count=len(spec.questions),
            )],
            flow="screening", state="screening.consent",
        )

    def handle(self, ctx: TurnContext) -> Step:
        state = ctx.conversation.state
        button = ctx.button_id or ""
        if button == "sc:start":
            return self.start(ctx)
        if self._wants_to_stop(ctx):
            return ctx.start("menu", intro="screening.stopped")
        if state == "screening.consent" or button.startswith("sc:consent:"):
            return self._consent(ctx, button)
        if state == "screening.age" or button.startswith("sc:age:"):
            return self._age(ctx, button)
        if state.startswith("screening.q.") and not button.startswith("sc:handoff:"):
            return self._answer(ctx, button)
        if state == "screening.result" or button.startswith("sc:handoff:"):
            return self._after_result(ctx, button)
        return self.start(ctx)

    # --- steps ---------------------------------------------------------------------
    def _consent(self, ctx: TurnContext, button: str) -> Step:
        answer = button.removeprefix("sc:consent:") if button else ctx.understanding.yes_no
        if answer == "yes":
            step = self._ask_age(ctx)
            step.events.append(ScreeningStarted())
            return step
        if answer == "no":
            return ctx.start("menu", intro="screening.declined")
        return self.start(ctx)

    def _ask_age(self, ctx: TurnContext) -> Step:
        spec = ctx.content.screening
        buttons = [Button(id=f"sc:age:{o.id}", title=o.title[ctx.lang]) for o in spec.age_options]
        return Step(
            messages=[ctx.say_text(spec.age_text[ctx.lang], *buttons)],
            flow="screening", state="screening.age", data={"answers": {}},
        )

    def _age(self, ctx: TurnContext, button: str) -> Step:
        spec = ctx.content.screening
        options = {o.id: o for o in spec.age_options}
        chosen = button.removeprefix("sc:age:") if button.startswith("sc:age:") else None
        if chosen is None and ctx.text.strip().isdigit():
            chosen = age_option_for(int(ctx.text.strip()), options)
        if chosen is None and ctx.understanding.skip:
            chosen = next((o.id for o in spec.age_options if o.id == "no_answer"), None)
        option = options.get(chosen or "")
        if option is None:
            step = self._ask_age(ctx)
            step.messages.insert(0, ctx.say("screening.age_hint"))
            return step
        data = {"answers": {}, "age": option.id, "minor": option.minor}
        messages = []
        if option.minor:
            child = ctx.content.services(category="child")
            messages.append(ctx.say_text(
                ctx.t("screening.minor_note") + "\n\n" + format_services(ctx, child)
            ))
        step = self._ask(ctx, 0, data)
        step.messages[:0] = messages
        return step

    def _ask(self, ctx: TurnContext, index: int, data: dict) -> Step:
        spec = ctx.content.screening
        if index >= len(spec.questions):
            return self._result(ctx, data)
        question = spec.questions[index]
        text = ctx.t("screening.progress", n=index + 1, total=len(spec.questions))
        text += "\n" + question.text[ctx.lang]
        return Step(
            messages=[ctx.say_text(
                text, ctx.button("sc:ans:yes", "common.yes"), ctx.button("sc:ans:no", "common.no"),
                ctx.button("sc:ans:skip", "screening.skip"),
            )],
            flow="screening", state=f"screening.q.{question.id}", data={**data, "index": index},
        )

    def _answer(self, ctx: TurnContext, button: str) -> Step:
        spec = ctx.content.screening
        data = dict(ctx.data)
        index = int(data.get("index", 0))
        if index >= len(spec.questions):
            return self._result(ctx, data)
        question = spec.questions[index]
        answer = button.removeprefix("sc:ans:") if button.startswith("sc:ans:") else None
        if answer is None:
            answer = "skip" if ctx.understanding.skip else ctx.understanding.yes_no
        if answer not in {"yes", "no", "skip"}:
            if self._asks_why(ctx):
                step = self._ask(ctx, index, data)
                step.messages.insert(0, ctx.say_text(question.why[ctx.lang]))
                return step
            step = self._ask(ctx, index, data)
            step.messages.insert(0, ctx.say("screening.answer_hint"))
            return step
        answers = {**data.get("answers", {}), question.id: answer}
        return self._ask(ctx, index + 1, {**data, "answers": answers})

    def _result(self, ctx: TurnContext, data: dict) -> Step:
        spec = ctx.content.screening
        answers: dict[str, str] = data.get("answers", {})
        assessment = score(spec, answers, minor=bool(data.get("minor")))
        completed = ScreeningCompleted(
            risk_level=assessment.level, score=assessment.score,
            indicators=assessment.indicators, answers=tuple(sorted(answers.items())),
            age_band=data.get("age"),
        )
        questions = {q.id: q for q in spec.questions}
        drivers = sorted(
            (questions[i] for i in assessment.indicators if i in questions),
            key=lambda q: -q.weight,
        )[:MAX_EXPLAINED]
        parts = [ctx.t(f"screening.level.{assessment.level}"),
                 spec.level_text[assessment.level][ctx.lang]]
        if drivers or data.get("minor"):
            reasons = [f"• {q.advice[ctx.lang]}" for q in drivers]
            if data.get("minor"):
                reasons.insert(0, f"• {ctx.t('screening.minor_reason')}")
            parts.append(ctx.t("screening.because") + "\n" + "\n".join(reasons))
        messages = [ctx.say_text("\n\n".join(parts))]
        service_ids = list(dict.fromkeys(s for q in drivers for s in q.services))
        if data.get("minor"):
            service_ids.insert(0, "child_helpline_16000")
        services = [s for s in (ctx.content.service(i) for i in service_ids) if s and s.verified]
        if services:
            messages.append(ctx.say_text(ctx.t("screening.services") + "\n\n"
                                         + format_services(ctx, services)))
        result_data = {"level": assessment.level, "indicators": list(assessment.indicators)}
        if assessment.level in {"high", "urgent"} or data.get("minor"):
            messages.append(ctx.say(
                "screening.offer_human", ctx.button("sc:handoff:yes", "screening.human_yes"),
                ctx.button("sc:handoff:no", "screening.human_no"),
            ))
        else:
            suggestions = [
                Button(id=f"aw:open:{m.id}", title=m.button)
                for m in (ctx.content.module_for_intent(i, ctx.lang)
                          for i in ("check_job_offer", "safe_migration", "know_rights"))
                if m is not None
            ]
            messages.append(ctx.say_text(
                ctx.t("screening.suggestions"), *suggestions,
                ctx.button("sc:handoff:yes", "menu.human"), ctx.button("menu", "common.menu"),
            ))
        return Step(messages=messages, flow="screening", state="screening.result",
                    data=result_data, events=[completed])

    def _after_result(self, ctx: TurnContext, button: str) -> Step:
        answer = button.removeprefix("sc:handoff:") if button.startswith("sc:handoff:") else (
            ctx.understanding.yes_no
        )
        level = str(ctx.data.get("level", "low"))
        if answer == "yes":
            return ctx.start(
                "handoff", reason="screening", priority=PRIORITY_FOR_LEVEL.get(level, "normal"),
                risk_level=level, indicators=tuple(ctx.data.get("indicators", ())),
            )
        if answer == "no":
            return ctx.start("menu", intro="screening.no_handoff")
        from bot.flows.menu import route_free_text

        return route_free_text(ctx)

    @staticmethod
    def _wants_to_stop(ctx: TurnContext) -> bool:
        words = {w.strip().casefold() for w in ctx.t("words.stop").split(",")}
        return ctx.button_id == "sc:stop" or ctx.text.strip().casefold() in words

    @staticmethod
    def _asks_why(ctx: TurnContext) -> bool:
        words = {w.strip().casefold() for w in ctx.t("words.why").split(",")}
        return ctx.text.strip().casefold().rstrip("?؟") in words


def age_option_for(age: int, options: Mapping[str, object]) -> str | None:
    if not 5 <= age <= 100:
        return None
    if age < 18:
        return "under_18"
    return "18_24" if age <= 24 else "25_plus"
