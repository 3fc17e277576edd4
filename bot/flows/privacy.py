"""Privacy: an honest answer to "is this confidential?", "what do you know?" and "delete me"."""

from __future__ import annotations

from typing import ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.handoff import back_in_line, erase
from bot.flows.menu import route_free_text
from bot.flows.routes import Routes


class PrivacyFlow:
    name: ClassVar[str] = "privacy"
    button_prefixes: ClassVar[tuple[str, ...]] = ("pv",)
    routes: ClassVar[Routes] = Routes(
        commands={"privacy": {"entry": "info"}, "delete": {"entry": "delete"},
                  "mydata": {"entry": "mydata"}},
        intents={"privacy_info": {"entry": "info"}, "delete_my_data": {"entry": "delete"}},
        interrupts=frozenset({"privacy_info", "delete_my_data"}), awaits_answer=True,
    )

    def start(self, ctx: TurnContext, entry: str = "info") -> Step:
        if entry == "delete":
            return Step(
                messages=[ctx.say(
                    "privacy.delete_confirm", ctx.button("pv:delete:yes", "privacy.delete_yes"),
                    ctx.button("pv:delete:no", "common.cancel"),
                )],
                flow="privacy", state="privacy.delete_confirm",
            )
        if entry == "mydata":
            return self._summary(ctx)
        return Step(
            messages=[ctx.say(
                "privacy.info", ctx.button("pv:mydata", "privacy.mydata_button"),
                ctx.button("pv:delete", "privacy.delete_button"), ctx.button("menu", "common.menu"),
            )],
            flow="privacy", state="privacy.info",
        )

    def handle(self, ctx: TurnContext) -> Step:
        button = ctx.button_id
        confirming = ctx.conversation.state == "privacy.delete_confirm"
        if button == "pv:delete:yes" or (confirming and button is None
                                         and ctx.understanding.yes_no == "yes"):
            return erase(ctx)
        if button == "pv:delete:no" or (confirming and ctx.understanding.yes_no == "no"):
            return back_in_line(ctx, ctx.start("menu", intro="privacy.kept"))
        if button == "pv:delete":
            return self.start(ctx, entry="delete")
        if button == "pv:mydata":
            return self._summary(ctx)
        return route_free_text(ctx)

    @staticmethod
    def _summary(ctx: TurnContext) -> Step:
        profile = ctx.profile
        spec = ctx.content.subscribe
        ages = {o.id: o.title[ctx.lang] for o in ctx.content.screening.age_options}
        places = {g.id: g.name[ctx.lang] for g in spec.governorates}
        topics = {t.id: t.title[ctx.lang] for t in spec.topics}
        not_given = ctx.t("privacy.not_given")
        tips = (ctx.t("subscribe.separator").join(topics.get(t, t) for t in profile.subscription)
                if profile.subscription is not None else ctx.t("privacy.no_tips"))
        text = ctx.t(
            "privacy.summary", language=ctx.ui.text(ctx.lang, "language.name"),
            modules=len(profile.completed_modules),
            age=ages.get(profile.age_band or "", profile.age_band or not_given),
            case=ctx.t("privacy.case_open") if profile.open_case_id else ctx.t("privacy.no_case"),
            governorate=places.get(profile.governorate or "", profile.governorate or not_given),
            tips=tips,
            # the campaign code itself is never shown: someone may be reading along
            joined=ctx.t("privacy.joined_link") if profile.joined_via else not_given,
        )
        return Step(
            messages=[ctx.say_text(
                text, ctx.button("pv:delete", "privacy.delete_button"),
                ctx.button("menu", "common.menu"),
            )],
            flow="privacy", state="privacy.summary",
        )
