"""Configuration from the environment (see CONTRACT.md), validated once at start-up.

Bad values fail early with a message that names the variable, instead of surfacing later as an
obscure stack trace in the middle of a user's conversation.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.languages import LANGUAGES

log = logging.getLogger(__name__)

SUPPORTED_LANGUAGES = LANGUAGES.codes
"""Declared in bot/languages.py."""
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///sanad.db"
DEFAULT_RASA_URL = "http://127.0.0.1:5005"
DEFAULT_KEY_FILE = ".sanad_secret_key"


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, unit: str) -> float:
    """A finite number (``unit`` names it in the error), or ``default`` when unset."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of {unit}, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    return value


def _rate(env: Mapping[str, str], name: str, default: float) -> float:
    """Messages per second: a positive number."""
    value = _number(env, name, default, "messages per second")
    if not value > 0:
        raise ConfigError(f"{name} must be more than 0, got {env.get(name)!r}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration in seconds: a number, 0 or more."""
    value = _number(env, name, default, "seconds")
    if not value >= 0:
        raise ConfigError(f"{name} must be 0 or more, got {env.get(name)!r}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: bytes = field(default=b"", repr=False)
    old_secret_keys: tuple[bytes, ...] = field(default=(), repr=False)
    pseudonym_key: bytes = field(default=b"", repr=False)
    """Keys pseudonymous user ids; defaults to the secret key and must outlive rotations."""
    environment: str = "development"
    show_drafts: bool = True
    default_language: str = "ar"
    nlu_backend: str = "embedded"
    rasa_url: str = DEFAULT_RASA_URL
    cache_dir: Path | None = None
    retention_days: int = 90
    safe_words: tuple[str, ...] = ()
    max_message_chars: int = 4000
    flood_rate: float = 1.0
    flood_burst: int = 10
    turns_at_once: int | None = None
    """Turns one channel runs at once (``SANAD_TURNS_AT_ONCE``); None: the store pool's size."""
    telegram_reply_grace: float = 0.5
    """Seconds the Telegram webhook waits after the commit for the turn's replies to go out
    before answering (``SANAD_TELEGRAM_REPLY_GRACE``); the outbox delivers them either way."""
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_api_base_url: str | None = None
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    telegram_webhook_url: str | None = None
    whatsapp_token: str | None = field(default=None, repr=False)
    whatsapp_phone_number_id: str | None = None
    whatsapp_app_secret: str | None = field(default=None, repr=False)
    whatsapp_verify_token: str | None = field(default=None, repr=False)
    whatsapp_api_base_url: str = "https://graph.facebook.com/v21.0"
    port: int = 8080
    sla_urgent_minutes: int = 5
    sla_high_minutes: int = 30
    dp_epsilon: float = 0.5
    """Privacy loss of one differentially private indicators release (SANAD_DP_EPSILON)."""
    dp_budget: float = 1.0
    """Total privacy loss allowed per day of data, over all its releases (SANAD_DP_BUDGET)."""
    telegram_rate: float = 25.0
    """Campaign messages per second on Telegram, across all workers (SANAD_TELEGRAM_RATE)."""
    whatsapp_rate: float = 60.0
    """Campaign messages per second on WhatsApp, across all workers (SANAD_WHATSAPP_RATE)."""
    outbox_lease_seconds: int = 60
    """How long a sender owns an outbox row it is delivering; after a crash the row is
    delivered again once this has passed (``SANAD_OUTBOX_LEASE_SECONDS``)."""
    event_loop: str = "auto"
    """``auto`` (uvloop where installed), ``uvloop`` or ``asyncio`` (``SANAD_EVENT_LOOP``)."""
    metrics_token: str | None = field(default=None, repr=False)
    """Bearer token for ``/metrics`` (``SANAD_METRICS_TOKEN``); in production without one the
    route is not served: its counters (quick exits, emergencies) are nobody else's business."""
    parse_api: bool = True
    """``POST /model/parse`` (``SANAD_PARSE_API``): on in development, off in production unless
    enabled; rate-limited per client."""
    web_chat: bool = False
    """The web chat page ``/chat`` (``SANAD_WEB_CHAT``): on in development, off in production
    unless enabled."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks of reverse proxies whose ``X-Forwarded-For`` is believed
    (``SANAD_TRUSTED_PROXIES``); from anyone else the header is ignored."""

    @property
    def campaign_rates(self) -> dict[str, float]:
        """Campaign messages per second per channel."""
        return {"telegram": self.telegram_rate, "whatsapp": self.whatsapp_rate}

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        environment = _choice(env, "SANAD_ENV", "development", ("development", "production"))
        database_url = (env.get("DATABASE_URL") or DEFAULT_DATABASE_URL).strip()
        if not (database_url.startswith("sqlite+aiosqlite://")
                or database_url.startswith("postgresql+asyncpg://")):
            if database_url.startswith(("postgres://", "postgresql://")):
                # Platform add-ons hand out plain postgres URLs; use the async driver for them.
                database_url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
            else:
                raise ConfigError(
                    "DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
                    f"got {database_url.split('://', 1)[0]}://..."
                )
        secret = env.get("SANAD_SECRET_KEY")
        if secret is not None and len(secret.strip()) < 16:
            raise ConfigError("SANAD_SECRET_KEY must be at least 16 characters long")
        secret_key = secret.strip().encode() if secret else _local_key(env, environment)
        old_keys = tuple(
            k.strip().encode()
            for k in (env.get("SANAD_OLD_SECRET_KEYS") or "").split(",") if k.strip()
        )
        pseudonym = (env.get("SANAD_PSEUDONYM_KEY") or "").strip()
        if pseudonym and len(pseudonym) < 16:
            raise ConfigError("SANAD_PSEUDONYM_KEY must be at least 16 characters long")
        if old_keys and not pseudonym:
            # Without it the pseudonyms derive from the new key: every user would become a
            # stranger, and "delete my data" would miss the rows under the old pseudonym.
            raise ConfigError(
                "SANAD_OLD_SECRET_KEYS is set (a key rotation) but SANAD_PSEUDONYM_KEY is not: "
                "set SANAD_PSEUDONYM_KEY to the key the pseudonyms were made with (the old "
                "SANAD_SECRET_KEY if it was never set) so that users keep their pseudonyms")
        cache = env.get("SANAD_CACHE_DIR")
        wa_base = (env.get("WHATSAPP_API_BASE_URL") or cls.whatsapp_api_base_url).rstrip("/")
        safe_words = tuple(
            w.strip() for w in (env.get("SANAD_SAFE_WORDS") or "").split(",") if w.strip()
        )
        return cls(
            database_url=database_url,
            secret_key=secret_key,
            old_secret_keys=old_keys,
            pseudonym_key=pseudonym.encode() or secret_key,
            environment=environment,
            show_drafts=_flag(env, "SANAD_SHOW_DRAFTS", environment == "development"),
            default_language=_choice(env, "SANAD_DEFAULT_LANGUAGE", "ar", SUPPORTED_LANGUAGES),
            nlu_backend=_choice(env, "NLU_BACKEND", "embedded", ("embedded", "rasa")),
            rasa_url=(env.get("RASA_URL") or DEFAULT_RASA_URL).rstrip("/"),
            cache_dir=Path(cache) if cache else None,
            retention_days=_int(env, "SANAD_RETENTION_DAYS", 90, minimum=1),
            safe_words=safe_words,
            max_message_chars=_int(env, "SANAD_MAX_MESSAGE_CHARS", 4000, minimum=100),
            flood_rate=float(_int(env, "SANAD_FLOOD_RATE", 1, minimum=1)),
            flood_burst=_int(env, "SANAD_FLOOD_BURST", 10, minimum=1),
            turns_at_once=_int(env, "SANAD_TURNS_AT_ONCE", 0, minimum=0) or None,
            telegram_reply_grace=_seconds(env, "SANAD_TELEGRAM_REPLY_GRACE", 0.5),
            telegram_bot_token=env.get("TELEGRAM_BOT_TOKEN") or None,
            telegram_api_base_url=env.get("TELEGRAM_API_BASE_URL") or None,
            telegram_webhook_secret=env.get("TELEGRAM_WEBHOOK_SECRET") or None,
            telegram_webhook_url=env.get("TELEGRAM_WEBHOOK_URL") or None,
            whatsapp_token=env.get("WHATSAPP_TOKEN") or None,
            whatsapp_phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID") or None,
            whatsapp_app_secret=env.get("WHATSAPP_APP_SECRET") or None,
            whatsapp_verify_token=env.get("WHATSAPP_VERIFY_TOKEN") or None,
            whatsapp_api_base_url=wa_base,
            port=_int(env, "PORT", 8080, minimum=1),
            sla_urgent_minutes=_int(env, "SANAD_SLA_URGENT_MIN", 5, minimum=1),
            sla_high_minutes=_int(env, "SANAD_SLA_HIGH_MIN", 30, minimum=1),
            dp_epsilon=_rate(env, "SANAD_DP_EPSILON", 0.5),
            dp_budget=_rate(env, "SANAD_DP_BUDGET", 1.0),
            telegram_rate=_rate(env, "SANAD_TELEGRAM_RATE", 25.0),
            whatsapp_rate=_rate(env, "SANAD_WHATSAPP_RATE", 60.0),
            outbox_lease_seconds=_outbox_lease(env),
            event_loop=_choice(env, "SANAD_EVENT_LOOP", "auto", ("auto", "uvloop", "asyncio")),
            trusted_proxies=_networks(env, "SANAD_TRUSTED_PROXIES"),
            metrics_token=_token(env, "SANAD_METRICS_TOKEN"),
            parse_api=_flag(env, "SANAD_PARSE_API", environment == "development"),
            web_chat=_flag(env, "SANAD_WEB_CHAT", environment == "development"),
        )


def _token(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    if value and len(value) < 16:
        raise ConfigError(f"{name} must be at least 16 characters long")
    return value or None


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or networks (``10.0.0.0/8``), checked here."""
    found = tuple(n.strip() for n in (env.get(name) or "").split(",") if n.strip())
    for network in found:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"{name} must list IP addresses or networks, got {network!r}") \
                from None
    return found


def _outbox_lease(env: Mapping[str, str]) -> int:
    """``SANAD_OUTBOX_LEASE_SECONDS``: long enough for a send with its retries (a lease that
    runs out mid-send means a second copy), short enough that a crash delays little."""
    value = _int(env, "SANAD_OUTBOX_LEASE_SECONDS", 60, minimum=1)
    if value > 3600:
        raise ConfigError(f"SANAD_OUTBOX_LEASE_SECONDS must be at most 3600, got {value}")
    return value


def _local_key(env: Mapping[str, str], environment: str) -> bytes:
    """Read or create the local key file, so a developer needs no set-up to start chatting.

    In production a missing ``SANAD_SECRET_KEY`` is an error: a key that silently lives in a
    file on one web dyno would make every other process unable to read the data.
    """
    if environment == "production":
        raise ConfigError("SANAD_SECRET_KEY is required when SANAD_ENV=production")
    path = Path(env.get("SANAD_KEY_FILE") or DEFAULT_KEY_FILE)
    if path.exists():
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 16:
            raise ConfigError(f"key file {path} is too short; delete it or set SANAD_SECRET_KEY")
        return key.encode()
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key + "\n", encoding="ascii")
    log.warning(
        "SANAD_SECRET_KEY is not set: generated a key into %s. Keep it safe: without it the "
        "encrypted data cannot be read. Set SANAD_SECRET_KEY in production.", path,
    )
    return key.encode()
