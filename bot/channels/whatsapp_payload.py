"""Cloud API webhook notifications → what the channel acts on (pure translation, no I/O).

One POST can carry several entries, each with several changes, each with several messages and
statuses. Every field is checked before use: a junk message is counted and skipped, never
allowed to cost the others in the same payload (Meta would re-send all of them).

Messages become :class:`IncomingMessage` (text, a tapped reply button or list row, a template's
quick-reply, or media of some kind); statuses become :class:`StatusUpdate`. Reactions, system
notices (a changed number), group messages and other phone numbers' traffic are acknowledged and
ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.messages import MediaKind

OBJECT = "whatsapp_business_account"
STATUSES = frozenset({"sent", "delivered", "read", "failed"})
_MEDIA = {
    "image": MediaKind.PHOTO,
    "audio": MediaKind.AUDIO,
    "voice": MediaKind.VOICE,
    "video": MediaKind.VIDEO,
    "document": MediaKind.DOCUMENT,
    "sticker": MediaKind.STICKER,
    "location": MediaKind.LOCATION,
    "contacts": MediaKind.CONTACT,
}
_CAPTIONED = frozenset({"image", "video", "document"})
_IGNORED = frozenset({"reaction", "system", "ephemeral"})
_REPLIES = ("button_reply", "list_reply")


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One user message, in payload order."""

    wa_id: str
    wamid: str
    text: str = ""
    button_id: str | None = None
    media: MediaKind | None = None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """What happened to a message we sent."""

    wamid: str
    status: str  # sent | delivered | read | failed
    recipient: str | None = None
    error_code: int | None = None


@dataclass
class Notifications:
    messages: list[IncomingMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    error_codes: list[int] = field(default_factory=list)
    """Codes from ``value.errors`` (problems Meta reports outside any message)."""
    ignored: int = 0
    malformed: int = 0


def read_notifications(data: dict[str, Any], phone_number_id: str) -> Notifications:
    """Everything for our phone number in one webhook body (already a JSON object)."""
    found = Notifications()
    if data.get("object") != OBJECT:
        found.ignored += 1
        return found
    for value in _values(data, found):
        metadata = _dict(value.get("metadata"))
        if str(metadata.get("phone_number_id", "")) != phone_number_id:
            found.ignored += 1  # another number of the same business account
            continue
        for raw in _list(value.get("messages")):
            _read_message(raw, found)
        for raw in _list(value.get("statuses")):
            status = _status(raw)
            if status is None:
                found.malformed += 1
            elif status.status in STATUSES:
                found.statuses.append(status)
            else:
                found.ignored += 1
        found.error_codes.extend(c for c in map(_code, _list(value.get("errors"))) if c is not None)
    return found


def _values(data: dict[str, Any], found: Notifications) -> Iterator[dict[str, Any]]:
    for entry in _list(data.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            value = change.get("value")
            if change.get("field") == "messages" and isinstance(value, dict):
                yield value
            else:
                found.ignored += 1  # account, template or quality updates: not ours to act on


def _read_message(raw: Any, found: Notifications) -> None:
    raw = _dict(raw)
    kind = raw.get("type") if isinstance(raw.get("type"), str) else None
    if kind in _IGNORED or raw.get("group_id"):
        found.ignored += 1
        return
    message = _message(raw, kind)
    if message is None:
        found.malformed += 1
    else:
        found.messages.append(message)


def _message(raw: dict[str, Any], kind: str | None) -> IncomingMessage | None:
    wa_id, wamid = raw.get("from"), raw.get("id")
    if not (isinstance(wa_id, str) and wa_id.strip() and isinstance(wamid, str) and wamid):
        return None
    common: dict[str, Any] = {"wa_id": wa_id.strip(), "wamid": wamid,
                              "received_at": _timestamp(raw.get("timestamp"))}
    content = _dict(raw.get(kind)) if kind else {}
    if kind == "text":
        body = content.get("body")
        return IncomingMessage(**common, text=body) if isinstance(body, str) else None
    if kind == "interactive":
        reply = next((_dict(content.get(t)) for t in _REPLIES if content.get("type") == t), None)
        if reply is None:  # a Flow's answer, or something newer: we only read its kind
            return IncomingMessage(**common, media=MediaKind.OTHER)
        button_id = reply.get("id")
        return IncomingMessage(**common, button_id=button_id) if _text(button_id) else None
    if kind == "button":  # a template's quick reply: its payload, or the words on it
        payload, words = content.get("payload"), content.get("text")
        if _text(payload):
            return IncomingMessage(**common, button_id=payload)
        return IncomingMessage(**common, text=str(words)) if _text(words) else None
    if kind == "request_welcome":  # the user opened the chat for the first time
        return IncomingMessage(**common, text="/start")
    media = _MEDIA.get(kind) if kind else None
    if media is MediaKind.AUDIO and content.get("voice") is True:
        media = MediaKind.VOICE  # a voice note is an ``audio`` with ``voice: true``
    caption = content.get("caption") if kind in _CAPTIONED else None
    return IncomingMessage(**common, media=media or MediaKind.OTHER,
                           text=caption if isinstance(caption, str) else "")


def _status(raw: Any) -> StatusUpdate | None:
    raw = _dict(raw)
    wamid, status = raw.get("id"), raw.get("status")
    if not (_text(wamid) and _text(status)):
        return None
    recipient = raw.get("recipient_id")
    codes = [c for c in map(_code, _list(raw.get("errors"))) if c is not None]
    return StatusUpdate(wamid=wamid, status=status,
                        recipient=recipient if _text(recipient) else None,
                        error_code=codes[0] if codes else None)


def _timestamp(raw: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _code(raw: Any) -> int | None:
    code = _dict(raw).get("code")
    return code if type(code) is int else None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
