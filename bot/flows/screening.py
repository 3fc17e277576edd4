"""Confidential risk screening: consent, age, yes/no questions, an explainable level.

The questions, weights, red flags and thresholds are data (``content/screening.yml``); this
flow asks them one by one, accepts buttons or typed yes/no/skip in any variety, and scores with
:func:`bot.flows.screening_score.score` so that the result always says which answers drove it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.menu import route_free_text
from bot.flows.routes import Routes
from bot.flows.screening_score import (
    LEVELS,
    PRIORITY_FOR_LEVEL,
    Assessment,
    age_option_for,
    offers_person,
    priority_for,
    score,
)
from bot.flows.services import format_services
from bot.messages import Button, ScreeningCompleted, ScreeningStarted
from bot.words import fold, starts_with_any
from nlu.ages import age_answer, is_minor_statement

# Scoring lives in bot.flows.screening_score (pure, pinned by its own tests); re-exported here.
__all__ = ["LEVELS", "PRIORITY_FOR_LEVEL", "Assessment", "ScreeningFlow", "age_option_for",
           "score"]

MAX_EXPLAINED = 4
AGE_MISSES = 2
"""Unreadable answers to the age question before moving on as "no_answer" (hint once)."""
LEAVE_CONFIDENCE = 0.8
"""An unreadable answer with an intent this sure leaves screening for where it points."""
MAX_WHY_TOKENS = 8
RESUME_KEY = "screening_resume"
"""Where the progress of a left screening waits, in the next state's data, for sc:resume."""
_STAYS = frozenset({"affirm", "deny", "greet", "thanks", "goodbye", "start_screening",
                    "unsubscribe", "out_of_scope"})
"""Intents that never take an answer out of screening (an opt-out keeps the user's place)."""
_NO_RESUME_OFFER = frozenset({"exit", "emergency"})
"""Quick exit must leave no trace and an emergency answer nothing but help."""
_MISREADINGS: tuple[tuple[str, dict[str, str]], ...] = (
    ("menu", {}), ("privacy", {"entry": "info"}))
"""The interrupts the classifier reads into short answers ("why do you ask?" is `menu` or
`privacy_info`): when screening can read the answer itself, it stays."""


class ScreeningFlow:
    name: ClassVar[str] = "screening"
    button_prefixes: ClassVar[tuple[str, ...]] = ("sc",)
    routes: ClassVar[Routes] = Routes(
        commands={"check": {}}, intents={"start_screening": {}},
        keeps_place=True, awaits_answer=True, answers_worry=True,
    )

    def start(self, ctx: TurnContext) -> Step:
        if not ctx.content.screening_offered:  # production, no approved version: never ask
            return ctx.start("menu", intro="screening.unavailable")
        spec = ctx.content.screening
        return Step(
            messages=[ctx.say(
                "screening.consent", ctx.button("sc:consent:yes", "screening.begin"),
                ctx.button("sc:consent:no", "screening.not_now"), count=len(spec.questions),
            )],
            flow="screening", state="screening.consent",
        )

    def handle(self, ctx: TurnContext) -> Step:
        if not ctx.content.screening_offered:  # withdrawn mid-way: stop asking (content-review.md)
            return ctx.start("menu", intro="screening.unavailable")
        state = ctx.conversation.state
        button = ctx.button_id or ""
        if button == "sc:start":
            return self.start(ctx)
        if button == "sc:resume":
            return self._resume(ctx)
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
        step = self.start(ctx)
        if not button and self._asks_why(ctx):
            step.messages.insert(0, ctx.say("screening.why_general"))
        return step

    def _ask_age(self, ctx: TurnContext, misses: int = 0) -> Step:
        spec = ctx.content.screening
        buttons = [Button(id=f"sc:age:{o.id}", title=o.title[ctx.lang]) for o in spec.age_options]
        data: dict = {"answers": {}}
        if misses:
            data["age_misses"] = misses
        return Step(
            messages=[ctx.say_text(spec.age_text[ctx.lang], *buttons)],
            flow="screening", state="screening.age", data=data,
        )

    def _age(self, ctx: TurnContext, button: str) -> Step:
        spec = ctx.content.screening
        options = {o.id: o for o in spec.age_options}
        chosen = button.removeprefix("sc:age:") if button.startswith("sc:age:") else None
        typed = "" if button else ctx.text
        if chosen is None and typed:
            chosen = self._typed_age(typed, options)
        if chosen is None and ctx.understanding.skip:
            chosen = "no_answer"
        option = options.get(chosen or "")
        if option is None:
            misses = int(ctx.data.get("age_misses", 0))
            if typed and self._asks_why(ctx):
                step = self._ask_age(ctx, misses)
                step.messages.insert(0, ctx.say("screening.why_general"))
                return step
            if typed and self._leaves(ctx):
                return route_free_text(ctx)
            if misses + 1 < AGE_MISSES or "no_answer" not in options:
                step = self._ask_age(ctx, misses + 1)
                step.messages.insert(0, ctx.say("screening.age_hint"))
                return step
            option = options["no_answer"]
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
                why = question.why.get(ctx.lang) if question.why else None
                reason = ctx.say_text(why) if why else ctx.say("screening.why_general")
                step.messages.insert(0, reason)
                return step
            if self._leaves(ctx):
                return route_free_text(ctx)
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
        if offers_person(assessment.level, minor=bool(data.get("minor"))):
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
                "handoff", reason="screening", priority=priority_for(level),
                risk_level=level, indicators=tuple(ctx.data.get("indicators", ())),
            )
        if answer == "no":
            return ctx.start("menu", intro="screening.no_handoff")
        return route_free_text(ctx)

    # --- leaving and coming back -----------------------------------------------------------
    def leave(self, ctx: TurnContext, step: Step, target: str, kwargs: dict) -> Step:
        """Called by :meth:`TurnContext.start` when the user goes from screening to ``target``:
        tell them they left, with one tap to resume, and park the progress in the new state's
        data. Asides the engine answers without leaving (a voice note, "stop tips here") and
        quick exit / emergency get nothing."""
        state = ctx.conversation.state
        asking = state.startswith("screening.") and state != "screening.result"
        misread = (target, kwargs) in _MISREADINGS
        if asking and misread and not ctx.button_id and self._reads(ctx):
            # An intent read into "why do you ask?" or "ايوه" (menu, privacy_info...):
            # an answer screening can read itself stays in screening.
            return self.handle(ctx)
        in_progress = state == "screening.age" or state.startswith("screening.q.")
        aside = "media" in kwargs or kwargs.get("entry") == "stop_here"
        if not in_progress or aside or target in _NO_RESUME_OFFER:
            return step
        saved = {**ctx.data, "state": state}
        resume = ctx.button("sc:resume", "screening.resume")
        if target == "menu" and step.messages:
            last = step.messages[-1]
            note = "" if kwargs.get("intro") == "screening.stopped" else ctx.t("screening.left")
            text = f"{note}\n\n{last.text}" if note else last.text
            step.messages[-1] = ctx.say_text(text, resume, *last.buttons)
        else:
            step.messages.insert(0, ctx.say("screening.left", resume))
        step.data = {**step.data, RESUME_KEY: saved}
        return step

    def _resume(self, ctx: TurnContext) -> Step:
        """Back to the question the user left, with their answers; fresh when nothing waits."""
        saved = ctx.data.get(RESUME_KEY)
        if ctx.conversation.flow == "screening" and ctx.conversation.state != "screening.result":
            saved = {**ctx.data, "state": ctx.conversation.state}
        if not isinstance(saved, dict) or not str(saved.get("state", "")).startswith("screening."):
            return self.start(ctx)
        if saved["state"] == "screening.age":
            return self._ask_age(ctx)
        data = {k: v for k, v in saved.items() if k != "state"}
        return self._ask(ctx, int(data.get("index", 0)), data)

    def _reads(self, ctx: TurnContext) -> bool:
        """True when the text is an answer this step understands (why, yes/no, skip, age)."""
        u = ctx.understanding
        if self._asks_why(ctx) or self._wants_to_stop(ctx) or u.skip:
            return True
        if ctx.conversation.state == "screening.age":
            return self._typed_age(ctx.text, {"under_18": None}) is not None or bool(
                age_answer(ctx.text))
        return u.yes_no is not None

    def _leaves(self, ctx: TurnContext) -> bool:
        """An unreadable answer that clearly asks for something else (a module, services)."""
        u = ctx.understanding
        route = ctx.flows.routing.intent(u.intent)
        return (u.confidence >= LEAVE_CONFIDENCE and route is not None
                and u.intent not in _STAYS and route.flow != self.name)

    @staticmethod
    def _typed_age(text: str, options: Mapping[str, object]) -> str | None:
        age = age_answer(text)
        if age is not None:
            return age_option_for(age, options)
        return "under_18" if is_minor_statement(text) and "under_18" in options else None

    @staticmethod
    def _wants_to_stop(ctx: TurnContext) -> bool:
        return ctx.button_id == "sc:stop" or fold(ctx.text) in ctx.ui.words("words.stop")

    @staticmethod
    def _asks_why(ctx: TurnContext) -> bool:
        """"why?", "why do you ask", "ليش عم تسأل", "leh bt2ol keda": a short message that
        starts with one of the why-words of any language."""
        return starts_with_any(ctx.text, ctx.ui.words("words.why"), MAX_WHY_TOKENS)
