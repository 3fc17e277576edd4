"""The person's answer to a proposed referral, asked in their own chat.

The question itself comes from the back office (handoff/referrals/notify.py) through the
outbox, with buttons ``rc:<answer>:<referral id>:<token>``: yes / no / ask me later, and on
later updates "stop sharing". This flow only reads a tap on one of them, acknowledges it in the
person's language and announces ``ReferralConsentAnswered``; whether the token still matches an
open question is checked where the referral lives (a stale button changes nothing). The person
stays where they were (usually the conversation with their caseworker).
"""

from __future__ import annotations

from typing import ClassVar

from bot.flows.base import Step, TurnContext
from bot.flows.routes import Routes
from bot.messages import ReferralConsentAnswered

ANSWERS = ("yes", "no", "later", "stop")
MAX_TOKEN_CHARS = 16


def parse(button_id: str) -> tuple[str, int, str] | None:
    """``rc:<answer>:<id>:<token>`` -> (answer, id, token); None for anything else."""
    parts = button_id.split(":")
    if len(parts) != 4 or parts[0] != "rc" or parts[1] not in ANSWERS:
        return None
    answer, raw_id, token = parts[1], parts[2], parts[3]
    if not raw_id.isdigit() or len(raw_id) > 18 or not token.isalnum() \
            or len(token) > MAX_TOKEN_CHARS:
        return None
    return answer, int(raw_id), token


class ReferralConsentFlow:
    name: ClassVar[str] = "referral_consent"
    button_prefixes: ClassVar[tuple[str, ...]] = ("rc",)
    routes: ClassVar[Routes] = Routes()

    def start(self, ctx: TurnContext) -> Step:
        """Never entered on its own: only a tap on a referral button reaches this flow."""
        return ctx.start("menu")

    def handle(self, ctx: TurnContext) -> Step:
        parsed = parse(ctx.button_id or "")
        if parsed is None:
            return Step(understood=False, flow=ctx.conversation.flow,
                        state=ctx.conversation.state, data=dict(ctx.data))
        answer, referral_id, token = parsed
        conversation = ctx.conversation
        return Step(
            messages=[ctx.say(f"referral.answered_{answer}")],
            flow=conversation.flow, state=conversation.state, data=dict(conversation.data),
            events=[ReferralConsentAnswered(referral_id=referral_id, answer=answer,
                                            token=token)],
        )
