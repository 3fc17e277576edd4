"""Choosing the reply language: by button, by typing a language's name, or from a request."""

from __future__ import annotations

import unicodedata
from typing import ClassVar

from bot.config import SUPPORTED_LANGUAGES
from bot.flows.base import Step, TurnContext
from bot.flows.handoff import back_in_line
from bot.messages import Button, LanguageChanged


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold())
                   if not unicodedata.combining(c))


def named_language(ctx: TurnContext) -> str | None:
    """The language the user names in their message ("English please", "بالعربي"), if any."""
    words = set(_fold(ctx.text).replace("،", " ").replace(",", " ").split())
    for lang in SUPPORTED_LANGUAGES:
        names = {_fold(w.strip()) for w in ctx.ui.text(lang, f"words.language_{lang}").split(",")}
        for other in SUPPORTED_LANGUAGES:
            names |= {_fold(w.strip())
                      for w in ctx.ui.text(other, f"words.language_{lang}").split(",")}
        if words & {n for n in names if n}:
            return lang
    return None


class LanguageFlow:
    name: ClassVar[str] = "language"
    button_prefixes: ClassVar[tuple[str, ...]] = ("lang",)

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
