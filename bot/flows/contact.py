"""After a quick exit or an erasure: ask, neutrally, whether it is OK to continue here.

The person who hid the chat may not be the one holding the phone now. Until the user answers
"yes" to a question that says nothing about what this chat is, the outbox holds every message
for them (caseworker replies, campaigns) and the conversation does not pick up where it was.
Only the "yes" button of *this* question counts: each question carries a fresh token, so a
button left on screen from before the exit (or from an earlier question) cannot resume contact.
"""

from __future__ import annotations

import secrets
from typing import ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.handoff import back_in_line
from bot.flows.routes import Routes
from bot.messages import ContactCheckAsked, ContactResumed

STATE = "contact.check"


class ContactFlow:
    name: ClassVar[str] = "contact"
    button_prefixes: ClassVar[tuple[str, ...]] = ("cp",)
    routes: ClassVar[Routes] = Routes()

    def start(self, ctx: TurnContext) -> Step:
        token = secrets.token_hex(4)
        return Step(
            messages=[ctx.say("contact.check", ctx.button(f"cp:yes:{token}", "contact.yes_button"),
                              ctx.button(f"cp:no:{token}", "contact.no_button"))],
            flow=self.name, state=STATE, data={"token": token}, events=[ContactCheckAsked()],
        )

    def handle(self, ctx: TurnContext) -> Step:
        answer = self._answer(ctx)
        if answer == "yes":
            step = back_in_line(ctx, ctx.start("menu", intro="contact.resumed"))
            return step.then_events(ContactResumed())
        if answer == "no":
            return Step(messages=[ctx.say("contact.not_now")], flow=self.name, state=STATE,
                        data=dict(ctx.data))
        return self.start(ctx)

    @staticmethod
    def _answer(ctx: TurnContext) -> str | None:
        """"yes"/"no" to the question on screen: its own buttons, or a typed yes/no right
        after it was asked. Anything else (an old button, other words) asks again."""
        token = ctx.data.get("token") if ctx.conversation.state == STATE else None
        if token is None:
            return None
        if ctx.button_id is not None:
            kind, _, given = ctx.button_id.removeprefix("cp:").partition(":")
            return kind if given == token and kind in ("yes", "no") else None
        return ctx.understanding.yes_no
