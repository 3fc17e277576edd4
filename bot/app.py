"""Composition root: build the engine and its parts from ``Settings``.

The only place that knows every concrete class; channels, the CLI and tests ask it for a
ready :class:`Sanad` and close it when done.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.config import Settings
from bot.content import ContentError, ContentLibrary
from bot.content.review_store import start_gated
from bot.core.ports import Outbox
from bot.engine import Engine
from bot.flood import FloodGuard
from bot.i18n import UiCatalog
from bot.messages import Outbound
from bot.outbox import record_turn_replies
from bot.store.db import create_engine, upgrade
from bot.store.repository import Store, TurnTransaction
from handoff.availability import AvailabilityProbe
from handoff.turn_ports import TurnCases, TurnReferrals
from nlu import NLUBackend, build_backend
from nlu.classifier import default_cache_dir
from nlu.safeguard import EmbeddedSafety, SafetyDetector

log = logging.getLogger(__name__)


class TurnOutbox:
    """The engine's ``Outbox`` port over :func:`bot.outbox.record_turn_replies`: the turn's
    replies, sealed under the user's data key, on the turn's own connection."""

    async def record_turn_replies(self, tx: TurnTransaction, *, channel: str,
                                  messages: Sequence[Outbound], idempotency_key: str) -> int:
        return await record_turn_replies(tx.connection, tx.user_cipher, user_id=tx.user.id,
                                         channel=channel, messages=messages,
                                         idempotency_key=idempotency_key)


_OUTBOX: Outbox[TurnTransaction] = TurnOutbox()  # checked by mypy: it satisfies the port


@dataclass
class Sanad:
    """A running bot core: settings, storage, NLU, content and the engine that ties them."""

    settings: Settings
    store: Store
    nlu: NLUBackend
    content: ContentLibrary
    ui: UiCatalog
    engine: Engine[TurnTransaction]

    async def aclose(self) -> None:
        await self.nlu.aclose()
        await self.store.engine.dispose()


def load_content(settings: Settings) -> tuple[ContentLibrary, UiCatalog]:
    """Load and validate content once at start-up (never per message)."""
    ui = UiCatalog.load()
    problems = ui.check()
    if problems:
        raise ContentError(problems)
    return ContentLibrary.load(show_drafts=settings.show_drafts), ui


async def build(settings: Settings, *, migrate: bool = True,
                nlu: NLUBackend | None = None, safety: SafetyDetector | None = None) -> Sanad:
    content, ui = load_content(settings)
    engine = create_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    store = Store.from_settings(settings, engine)
    if content.gated:  # production: serve only what a reviewer approved (content-review.md)
        async with store.session() as db:
            await start_gated(content, db)
    if nlu is None:
        nlu = build_backend(
            settings.nlu_backend, rasa_url=settings.rasa_url, cache_dir=settings.cache_dir
        )
    if safety is None:
        safety = EmbeddedSafety.load(settings.cache_dir or default_cache_dir())
    core = Engine(settings=settings, store=store, cases=TurnCases(), referrals=TurnReferrals(),
                  outbox=TurnOutbox(), nlu=nlu, content=content, ui=ui,
                  staff=AvailabilityProbe(store),
                  flood=FloodGuard(rate=settings.flood_rate, burst=settings.flood_burst),
                  safety=safety)
    return Sanad(settings=settings, store=store, nlu=nlu, content=content, ui=ui, engine=core)
