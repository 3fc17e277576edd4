"""Awareness modules: topic menu, short chunks with next/back, rating, quiz and what to read next.

Content comes from ``content/<lang>/modules``; this flow only walks through it. Progress is
announced as events (opened, completed, rated) and stored by the engine, so a user can resume.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from bot.content.plural import plural
from bot.flows.base import Step, TurnContext
from bot.flows.menu import route_free_text
from bot.flows.routes import Routes
from bot.messages import (
    Button,
    ModuleCompleted,
    ModuleOpened,
    ModuleProgressed,
    ModuleRated,
    QuizAnswered,
)

if TYPE_CHECKING:
    from bot.content import FollowUp, Module, Source


#: Requests the NLU recognises surely win over a follow-up answer: "I want to talk to
#: someone" inside a module is a request for a person, not a question about the topic.
ACTION_INTENTS = frozenset({
    "talk_to_human", "delete_my_data", "change_language", "privacy_info", "subscribe",
    "unsubscribe", "menu",
})
ACTION_CONFIDENCE = 0.5
SURE_FOLLOW_UP = 0.4
"""A module question matched at least this well wins over a request the same words suggest
("can I delete the messages and block him?" is no erasure request); the matcher's own
threshold is lower."""
BESIDE_ANSWER: dict[str, tuple[str, str] | None] = {
    "delete_my_data": ("pv:delete", "privacy.delete_button"),
    "privacy_info": ("pv:mydata", "privacy.mydata_button"),
    "find_services": ("menu:help", "menu.help"),
    "talk_to_human": ("menu:human", "menu.human"),
    "unsubscribe": None,
}
"""Requests a sure answer of the module being read wins over, each with the button (id, text
key) that keeps the request one tap away. "How do I stop my pictures being shared?" asks the
module, not to stop the tips; "a girl is threatened, which number?" gets the module's answer
with a person one tap away. ``None``: no button (stopping the tips is never urgent)."""
DOCUMENT_INDICATORS = frozenset({"documents_retained"})
"""The coercion offer leads with a kept passport: beside a module's direct answer it is added
only when the message is about kept documents; beside "what is the legal age of marriage?" or
"can I sell my kidney?" (indicators the answer itself addresses) it was noise."""
SMALL_TALK = frozenset({"greet", "goodbye", "thanks", "affirm", "deny"})
SMALL_TALK_WORDS = 4
"""A short message the NLU reads as small talk ("hello there", "ok thanks") is never matched
against the module's questions: a loose match would answer a greeting with "who to call"."""


class AwarenessFlow:
    name: ClassVar[str] = "awareness"
    button_prefixes: ClassVar[tuple[str, ...]] = ("aw",)
    routes: ClassVar[Routes] = Routes(
        commands={"learn": {}},
        intents={intent: {"intent": intent} for intent in (
            "learn_trafficking", "learn_irregular_migration", "check_job_offer", "safe_migration",
            "know_rights", "report_concern")},
    )

    # --- entry points ----------------------------------------------------------------
    def start(self, ctx: TurnContext, module_id: str | None = None,
              intent: str | None = None) -> Step:
        module = None
        if module_id:
            module = ctx.content.module(module_id, ctx.lang)
        elif intent:
            module = ctx.content.module_for_intent(intent, ctx.lang, ctx.text or None)
        if module is not None and self._visible(ctx, module):
            return self._show(ctx, module, 0)
        if intent == "report_concern":
            return ctx.start("services", category="trafficking")
        return self._topics(ctx)

    def handle(self, ctx: TurnContext) -> Step:
        parts = (ctx.button_id or "").split(":")
        action = parts[1] if len(parts) > 1 else ""
        if action == "open" and len(parts) == 3:
            return self.start(ctx, module_id=parts[2])
        if action == "topics":
            return self._topics(ctx)
        if action in {"next", "back"} and len(parts) == 4:
            module = ctx.content.module(parts[2], ctx.lang)
            if module is not None and parts[3].isdigit():
                return self._show(ctx, module, int(parts[3]))
        if action == "rate" and len(parts) == 4:
            return self._rated(ctx, parts[2], parts[3] == "1")
        if action == "quiz" and len(parts) == 3:
            return self._quiz_item(ctx, parts[2], 0)
        if action == "qa" and len(parts) == 5 and parts[3].isdigit():
            return self._quiz_answer(ctx, parts[2], int(parts[3]), parts[4])
        if action == "src" and len(parts) in (3, 4):
            return self._sources(ctx, parts[2], parts[3] if len(parts) == 4 else None)
        if ctx.button_id:
            return route_free_text(ctx)
        return self._free_text(ctx)

    def _stale(self, ctx: TurnContext) -> Step:
        """A button of ours we no longer understand: the engine answers with the menu."""
        step = self._topics(ctx)
        step.understood = False
        return step

    # --- free text inside a module ---------------------------------------------------
    def _free_text(self, ctx: TurnContext) -> Step:
        """A question asked while reading a module gets that module's direct answer; only
        what is not one of its questions goes on to the general NLU. (The safety layer has
        already read the message: the engine runs it before any flow.)"""
        module = self._current(ctx)
        found = (ctx.content.follow_up(module.id, ctx.lang, ctx.text)
                 if module is not None and ctx.text and not _small_talk(ctx) else None)
        asks_action = (ctx.understanding.intent in ACTION_INTENTS
                       and ctx.understanding.confidence >= ACTION_CONFIDENCE
                       and not (ctx.understanding.intent in BESIDE_ANSWER and found
                                and found.score >= SURE_FOLLOW_UP))
        if module is not None and ctx.text and not asks_action:
            # With the words: "sextortion" typed while reading the general module opens the
            # subtopic it names, as it does from the menu; a loose match with one of this
            # module's questions ("trafic d'organes" ~ "trafic de migrants") yields to it.
            intent = ctx.understanding.intent
            target = (ctx.content.module_for_intent(intent, ctx.lang, ctx.text)
                      if intent and ctx.understanding.confidence >= 0.35 else None)
            names_other = (target is not None and target.id != module.id
                           and intent in target.subtopic_of)
            if found is not None and not (names_other and found.score < SURE_FOLLOW_UP):
                return self._answer(ctx, module, found.question)
            if target is not None and target.id == module.id:
                return self._same_topic(ctx, module)
        return route_free_text(ctx)

    def _current(self, ctx: TurnContext) -> Module | None:
        module_id = ctx.data.get("module")
        if not isinstance(module_id, str):
            return None
        return ctx.content.module(module_id, ctx.lang)

    def _position(self, ctx: TurnContext, module: Module) -> int:
        position = ctx.data.get("position")
        if isinstance(position, int) and 0 <= position < len(module.messages):
            return position
        return 0

    def _answer(self, ctx: TurnContext, module: Module, question: FollowUp) -> Step:
        """The direct answer, one short line about its sources, and the way back to where
        the user was in the module."""
        text = question.answer
        if question.sources:
            text += "\n\n" + self._sources_line(ctx, len(question.sources))
        text += "\n\n" + ctx.t("awareness.ask_more")
        buttons = []
        if question.sources:
            buttons.append(ctx.button(f"aw:src:{module.id}:{question.id}",
                                      "awareness.sources_button"))
        buttons += self._back_to_module(ctx, module)
        data = {**ctx.data, "module": module.id, "question": question.id}
        return Step(messages=[ctx.say_text(text, *buttons)], flow="awareness",
                    state=ctx.conversation.state if ctx.conversation.flow == "awareness"
                    else "awareness.reading", data=data)

    def _back_to_module(self, ctx: TurnContext, module: Module) -> list[Button]:
        """Continue where the user was reading (not page 1 again), or other topics."""
        buttons = []
        position = self._position(ctx, module)
        if ctx.conversation.state == "awareness.reading":
            buttons.append(ctx.button(f"aw:next:{module.id}:{position}",
                                      "awareness.continue_button"))
        buttons += [ctx.button("aw:topics", "awareness.topics_button"),
                    ctx.button("menu", "common.menu")]
        return buttons

    def _same_topic(self, ctx: TurnContext, module: Module) -> Step:
        """The general NLU points at the module the user is already reading: do not restart
        it at page 1; offer to go on from where they are, and to ask a question."""
        text = ctx.t("awareness.same_topic", title=module.title)
        data = _without_answer(ctx.data)
        return Step(messages=[ctx.say_text(text, *self._back_to_module(ctx, module))],
                    flow="awareness", state=ctx.conversation.state or "awareness.reading",
                    data=data)

    # --- sources ---------------------------------------------------------------------
    def _sources_line(self, ctx: TurnContext, count: int) -> str:
        """One short line on a phone screen; the full list is one tap away."""
        return ctx.t("awareness.sources_line",
                     count=plural(ctx.t("awareness.sources_count"), ctx.lang, count))

    def _sources(self, ctx: TurnContext, module_id: str, question_id: str | None) -> Step:
        """The full list of sources of a module, or of one follow-up answer."""
        module = ctx.content.module(module_id, ctx.lang)
        if module is None:
            return self._stale(ctx)
        listed: tuple[Source, ...] = module.sources
        if question_id is not None:
            question = module.question(question_id)
            if question is None:
                return self._stale(ctx)
            listed = tuple(s for s in module.sources if s.id in question.sources)
        lines = "\n".join(f"• {s.title}" + (f" — {s.url}" if s.url else
                                            f" ({s.publisher})" if s.publisher else "")
                          for s in listed)
        text = ctx.t("awareness.sources", sources=lines)
        data = (_without_answer(ctx.data) if ctx.conversation.flow == "awareness"
                else {"module": module.id})
        state = (ctx.conversation.state if ctx.conversation.flow == "awareness"
                 else "awareness.finished")
        ctx_buttons = self._back_to_module(ctx, module)
        return Step(messages=[ctx.say_text(text, *ctx_buttons)], flow="awareness",
                    state=state or "awareness.finished", data=data)

    # --- steps ---------------------------------------------------------------------
    def _visible(self, ctx: TurnContext, module: Module) -> bool:
        return any(m.id == module.id for m in ctx.content.modules(ctx.lang))

    def _topics(self, ctx: TurnContext) -> Step:
        modules = ctx.content.modules(ctx.lang)
        done = ctx.profile.completed_modules
        ordered = sorted(modules, key=lambda m: m.id in done)  # unfinished topics first
        # All topics: a channel whose lists are shorter (WhatsApp: 10 rows) degrades them.
        buttons = [Button(id=f"aw:open:{m.id}", title=m.button) for m in ordered]
        resume = ctx.profile.resume
        current = ctx.content.module(resume[0], ctx.lang) if resume else None
        if resume and current is not None and resume[1] < len(current.messages):
            buttons.insert(0, ctx.button(f"aw:next:{current.id}:{resume[1]}",
                                         "awareness.resume", title=current.button))
        buttons.append(ctx.button("menu", "common.menu"))
        key = "awareness.topics_progress" if done else "awareness.topics"
        total = len(modules)
        text = ctx.t(key, done=len(done & {m.id for m in modules}), total=total,
                     count=plural(ctx.t("awareness.topics_count"), ctx.lang, total))
        return Step(messages=[ctx.say_text(text, *buttons)], flow="awareness",
                    state="awareness.topics")

    def _show(self, ctx: TurnContext, module: Module, position: int) -> Step:
        position = max(0, min(position, len(module.messages) - 1))
        last = position == len(module.messages) - 1
        body = module.messages[position].text
        if position == 0:
            body = ctx.t("awareness.heading", title=module.title) + "\n\n" + body
        counter = ctx.t("awareness.counter", n=position + 1, total=len(module.messages))
        text = f"{body}\n\n{counter}"
        events: list[Any] = [ModuleOpened(module.id) if position == 0
                             else ModuleProgressed(module.id, position)]
        data = {"module": module.id, "position": position}
        if not last:
            buttons = [ctx.button(f"aw:next:{module.id}:{position + 1}", "awareness.next")]
            if position > 0:
                buttons.append(ctx.button(f"aw:back:{module.id}:{position - 1}", "awareness.back"))
            buttons.append(ctx.button("aw:topics", "awareness.topics_button"))
            return Step(messages=[ctx.say_text(text, *buttons)], flow="awareness",
                        state="awareness.reading", data=data, events=events)
        events.append(ModuleCompleted(module.id))
        end_text = self._sources_line(ctx, len(module.sources))
        if module.questions:
            end_text += "\n" + ctx.t("awareness.ask_more")
        end = ctx.say_text(
            end_text + "\n\n" + ctx.t("awareness.useful"),
            ctx.button(f"aw:rate:{module.id}:1", "common.yes"),
            ctx.button(f"aw:rate:{module.id}:0", "common.no"),
            *([ctx.button(f"aw:quiz:{module.id}", "awareness.quiz_button")] if module.quiz else []),
            ctx.button(f"aw:src:{module.id}", "awareness.sources_button"),
        )
        return Step(messages=[ctx.say_text(text), end], flow="awareness",
                    state="awareness.finished", data=data, events=events)

    def _suggestions(self, ctx: TurnContext, module_id: str) -> list[Button]:
        module = ctx.content.module(module_id, ctx.lang)
        done = ctx.profile.completed_modules | {module_id}
        nexts = [ctx.content.module(n, ctx.lang) for n in (module.next if module else ())]
        buttons = [Button(id=f"aw:open:{m.id}", title=m.button)
                   for m in nexts if m is not None and m.id not in done][:2]
        if module is not None and module.quiz:
            buttons.append(ctx.button(f"aw:quiz:{module.id}", "awareness.quiz_button"))
        if not ctx.profile.subscribed:  # the moment someone found a topic useful
            buttons.append(ctx.button("sub:yes", "awareness.tips_button"))
        buttons += [ctx.button("aw:topics", "awareness.topics_button"),
                    ctx.button("menu", "common.menu")]
        return buttons

    def _rated(self, ctx: TurnContext, module_id: str, useful: bool) -> Step:
        if ctx.content.module(module_id, ctx.lang) is None:
            return self._topics(ctx)
        text = ctx.t("awareness.thanks_rating") + "\n\n" + ctx.t("awareness.what_next")
        return Step(
            messages=[ctx.say_text(text, *self._suggestions(ctx, module_id))],
            flow="awareness", state="awareness.next", data={"module": module_id},
            events=[ModuleRated(module_id, useful)],
        )

    def _quiz_item(self, ctx: TurnContext, module_id: str, index: int) -> Step:
        module = ctx.content.module(module_id, ctx.lang)
        if module is None or index >= len(module.quiz):
            return self._topics(ctx)
        item = module.quiz[index]
        text = ctx.t("awareness.quiz_question", n=index + 1, total=len(module.quiz),
                     statement=item.statement)
        return Step(
            messages=[ctx.say_text(
                text, ctx.button(f"aw:qa:{module_id}:{index}:myth", "awareness.myth"),
                ctx.button(f"aw:qa:{module_id}:{index}:fact", "awareness.fact"),
            )],
            flow="awareness", state="awareness.quiz", data={"module": module_id, "quiz": index},
        )

    def _quiz_answer(self, ctx: TurnContext, module_id: str, index: int, answer: str) -> Step:
        module = ctx.content.module(module_id, ctx.lang)
        if module is None or index >= len(module.quiz):
            return self._topics(ctx)
        item = module.quiz[index]
        correct = answer == item.answer
        verdict = ctx.t("awareness.correct" if correct else "awareness.incorrect",
                        answer=ctx.t(f"awareness.{item.answer}"))
        feedback = ctx.say_text(f"{verdict}\n{item.feedback}")
        event = QuizAnswered(module_id, correct)
        if index + 1 < len(module.quiz):
            nxt = self._quiz_item(ctx, module_id, index + 1)
            return Step(messages=[feedback, *nxt.messages], flow=nxt.flow, state=nxt.state,
                        data=nxt.data, events=[event])
        done = ctx.say_text(ctx.t("awareness.quiz_done"), *self._suggestions(ctx, module_id))
        return Step(messages=[feedback, done], flow="awareness", state="awareness.next",
                    data={"module": module_id}, events=[event])


def answered_question(step: Step) -> str | None:
    """The module question this step answers directly (``data.question`` is set only by the
    turn that answers it), else None."""
    question = step.data.get("question") if step.flow == "awareness" else None
    return question if isinstance(question, str) else None


def offers_coercion_help(step: Step, indicators: Iterable[str]) -> bool:
    """Whether the coercion offer belongs beside this step (``DOCUMENT_INDICATORS``)."""
    return answered_question(step) is None or bool(DOCUMENT_INDICATORS.intersection(indicators))


def _without_answer(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "question"}


def _small_talk(ctx: TurnContext) -> bool:
    return (ctx.understanding.intent in SMALL_TALK
            and ctx.understanding.confidence >= ACTION_CONFIDENCE
            and len((ctx.text or "").split()) <= SMALL_TALK_WORDS)
