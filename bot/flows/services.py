"""Where to get help: the verified referral directory (``content/services.yml``), by need."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from bot.content.topics import hits
from bot.flows.base import Step, TurnContext
from bot.flows.menu import route_free_text
from bot.flows.routes import Routes

if TYPE_CHECKING:
    from bot.content import Service

CATEGORIES = ("emergency", "trafficking", "child", "women", "crisis", "refugees", "legal",
              "psychosocial")


def format_services(ctx: TurnContext, services: Iterable[Service]) -> str:
    """One short block per service; only verified entries ever reach this function."""
    lines = []
    for service in services:
        contact = service.phone or service.url or ctx.t("services.via_referral")
        lines.append(ctx.t(
            "services.line", name=service.name.get(ctx.lang) or service.name.get("en", ""),
            contact=contact, helps_with=service.helps_with.get(ctx.lang, ""),
        ))
        hours = service.hours.get(ctx.lang) if service.hours else None
        if hours:
            lines.append(ctx.t("services.hours", hours=hours))
    return "\n".join(lines)


def emergency_numbers(ctx: TurnContext) -> str:
    return format_services(ctx, ctx.content.services(category="emergency"))


def named_need(ctx: TurnContext) -> tuple[str, tuple[Service, ...]] | None:
    """The need a request for help names ("I'm a refugee, where can I find a lawyer?"), by the
    ``words.need_<category>`` lists: the services in every named category (refugee legal aid),
    else those of the last one named, under that category's heading; None when it names none."""
    named = [name for name in CATEGORIES if f"words.need_{name}" in ctx.ui.texts["en"]
             and hits(ctx.ui.words(f"words.need_{name}"), ctx.text)]
    if not named:
        return None
    last = ctx.content.services(category=named[-1])
    every = tuple(s for s in last if all(name in s.categories for name in named))
    found = every or last
    return (named[-1], found) if found else None


class ServicesFlow:
    name: ClassVar[str] = "services"
    button_prefixes: ClassVar[tuple[str, ...]] = ("sv",)
    routes: ClassVar[Routes] = Routes(
        commands={"services": {}}, intents={"find_services": {}},
        interrupts=frozenset({"find_services"}),
    )

    def start(self, ctx: TurnContext, category: str | None = None) -> Step:
        named = None if category or ctx.button_id else named_need(ctx)
        if named is not None:
            category, found = named
            text = ctx.t(f"services.category.{category}") + "\n\n" + format_services(ctx, found)
        elif category:
            found = ctx.content.services(category=category)
            text = ctx.t(f"services.category.{category}") + "\n\n" + (
                format_services(ctx, found) if found else ctx.t("services.none")
            )
        else:
            text = ctx.t("services.intro") + "\n\n" + emergency_numbers(ctx)
        buttons = [
            ctx.button(f"sv:{name}", f"services.button.{name}")
            for name in CATEGORIES if name != category and ctx.content.services(category=name)
        ]
        buttons.append(ctx.button("menu", "common.menu"))
        return Step(
            messages=[ctx.say_text(text, *buttons)], flow="services", state="services.list",
        )

    def handle(self, ctx: TurnContext) -> Step:
        button = ctx.button_id or ""
        if button.startswith("sv:") and button[3:] in CATEGORIES:
            return self.start(ctx, category=button[3:])
        return route_free_text(ctx)
