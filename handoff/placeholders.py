"""Service details in canned replies: ``{service:ID.FIELD}`` is replaced by that detail of a
*verified* service of ``content/services.yml`` in the reply's language, so a supervisor writes
a number once and it follows the directory.

A placeholder that cannot be filled (unknown field, unknown or unverified service, a detail the
service does not have) is an error: a supervisor cannot save it, a caseworker is never offered
it, and a reply is never sent with it raw. The directory has no street addresses, so there is
no ``address`` field: nothing is invented.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from bot.content.loader import ContentLibrary
from bot.content.models import Service

MARK = "{service:"
PLACEHOLDER_RE = re.compile(r"\{service:([^{}\s]{0,80})\}")
TARGET_RE = re.compile(r"^([a-z0-9_]{1,64})\.([a-z_]{1,20})$")


Detail = Mapping[str, str] | str | None
FIELDS: dict[str, Callable[[Service], Detail]] = {
    "name": lambda s: s.name,
    "provider": lambda s: s.provider,
    "phone": lambda s: s.phone,
    "url": lambda s: s.url,
    "hours": lambda s: s.hours,
}


def _in(detail: Detail, language: str) -> str | None:
    """A detail in the reply's language (numbers and links have one form)."""
    if isinstance(detail, str) or detail is None:
        return detail or None
    return detail.get(language) or None


class PlaceholderError(ValueError):
    """A placeholder that cannot be filled; ``reason`` is a key of ``canned.placeholder``
    in the console text (syntax, field, service, missing)."""

    def __init__(self, placeholder: str, reason: str) -> None:
        super().__init__(f"{placeholder}: {reason}")
        self.placeholder, self.reason = placeholder, reason


def _one(content: ContentLibrary, language: str, match: re.Match[str]) -> str:
    target = TARGET_RE.match(match.group(1))
    if target is None:
        raise PlaceholderError(match.group(0), "syntax")
    service_id, field = target.groups()
    if field not in FIELDS:
        raise PlaceholderError(match.group(0), "field")
    service = content.service(service_id)  # verified services only
    if service is None:
        raise PlaceholderError(match.group(0), "service")
    value = _in(FIELDS[field](service), language)
    if not value:
        raise PlaceholderError(match.group(0), "missing")
    return value


def fill(content: ContentLibrary, text: str, language: str) -> str:
    """``text`` with every placeholder replaced, or :class:`PlaceholderError` for the first
    one that cannot be (a stray ``{service:`` left over is one too)."""
    filled = PLACEHOLDER_RE.sub(lambda m: _one(content, language, m), text)
    if MARK in filled:
        start = filled.index(MARK)
        raise PlaceholderError(filled[start:start + 40], "syntax")
    return filled


def usable(content: ContentLibrary) -> list[tuple[str, str]]:
    """(id, English name) of the services a placeholder may name, for the supervisors' hint."""
    return [(s.id, s.name.get("en") or s.id) for s in content.services()]
