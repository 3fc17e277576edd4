"""Cloud API webhook notifications → what the channel acts on (pure translation, no I/O).

One POST can carry several entries, each with several changes, each with several messages and
statuses. Every field is checked before use: a junk message is counted and skipped, never
allowed to cost the others in the same payload (Meta would re-send all of them).

Messages become :class:`IncomingMessage` (text, a tapped reply button or list row, a template's
quick-reply, or media of some kind; an *edited* message is its new content); statuses become
:class:`StatusUpdate`. Reactions, deleted messages (``revoke``), group messages and other phone
numbers' traffic are acknowledged and ignored: a deletion must put nothing new on the screen of
someone who may be hiding what they wrote.

Who wrote: a phone number (``from``, ``contacts[].wa_id``) and, since April 2026, a
business-scoped user id, "BSUID" (``from_user_id``, ``contacts[].user_id``; e.g.
``US.13491208655302741918``, a parent BSUID ``US.ENT.11815799212886844830``). A user who turned
on a WhatsApp username may arrive with the BSUID only (Meta: "Business-scoped user IDs",
developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/,
sections "Business-scoped user ID" and "Messages webhooks"). System messages report a changed
phone number (``user_changed_number``) or BSUID (``user_changed_user_id``) and become
:class:`IdentityChange` (developers.facebook.com/documentation/business-messaging/whatsapp/
webhooks/reference/messages/system/). The ``user_preferences`` field (a user stops or resumes
marketing messages) becomes :class:`MarketingPreference`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.messages import MediaKind

OBJECT = "whatsapp_business_account"
STATUSES = frozenset({"sent", "delivered", "read", "failed"})
BSUID = re.compile(r"[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}")
"""Two-letter country code, a period, up to 128 alphanumerics; ``ENT`` marks a parent BSUID."""
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
_IGNORED = frozenset({"reaction", "ephemeral"})
_REPLIES = ("button_reply", "list_reply")
_QUIET_UNSUPPORTED = frozenset({"edit", "revoke", "pin", "keep_in_chat", "poll_update",
                                "reaction"})
"""``unsupported`` messages about an earlier message (Meta could not show the change): a
"cannot read this" answer would only be noise, and after a deletion a harm."""
_IDENTITY_CHANGES = frozenset({"user_changed_number", "user_changed_user_id"})
_CHANGED_FROM = re.compile(r"changed from (\S+) to (\S+)")
_PREFERENCES = frozenset({"stop", "resume"})
_MAX_ID = 256


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One user message, in payload order."""

    wa_id: str | None
    """The sender's phone number (``from``); ``None`` for a BSUID-only user."""
    wamid: str
    text: str = ""
    button_id: str | None = None
    media: MediaKind | None = None
    received_at: datetime | None = None
    bsuid: str | None = None
    """The sender's business-scoped user id, when Meta gave one."""
    edited: bool = False

    @property
    def address(self) -> str:
        """Where the answer goes: the phone number if known (Meta's advice), else the BSUID."""
        return self.wa_id or self.bsuid or ""


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """What happened to a message we sent."""

    wamid: str
    status: str  # sent | delivered | read | failed
    recipient: str | None = None
    error_code: int | None = None
    recipient_bsuid: str | None = None


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """A user's phone number or BSUID changed: both the old and the new ids, as Meta told us."""

    kind: str  # user_changed_number | user_changed_user_id
    old_phone: str | None
    old_bsuid: str | None
    new_phone: str | None
    new_bsuid: str | None


@dataclass(frozen=True, slots=True)
class MarketingPreference:
    """A user stopped or resumed marketing messages from this business in WhatsApp."""

    phone: str | None
    bsuid: str | None
    value: str  # stop | resume


@dataclass
class Notifications:
    messages: list[IncomingMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    changes: list[IdentityChange] = field(default_factory=list)
    preferences: list[MarketingPreference] = field(default_factory=list)
    error_codes: list[int] = field(default_factory=list)
    """Codes from ``value.errors`` (problems Meta reports outside any message)."""
    ignored: int = 0
    revoked: int = 0
    malformed: int = 0


def read_notifications(data: dict[str, Any], phone_number_id: str) -> Notifications:
    """Everything for our phone number in one webhook body (already a JSON object)."""
    found = Notifications()
    if data.get("object") != OBJECT:
        found.ignored += 1
        return found
    for kind, value in _values(data, found):
        metadata = _dict(value.get("metadata"))
        if str(metadata.get("phone_number_id", "")) != phone_number_id:
            found.ignored += 1  # another number of the same business account
            continue
        contacts = _contacts(value.get("contacts"))
        if kind == "user_preferences":
            for raw in _list(value.get("user_preferences")):
                _read_preference(raw, contacts, found)
            continue
        for raw in _list(value.get("messages")):
            _read_message(raw, contacts, found)
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


def is_bsuid(value: Any) -> bool:
    return isinstance(value, str) and BSUID.fullmatch(value) is not None


def _values(data: dict[str, Any], found: Notifications) -> Iterator[tuple[str, dict[str, Any]]]:
    for entry in _list(data.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            kind, value = change.get("field"), change.get("value")
            if kind in ("messages", "user_preferences") and isinstance(value, dict):
                yield kind, value
            else:
                found.ignored += 1  # account, template or quality updates: not ours to act on


@dataclass(frozen=True, slots=True)
class _Contacts:
    """``value.contacts``: the BSUID of each phone number, and the one sender if only one."""

    bsuid_of: dict[str, str]
    only: tuple[str | None, str | None] | None


def _contacts(raw: Any) -> _Contacts:
    pairs = []
    for contact in _list(raw):
        contact = _dict(contact)
        phone, bsuid = _phone(contact.get("wa_id")), _bsuid(contact.get("user_id"))
        if phone or bsuid:
            pairs.append((phone, bsuid))
    return _Contacts({p: b for p, b in pairs if p and b},
                     pairs[0] if len(pairs) == 1 else None)


def _sender(raw: dict[str, Any], contacts: _Contacts, phone_key: str, bsuid_key: str, *,
            only_contact: bool = False) -> tuple[str | None, str | None]:
    """The ids the object names; the BSUID of its phone number from ``contacts`` if it names
    none itself; the payload's one contact only where Meta documents no sender field."""
    phone, bsuid = _phone(raw.get(phone_key)), _bsuid(raw.get(bsuid_key))
    if phone is None and bsuid is None and only_contact and contacts.only is not None:
        return contacts.only
    if bsuid is None and phone is not None:
        bsuid = contacts.bsuid_of.get(phone)
    return phone, bsuid


def _read_message(raw: Any, contacts: _Contacts, found: Notifications) -> None:
    raw = _dict(raw)
    kind = raw.get("type") if isinstance(raw.get("type"), str) else None
    if kind in _IGNORED or raw.get("group_id"):
        found.ignored += 1
        return
    if kind == "revoke" or (kind == "unsupported" and _word(
            _dict(raw.get("unsupported")).get("type")) in _QUIET_UNSUPPORTED):
        found.revoked += 1  # nothing new on the screen of someone who may be hiding a message
        return
    if kind == "system":
        _read_system(raw, contacts, found)
        return
    edited = kind == "edit"
    if edited:  # the new content, under the edit's own id (a new turn, de-duplicated as one)
        inner = _dict(_dict(raw.get("edit")).get("message"))
        inner_kind = inner.get("type")
        raw = {**inner, **{k: raw.get(k) for k in ("from", "from_user_id", "id", "timestamp")}}
        kind = inner_kind if isinstance(inner_kind, str) and inner_kind != "edit" else None
    message = _message(raw, kind, contacts)
    if edited and message is not None:
        if not message.text.strip():
            found.ignored += 1  # an edit with no words we can read: nothing new to answer
            return
        message = IncomingMessage(message.wa_id, message.wamid, text=message.text,
                                  received_at=message.received_at, bsuid=message.bsuid,
                                  edited=True)
    if message is None:
        found.malformed += 1
    else:
        found.messages.append(message)


def _read_system(raw: dict[str, Any], contacts: _Contacts, found: Notifications) -> None:
    system = _dict(raw.get("system"))
    kind = _word(system.get("type"))
    if kind not in _IDENTITY_CHANGES:
        found.ignored += 1  # e.g. customer_identity_changed (a new security code)
        return
    old_phone, old_bsuid = _sender(raw, contacts, "from", "from_user_id")
    body = system.get("body")
    moved = _CHANGED_FROM.search(body) if isinstance(body, str) else None
    if old_bsuid is None and moved is not None and is_bsuid(moved.group(1)):
        old_bsuid = moved.group(1)  # "User A changed from <old BSUID> to <new BSUID>"
    new_phone, new_bsuid = _phone(system.get("wa_id")), _bsuid(system.get("user_id"))
    if not (old_phone or old_bsuid) or not (new_phone or new_bsuid):
        found.ignored += 1  # nothing to carry over, or nowhere to carry it
        return
    found.changes.append(IdentityChange(kind, old_phone, old_bsuid, new_phone, new_bsuid))


def _read_preference(raw: Any, contacts: _Contacts, found: Notifications) -> None:
    """``{"wa_id", "user_id", "category": "marketing_messages", "value": "stop" | "resume"}``."""
    raw = _dict(raw)
    value = _word(raw.get("value"))
    if raw.get("category") != "marketing_messages" or value not in _PREFERENCES:
        found.ignored += 1  # e.g. "signup" (a signup link): opt-in happens only in the chat
        return
    phone, bsuid = _sender(raw, contacts, "wa_id", "user_id", only_contact=True)
    if phone is None and bsuid is None:
        found.malformed += 1
        return
    found.preferences.append(MarketingPreference(phone, bsuid, value))


def _message(raw: dict[str, Any], kind: str | None, contacts: _Contacts
             ) -> IncomingMessage | None:
    wa_id, bsuid = _sender(raw, contacts, "from", "from_user_id")
    wamid = raw.get("id")
    if not ((wa_id or bsuid) and isinstance(wamid, str) and wamid):
        return None
    common: dict[str, Any] = {"wa_id": wa_id, "wamid": wamid, "bsuid": bsuid,
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
    codes = [c for c in map(_code, _list(raw.get("errors"))) if c is not None]
    return StatusUpdate(wamid=wamid, status=status, recipient=_phone(raw.get("recipient_id")),
                        error_code=codes[0] if codes else None,
                        recipient_bsuid=_bsuid(raw.get("recipient_user_id")))


def _phone(value: Any) -> str | None:
    """A phone-number id as Meta sends it (``from``, ``wa_id``): any short non-blank string."""
    if isinstance(value, str) and value.strip() and len(value) <= _MAX_ID:
        return value.strip()
    return None


def _bsuid(value: Any) -> str | None:
    return value if is_bsuid(value) else None


def _timestamp(raw: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _code(raw: Any) -> int | None:
    code = _dict(raw).get("code")
    return code if type(code) is int else None


def _word(value: Any) -> str:
    """A string field, or "" (a set lookup of a list or an object would raise)."""
    return value if isinstance(value, str) else ""


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
