"""Opt-in to tips with a few choices, and opt-out at any time ("stop", "الغاء", /stop).

Opt-in: yes → topics ("all" is one tap) → the language of the tips → optional governorate →
optional age band → ``Subscribed``. Governorate and age are asked only while unknown, each with
a skip, and never required (under-18s may subscribe). The choices are data
(``content/subscribe.yml``); their ids are the outreach segment vocabulary.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bot.config import SUPPORTED_LANGUAGES
from bot.flows.base import Step, TurnContext
from bot.flows.menu import route_free_text
from bot.flows.routes import Routes
from bot.flows.screening import age_option_for
from bot.messages import Button, LanguageChanged, Subscribed, Unsubscribed
from bot.words import fold, name_key

ALL = "all"


class SubscribeFlow:
    name: ClassVar[str] = "subscribe"
    button_prefixes: ClassVar[tuple[str, ...]] = ("sub",)
    routes: ClassVar[Routes] = Routes(
        commands={"subscribe": {}, "unsubscribe": {"entry": "stop"}},
        aliases={"stop": "unsubscribe"},
        intents={"subscribe": {}, "unsubscribe": {"entry": "stop"}},
        interrupts=frozenset({"unsubscribe"}), asides={"unsubscribe": {"entry": "stop_here"}},
        awaits_answer=True,
    )

    def start(self, ctx: TurnContext, entry: str = "offer") -> Step:
        """``offer`` (ask), ``choose`` (straight to topics), ``stop`` (opt-out, then the menu)
        or ``stop_here`` (opt-out confirmation only: the engine keeps the user's place)."""
        if entry in ("stop", "stop_here"):
            return self._stop(ctx, menu=entry == "stop")
        if entry == "choose":
            return self._topics(ctx, [])
        if ctx.profile.subscription is not None:
            return Step(messages=[ctx.say(
                "subscribe.already", ctx.button("sub:change", "subscribe.change_button"),
                ctx.button("sub:stop", "subscribe.stop_button"), ctx.button("menu", "common.menu"),
                topics=self._titles(ctx, ctx.profile.subscription),
            )], flow="subscribe", state="subscribe.offer")
        return Step(
            messages=[ctx.say("subscribe.offer", ctx.button("sub:yes", "common.yes"),
                              ctx.button("sub:no", "common.no"))],
            flow="subscribe", state="subscribe.offer",
        )

    def handle(self, ctx: TurnContext) -> Step:
        button = ctx.button_id or ""
        action, _, value = button.removeprefix("sub:").partition(":")
        state = ctx.conversation.state
        if button in ("sub:yes", "sub:change") or (
            not button and state == "subscribe.offer" and ctx.understanding.yes_no == "yes"
        ):
            return self._topics(ctx, [])
        if button == "sub:no" or (not button and state == "subscribe.offer"
                                  and ctx.understanding.yes_no == "no"):
            return ctx.start("menu", intro="subscribe.declined")
        if button == "sub:stop":
            return self._stop(ctx, menu=True)
        if action in ("topic", "done", "lang", "gov", "age") and button.startswith("sub:"):
            return self._answer(ctx, action, value)
        if not button and state.startswith("subscribe.") and state != "subscribe.offer":
            typed = self._typed(ctx, state)
            if typed is not None:
                return typed
        if not button and ctx.understanding.intent == "unsubscribe":
            return ctx.start("menu", intro="subscribe.declined")  # "stop" while choosing
        return route_free_text(ctx)

    # --- steps ---------------------------------------------------------------------
    def _answer(self, ctx: TurnContext, action: str, value: str) -> Step:
        data = dict(ctx.data)
        chosen = list(data.get("topics", []))
        spec = ctx.content.subscribe
        if action == "topic":
            ids = [t.id for t in spec.topics]
            if value == ALL:
                chosen = ids
            elif value in ids and value not in chosen:
                chosen.append(value)
            if len(chosen) < len(ids):
                return self._topics(ctx, chosen)
            return self._language(ctx, {**data, "topics": chosen})
        if action == "done":
            return self._language(ctx, {**data, "topics": chosen or [t.id for t in spec.topics]})
        if action == "lang" and value in SUPPORTED_LANGUAGES:
            if value == ctx.lang:
                return self._governorate(ctx, data)
            step = self._governorate(ctx.in_language(value), data)
            step.language = value
            return step.then_events(LanguageChanged(value))
        if action == "gov":
            known = {g.id for g in spec.governorates}
            return self._age(ctx, {**data, "governorate": value if value in known else None})
        if action == "age":
            return self._finish(ctx, {**data, "age_band": value if value in spec.age_bands
                                      else None})
        return self._topics(ctx, chosen)

    def _typed(self, ctx: TurnContext, state: str) -> Step | None:
        """Free text in a choice state: a governorate's name, an age, or "skip"."""
        data = dict(ctx.data)
        if state == "subscribe.governorate":
            if ctx.understanding.skip:
                return self._age(ctx, {**data, "governorate": None})
            found = find_governorate(ctx, ctx.text)
            if found is not None:
                return self._age(ctx, {**data, "governorate": found})
            return _with_hint(self._governorate(ctx, data), ctx, "subscribe.governorate_hint")
        if state == "subscribe.age":
            if ctx.understanding.skip:
                return self._finish(ctx, {**data, "age_band": None})
            digits = fold(ctx.text)
            band = age_option_for(int(digits), {}) if digits.isdigit() else None
            if band in ctx.content.subscribe.age_bands:
                return self._finish(ctx, {**data, "age_band": band})
            return _with_hint(self._age(ctx, data), ctx, "subscribe.age_hint")
        return None

    def _topics(self, ctx: TurnContext, chosen: list[str]) -> Step:
        spec = ctx.content.subscribe
        buttons: list[Button] = []
        if chosen:
            text = ctx.t("subscribe.topics_more", topics=self._titles(ctx, chosen))
            buttons.append(ctx.button("sub:done", "subscribe.continue_button"))
        else:
            text = ctx.t("subscribe.topics")
            buttons.append(ctx.button(f"sub:topic:{ALL}", "subscribe.all_button"))
        buttons += [Button(f"sub:topic:{t.id}", t.title[ctx.lang])
                    for t in spec.topics if t.id not in chosen]
        return Step(messages=[ctx.say_text(text, *buttons)], flow="subscribe",
                    state="subscribe.topics", data={"topics": chosen})

    def _language(self, ctx: TurnContext, data: dict[str, Any]) -> Step:
        others = [lang for lang in SUPPORTED_LANGUAGES if lang != ctx.lang]
        buttons = [ctx.button(f"sub:lang:{ctx.lang}", "subscribe.keep_language",
                              language=ctx.t("language.name"))]
        buttons += [Button(f"sub:lang:{lang}", ctx.ui.text(lang, "language.name"))
                    for lang in others]
        return Step(messages=[ctx.say("subscribe.language", *buttons,
                                      language=ctx.t("language.name"))],
                    flow="subscribe", state="subscribe.language", data=data)

    def _governorate(self, ctx: TurnContext, data: dict[str, Any]) -> Step:
        if ctx.profile.governorate is not None:
            return self._age(ctx, data)
        buttons = [Button(f"sub:gov:{g.id}", g.name[ctx.lang])
                   for g in ctx.content.subscribe.governorates if g.shortlist]
        buttons.append(ctx.button("sub:gov:skip", "subscribe.skip_button"))
        return Step(messages=[ctx.say("subscribe.governorate", *buttons)], flow="subscribe",
                    state="subscribe.governorate", data=data)

    def _age(self, ctx: TurnContext, data: dict[str, Any]) -> Step:
        if ctx.profile.age_band is not None:
            return self._finish(ctx, data)
        titles = {o.id: o.title[ctx.lang] for o in ctx.content.screening.age_options}
        buttons = [Button(f"sub:age:{band}", titles[band])
                   for band in ctx.content.subscribe.age_bands if band in titles]
        buttons.append(ctx.button("sub:age:skip", "subscribe.skip_button"))
        return Step(messages=[ctx.say("subscribe.age", *buttons)], flow="subscribe",
                    state="subscribe.age", data=data)

    def _finish(self, ctx: TurnContext, data: dict[str, Any]) -> Step:
        topics = tuple(data.get("topics") or [t.id for t in ctx.content.subscribe.topics])
        intro = ctx.t("subscribe.done", topics=self._titles(ctx, topics))
        step = ctx.start("menu", intro="subscribe.done_short")
        step.messages.insert(0, ctx.say_text(intro))
        return step.then_events(Subscribed(
            topics=topics, governorate=data.get("governorate"), age_band=data.get("age_band"),
        ))

    @staticmethod
    def _stop(ctx: TurnContext, *, menu: bool) -> Step:
        if ctx.profile.subscription is None:
            key = "subscribe.not_subscribed"
            return ctx.start("menu", intro=key) if menu else Step(messages=[ctx.say(key)])
        if not menu:
            return Step(messages=[ctx.say("subscribe.stopped")], events=[Unsubscribed()])
        return ctx.start("menu", intro="subscribe.stopped").then_events(Unsubscribed())

    @staticmethod
    def _titles(ctx: TurnContext, topic_ids: tuple[str, ...] | list[str]) -> str:
        titles = {t.id: t.title[ctx.lang] for t in ctx.content.subscribe.topics}
        return ctx.t("subscribe.separator").join(titles[t] for t in topic_ids if t in titles)


def _with_hint(step: Step, ctx: TurnContext, key: str) -> Step:
    step.messages.insert(0, ctx.say(key))
    return step


def _norm(text: str) -> str:
    """A typed place name, folded, without articles or spaces: "el-Menya", "Menya",
    "المنيا" and "منيا" meet their entries however they were written in the list."""
    return name_key(text).replace(" ", "")


def find_governorate(ctx: TurnContext, text: str) -> str | None:
    """The governorate a typed name (any language, an alias or the id) points to."""
    typed = _norm(text)
    if not typed:
        return None
    for governorate in ctx.content.subscribe.governorates:
        names = [*governorate.name.values(), *governorate.aliases, governorate.id]
        if any(_norm(name) == typed for name in names):
            return governorate.id
    return None
