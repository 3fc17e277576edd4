"""Campaign attribution: which link or partner brought a new user (``User.joined_via``).

Two ways in, one rule:

* Telegram deep link ``https://t.me/<bot>?start=<code>`` → the first message is
  ``/start <code>`` (``Inbound.start_payload``).
* WhatsApp click-to-chat ``https://wa.me/<number>?text=<words>%20%23<code>`` → the prefilled first
  message ends with the tag ``#<code>``, e.g. ``مرحبا سند #caritas-alex``. The code must contain a
  letter there, so a user typing ``#2`` is never mistaken for a campaign.

A code is a slug (``[A-Za-z0-9_-]{1,64}``); anything else is ignored silently. Only a new user
is attributed, once; the code is never echoed back to the user (someone may be reading along).
"""

from __future__ import annotations

import re

CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TAG_RE = re.compile(r"(?:^|\s)#([A-Za-z0-9_-]*[A-Za-z][A-Za-z0-9_-]*)\s*$")


def valid_code(code: str | None) -> str | None:
    """``code`` when it is a usable slug, else None."""
    if code is None:
        return None
    code = code.strip()
    return code if CODE_RE.match(code) else None


def split_tag(text: str) -> tuple[str, str | None]:
    """``("words", "code")`` for a message ending with a click-to-chat tag ``#code``."""
    match = _TAG_RE.search(text or "")
    if match is None or valid_code(match.group(1)) is None:
        return text, None
    return text[: match.start()].rstrip(), match.group(1)


def campaign_code(text: str, start_payload: str | None = None) -> str | None:
    """The attribution code carried by a first message, if any (deep link or tag)."""
    if start_payload is not None:
        return valid_code(start_payload)
    head, _, rest = (text or "").strip().partition(" ")
    if head.split("@", 1)[0].lower() == "/start":
        return valid_code(rest) if rest.strip() else None
    return split_tag(text)[1]
