"""The web app's shared slots, in a leaf module: channels read them without importing the app
(which imports the channels it wires)."""

from __future__ import annotations

from aiohttp import web

from bot.metrics import Metrics

METRICS = web.AppKey("metrics", Metrics)
BODY_LIMITS = web.AppKey("body_limits", dict[str, int])
"""Routes whose bodies may exceed the app's ``client_max_size`` (path → bytes): a channel
registers its own (WhatsApp batches up to 3 MiB)."""
