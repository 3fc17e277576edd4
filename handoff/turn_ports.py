"""The back office's side of a turn: the engine's ``CaseQueue`` and ``Referrals`` ports
(``bot.core.ports``), implemented over the queue and the referral service.

The effects of a turn reach the back office only through these, so the engine and the flows
never import ``handoff``; ``bot.app`` hands them to the engine.
"""

from __future__ import annotations

from bot.core.ports import CaseQueue, Referrals
from bot.messages import HandoffRequested
from bot.store.models import Case
from bot.store.repository import TurnTransaction
from handoff import queue
from handoff.referrals import service


class TurnCases:
    """Cases, in the turn's transaction (its ORM session and the user's data key)."""

    async def open_or_join(self, tx: TurnTransaction, request: HandoffRequested) -> Case:
        return await queue.open_or_join(tx, request)

    async def add_user_message(self, tx: TurnTransaction, text: str) -> None:
        await queue.add_user_message(tx, text)

    async def end_by_user(self, tx: TurnTransaction) -> None:
        await queue.end_by_user(tx)

    async def forget_user(self, tx: TurnTransaction) -> None:
        await queue.forget_user(tx)


class TurnReferrals:
    """The person's answers to a referral's consent question, and their erasure."""

    async def answer_in_chat(self, tx: TurnTransaction, *, referral_id: int, token: str,
                             answer: str) -> str:
        return await service.answer_in_chat(tx.db, tx.cipher, user_id=tx.user.id,
                                            referral_id=referral_id, token=token, answer=answer)

    async def forget_user(self, tx: TurnTransaction) -> None:
        await service.forget_user(tx.db, tx.cipher, tx.user.id)


# Checked by mypy: the adapters satisfy the engine's ports.
_CASES: CaseQueue[TurnTransaction] = TurnCases()
_REFERRALS: Referrals[TurnTransaction] = TurnReferrals()
