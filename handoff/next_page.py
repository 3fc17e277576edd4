"""Where login returns to: the console page that was asked for, never anywhere else.

``?next=`` is attacker-controlled (a link in a phishing message can carry it), so only a
relative path under ``/console/`` on this site passes: no scheme, no host, no ``//`` or
backslash (browsers read ``/\\evil.example`` as another host), no control characters, no
``..`` climbing out of ``/console/`` even percent-encoded, and not the login pages themselves.
Anything else is dropped and the person lands on their role's home page (the queue).
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote, unquote, urlsplit

from aiohttp import web

MAX_NEXT = 512
PREFIX = "/console/"
LOOPS = ("/console/login", "/console/logout")


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a same-origin console path to return to, else None."""
    if not value or len(value) > MAX_NEXT or not value.startswith(PREFIX):
        return None
    if "\\" in value or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    path = unquote(parts.path)
    if "\\" in path or "//" in path or any(ord(ch) < 0x20 for ch in path):
        return None
    if posixpath.normpath(path) + ("/" if path.endswith("/") else "") != path:
        return None  # "." or ".." segments, plain or percent-encoded
    if not path.startswith(PREFIX) or path.startswith(LOOPS):
        return None
    return value


def asked_for(request: web.Request) -> str | None:
    """The page an anonymous GET asked for, to come back to after login."""
    return safe_next(request.path_qs) if request.method == "GET" else None


def login_url(request: web.Request, *, expired: bool = False) -> str:
    """The login page, saying why (expired) and where to return to."""
    query = ["notice=expired"] if expired else []
    target = asked_for(request)
    if target:
        query.append("next=" + quote(target, safe=""))
    return "/console/login" + ("?" + "&".join(query) if query else "")


def with_next(path: str, target: str | None) -> str:
    """``path`` carrying a checked ``next`` on to the following step (the second factor)."""
    return f"{path}?next={quote(target, safe='')}" if target else path
