"""Every module that defines tables, so Alembic (and tests) see the whole schema.

Tables live next to the code that owns them (the core, the handoff back office, a channel's
delivery records, outreach); they all share ``bot.store.models.Base``.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from bot.store.models import Base

MODEL_MODULES = (
    "bot.store.models",
    "handoff.models",
    "bot.channels.whatsapp_store",
    "bot.outreach.models",
    "handoff.indicators.models",
    "bot.content.review_models",
    "bot.sendbudget.models",
    "handoff.referrals.models",
)


def metadata() -> MetaData:
    """The complete schema: imports every model module, returns the shared metadata."""
    for name in MODEL_MODULES:
        importlib.import_module(name)

    return Base.metadata
