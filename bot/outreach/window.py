"""Quiet hours: scheduled campaign sends happen only inside a daily local-time window.

Recipients are in Egypt, so the window is read in ``Africa/Cairo`` unless the campaign says
otherwise (we do not store a time zone per user). A window may wrap midnight (``22:00-06:00``),
though awareness messages should not arrive at night; the default is ``09:00-21:00``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_WINDOW = "09:00-21:00"
DEFAULT_TIMEZONE = "Africa/Cairo"
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class WindowError(ValueError):
    """Not a window like ``09:00-21:00``, or an unknown time zone."""


@dataclass(frozen=True, slots=True)
class Window:
    start: int
    """Minutes after midnight, 0-1439."""
    end: int
    """Minutes after midnight, 1-1440 (``24:00`` is the end of the day)."""

    def contains(self, moment: time) -> bool:
        minute = moment.hour * 60 + moment.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # wraps midnight


def parse_window(text: str) -> Window:
    match = _WINDOW.match(text)
    if match is None:
        raise WindowError(f"expected HH:MM-HH:MM, got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise WindowError(f"not a time of day in {text!r}")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise WindowError(f"empty window {text!r} (00:00-24:00 is the whole day)")
    return Window(start, end)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"unknown time zone {name!r}") from None


def is_open(window: str | None, timezone: str, at: datetime) -> bool:
    """Is ``at`` (aware) inside the window, in the campaign's time zone? No window: always."""
    if not window:
        return True
    local = at.astimezone(zone(timezone)).time()
    return parse_window(window).contains(local)
