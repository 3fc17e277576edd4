"""The one clock every layer reads (aware UTC), so that nothing below needs the store's."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
