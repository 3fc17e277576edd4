"""Which budget a process uses, from the environment (documented in ``docs/send-budget.md``).

``SANAD_SEND_BUDGET_URL``: ``database`` (the default: the ``send_budgets`` row on
``DATABASE_URL``, shared by every process on that database, no extra service), ``memory``
(this process only: one process, or tests) or ``redis://host:port/db`` (Redis, for sites that
run one anyway). ``SANAD_TELEGRAM_SEND_LIMIT`` and ``SANAD_WHATSAPP_SEND_LIMIT`` are the
platform's limits in messages per second (Telegram 30; WhatsApp 80, the Cloud API's default
tier: raise it with the tier); the budget spends ``SANAD_SEND_BUDGET_HEADROOM`` of it (0.9), so
that network jitter never pushes a second over the limit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.config import ConfigError, Settings
from bot.sendbudget import gcra
from bot.sendbudget.budget import Backend, MemoryBackend, PrioritisedBudget
from bot.sendbudget.database import DatabaseBackend
from bot.store.repository import Store

DEFAULT_LIMITS = {"telegram": 30.0, "whatsapp": 80.0}
"""Messages per second the platform allows one bot (Telegram) or phone number (WhatsApp)."""
DEFAULT_HEADROOM = 0.9
DEFAULT_PREFIX = "sanad:budget:"


@dataclass(frozen=True)
class BudgetConfig:
    url: str = "database"
    limits: Mapping[str, float] | None = None
    headroom: float = DEFAULT_HEADROOM
    prefix: str = DEFAULT_PREFIX

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BudgetConfig:
        env = os.environ if env is None else env
        url = (env.get("SANAD_SEND_BUDGET_URL") or "database").strip()
        if url not in ("database", "memory") and not url.startswith(("redis://", "rediss://",
                                                                     "unix://")):
            raise ConfigError("SANAD_SEND_BUDGET_URL must be database, memory or a redis:// "
                              f"URL, got {url.split('://')[0]!r}")
        limits = {channel: _positive(env, f"SANAD_{channel.upper()}_SEND_LIMIT", default)
                  for channel, default in DEFAULT_LIMITS.items()}
        headroom = _positive(env, "SANAD_SEND_BUDGET_HEADROOM", DEFAULT_HEADROOM)
        if headroom > 1:
            raise ConfigError("SANAD_SEND_BUDGET_HEADROOM must be at most 1")
        return cls(url, limits, headroom, env.get("SANAD_SEND_BUDGET_PREFIX") or DEFAULT_PREFIX)

    def limits_for(self, channel: str) -> gcra.Limits:
        """The platform limit times the headroom, without bursts: slots one interval apart,
        so that the latency of a shared store, which may shift a batch of slots, never
        crowds a second (Telegram: 27/s, at most 28 slots in any second)."""
        limit = (self.limits or DEFAULT_LIMITS).get(channel, DEFAULT_LIMITS["telegram"])
        return gcra.Limits(rate=limit * self.headroom, burst=1)


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def open_budget(channel: str, identity: str, store: Store | None, *,
                config: BudgetConfig | None = None) -> PrioritisedBudget:
    """The budget of one bot (``identity``: the bot id, the phone number id; never a secret)
    for this process. ``store`` is needed for the ``database`` backend; without one (a channel
    with no database) the budget falls back to this process's memory."""
    config = config or BudgetConfig.from_env()
    limits = config.limits_for(channel)
    key = f"{channel}:{identity}"[:64]
    backend: Backend
    if config.url.startswith(("redis://", "rediss://", "unix://")):
        from redis.asyncio import from_url

        from bot.sendbudget.redis_backend import RedisBackend

        backend = RedisBackend(from_url(config.url), key, limits, prefix=config.prefix,
                               owns_client=True)
    elif config.url == "database" and store is not None:
        # PostgreSQL: a connection of its own, never queued behind turns. SQLite: the store's
        # one writer (a second connection would only fight it for the file's write lock).
        own = store.engine.dialect.name == "postgresql"
        backend = DatabaseBackend(store, key, limits, own_connection=own)
    else:
        backend = MemoryBackend(limits)
    return PrioritisedBudget(backend, name=channel, interval=limits.interval)


def identities(settings: Settings) -> dict[str, str]:
    """Who each channel's budget belongs to: the bot id (the public part of the token) and
    the WhatsApp phone number id."""
    return {"telegram": (settings.telegram_bot_token or "").split(":", 1)[0],
            "whatsapp": settings.whatsapp_phone_number_id or ""}


def channel_budgets(settings: Settings, store: Store | None,
                    channels: Iterable[str]) -> dict[str, PrioritisedBudget]:
    """The budgets of ``channels`` (those with a known identity) for this process."""
    config = BudgetConfig.from_env()
    known = identities(settings)
    return {channel: open_budget(channel, known[channel], store, config=config)
            for channel in channels if known.get(channel)}
