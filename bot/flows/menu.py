"""The main menu, and where free text goes when no flow is waiting for something specific."""

from __future__ import annotations

from typing import Any, ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.routes import Routes

FREE_TEXT_CONFIDENCE = 0.35
"""Below this, free text is "not understood" rather than sent where the intent points."""

MENU_ITEMS = (
    ("menu:learn", "menu.learn"),
    ("menu:check", "menu.check"),
    ("menu:help", "menu.help"),
    ("menu:human", "menu.human"),
    ("menu:privacy", "menu.privacy"),
    ("menu:language", "menu.language"),
)
_BUTTON_TARGETS: dict[str, tuple[str, dict[str, Any]]] = {
    "menu:learn": ("awareness", {}),
    "menu:check": ("screening", {}),
    "menu:help": ("services", {}),
    "menu:human": ("handoff", {"reason": "user_request"}),
    "menu:privacy": ("privacy", {"entry": "info"}),
    "menu:language": ("language", {}),
}


def route_free_text(ctx: TurnContext) -> Step:
    """Send free text to the flow that declares its intent, or admit we did not understand."""
    route = ctx.flows.routing.intent(ctx.understanding.intent)
    if route is None or ctx.understanding.confidence < FREE_TEXT_CONFIDENCE:
        step = ctx.start("menu", intro="menu.not_understood")
        step.understood = False
        return step
    return ctx.start(route.flow, **route.entry)


class MenuFlow:
    name: ClassVar[str] = "menu"
    button_prefixes: ClassVar[tuple[str, ...]] = ("menu",)
    routes: ClassVar[Routes] = Routes(
        commands={"start": {"welcome": True}, "menu": {}}, aliases={"help": "menu"},
        intents={"greet": {"greeting": True}, "thanks": {"intro": "menu.thanks"},
                 "goodbye": {"intro": "menu.goodbye"}, "menu": {}},
        interrupts=frozenset({"menu"}),
    )

    def start(
        self, ctx: TurnContext, *, welcome: bool = False, greeting: bool = False,
        intro: str | None = None, media: str | None = None, empty: bool = False,
        unknown_command: bool = False,
    ) -> Step:
        """The menu, after an optional intro line (campaign codes are the engine's business:
        they are stored as an event, never put in the conversation or shown)."""
        messages = []
        if welcome or (greeting and ctx.profile.is_new) or (ctx.profile.is_new and not intro):
            messages.append(ctx.say("menu.welcome"))
        elif greeting:
            intro = "menu.greeting"
        if media:
            intro = f"media.{media}" if f"media.{media}" in ctx.ui.texts["en"] else "media.other"
        elif empty:
            intro = "menu.empty"
        elif unknown_command:
            intro = "menu.unknown_command"
        prompt = ctx.t(intro) + "\n\n" + ctx.t("menu.prompt") if intro else ctx.t("menu.prompt")
        buttons = tuple(ctx.button(button_id, key) for button_id, key in MENU_ITEMS)
        messages.append(ctx.say_text(prompt, *buttons))
        return Step(messages=messages, flow="menu", state="menu.main")

    def handle(self, ctx: TurnContext) -> Step:
        target = _BUTTON_TARGETS.get(ctx.button_id or "")
        if target is not None:
            flow, kwargs = target
            return ctx.start(flow, **kwargs)
        if ctx.button_id == "menu":
            return self.start(ctx)
        return route_free_text(ctx)
