"""Choosing the reply language: by button, by typing a language's name, or from a request."""

from __future__ import annotations

from typing import ClassVar

from bot.config import SUPPORTED_LANGUAGES
from bot.flows.base import Step, TurnContext
from bot.flows.handoff import back_in_line
from bot.flows.routes import Routes
from bot.messages import Button, LanguageChanged
from bot.words import fold, name_key


def named_language(ctx: TurnContext) -> str | None:
    """The language the user names in their message ("English please", "بالعربي"), if any."""
    typed = {name_key(word) for word in fold(ctx.text).split()}
    for lang in SUPPORTED_LANGUAGES:
        names = {name_key(name) for name in ctx.ui.words(f"words.language_{lang}")}
        if typed & names:
            return lang
    return None


class LanguageFlow:
    name: ClassVar[str] = "language"
    button_prefixes: ClassVar[tuple[str, ...]] = ("lang",)
    routes: ClassVar[Routes] = Routes(
        commands={"language": {}}, aliases={"lang": "language"},
        intents={"change_language": {}}, interrupts=frozenset({"change_language"}),
        awaits_answer=True,
    )

    def start(self, ctx: TurnContext) -> Step:
        chosen = named_language(ctx) if ctx.understanding.intent == "change_language" else None
        if chosen:
            return self._switch(ctx, chosen)
        buttons = tuple(
            Button(id=f"lang:{lang}", title=ctx.ui.text(lang, "language.name"))
            for lang in SUPPORTED_LANGUAGES
        )
        return Step(
            messages=[ctx.say("language.prompt", *buttons)], flow="language",
            state="language.choose",
        )

    def handle(self, ctx: TurnContext) -> Step:
        button = ctx.button_id or ""
        lang = button.removeprefix("lang:") if button.startswith("lang:") else named_language(ctx)
        if lang in SUPPORTED_LANGUAGES:
            return self._switch(ctx, lang)
        return self.start(ctx)

    @staticmethod
    def _switch(ctx: TurnContext, lang: str) -> Step:
        local = ctx.in_language(lang)
        menu = local.start("menu", intro="language.changed")
        return back_in_line(local, Step(
            messages=menu.messages, flow=menu.flow, state=menu.state, data=menu.data,
            events=[LanguageChanged(language=lang)], language=lang,
        ))
