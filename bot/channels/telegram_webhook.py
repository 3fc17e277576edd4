"""The webhook's settings, checked the way ``setWebhook`` checks them, before start-up calls it.

Telegram refuses a webhook URL that is not HTTPS or not on port 443, 80, 88 or 8443, and a
secret token outside ``[A-Za-z0-9_-]{1,256}`` (https://core.telegram.org/bots/api#setwebhook).
Found locally, or in Telegram's 400 answer, either is a configuration error naming the variable
(``sanad serve`` exits with code 2), never a traceback in the middle of start-up.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from telegram.error import TelegramError

from bot.config import ConfigError

URL_VARIABLE = "TELEGRAM_WEBHOOK_URL"
SECRET_VARIABLE = "TELEGRAM_WEBHOOK_SECRET"
PORTS = (443, 80, 88, 8443)
"""The only ports Telegram delivers webhooks to."""
SECRET_FORMAT = re.compile(r"[A-Za-z0-9_-]{1,256}")


def check_secret(secret: str | None) -> None:
    """``TELEGRAM_WEBHOOK_SECRET`` as Telegram accepts it (``None``: not set)."""
    if secret is not None and not SECRET_FORMAT.fullmatch(secret):
        raise ConfigError(f"{SECRET_VARIABLE} must be 1-256 characters of A-Z, a-z, 0-9, _ and -")


def check_url(url: str) -> None:
    """``TELEGRAM_WEBHOOK_URL`` as ``setWebhook`` accepts it. The message quotes the URL's
    scheme and port only: a URL may carry a path secret."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:  # a port that is not a number, brackets that do not close, ...
        raise ConfigError(f"{URL_VARIABLE} is not a valid URL") from None
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ConfigError(f"{URL_VARIABLE} must be an https:// URL with a host name "
                          "(Telegram delivers webhooks over HTTPS only)")
    if any(c.isspace() for c in url):
        raise ConfigError(f"{URL_VARIABLE} must not contain spaces")
    if port not in PORTS:
        raise ConfigError(f"{URL_VARIABLE} uses port {port}: Telegram delivers webhooks only "
                          f"to ports {', '.join(map(str, PORTS))}")


def refusal(exc: TelegramError) -> ConfigError:
    """Telegram's 400 to ``setWebhook`` ("Bad Request: bad webhook: ...", "secret token
    contains unallowed characters") as the configuration error it is, naming the variable."""
    reason = exc.message.rstrip(".")
    variable = SECRET_VARIABLE if "secret" in reason.lower() else URL_VARIABLE
    return ConfigError(f"Telegram refused the webhook ({reason}); check {variable}")
