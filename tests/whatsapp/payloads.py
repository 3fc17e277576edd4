"""Webhook notifications shaped like Meta's (Cloud API ``messages`` field), and their signature.

Shapes follow Meta's webhook reference: ``object: whatsapp_business_account``, ``entry[].changes[]
.value`` with ``metadata.phone_number_id``, ``contacts[]`` (profile name, ``wa_id``), ``messages[]``
(``from``, ``id``, ``timestamp`` as a string, ``type`` and a field named after the type) and
``statuses[]`` (``id``, ``status``, ``recipient_id``, ``errors[]`` on failure).

Business-scoped user ids (BSUIDs, "Business-scoped user IDs", developers.facebook.com/
documentation/business-messaging/whatsapp/business-scoped-user-ids/): ``contacts[].user_id`` and
``messages[].from_user_id`` beside the phone number, or alone for a user with a username
(``bsuid_only``); ``recipient_user_id`` on statuses. System messages for a changed number or
BSUID (webhooks/reference/messages/system/), ``revoke`` and ``edit`` (.../messages/revoke,
.../messages/edit) and the ``user_preferences`` field (a user stops or resumes marketing
messages) have builders too.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from tests.whatsapp.fake_graph_api import (
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    fake_wamid,
    notification,
    status_report,
)

WA_ID = "201001234567"
"""An Egyptian mobile number in WhatsApp's format (country code, no +)."""
BSUID = "EG.13491208655302741918"
"""A business-scoped user id: country code, a period, digits (Meta's example is ``US.``)."""

Message = dict[str, Any]


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Meta:
    """Builds notifications for one business number; every message gets a fresh ``wamid``."""

    wa_id: str = WA_ID
    phone_number_id: str = PHONE_NUMBER_ID
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(500))

    # --- envelopes -------------------------------------------------------------------------
    def notification(self, *values: dict[str, Any], field: str = "messages") -> dict[str, Any]:
        """One entry with one change per value."""
        return notification(*values, field=field)

    def metadata(self, phone_number_id: str | None = None) -> dict[str, str]:
        return {"display_phone_number": DISPLAY_NUMBER,
                "phone_number_id": phone_number_id or self.phone_number_id}

    def value(self, *messages: Message, wa_id: str | None = None,
              phone_number_id: str | None = None) -> dict[str, Any]:
        first = messages[0] if messages else {}
        sender = wa_id or first.get("from") or (None if first else self.wa_id)
        contact: dict[str, Any] = {"profile": {"name": "Test User"}}
        if sender:
            contact["wa_id"] = sender
        if first.get("from_user_id"):
            contact["user_id"] = first["from_user_id"]
            contact["profile"]["username"] = "@someone"
        return {"messaging_product": "whatsapp", "metadata": self.metadata(phone_number_id),
                "contacts": [contact], "messages": list(messages)}

    def messages(self, *messages: Message) -> dict[str, Any]:
        """A notification carrying these messages (grouped per sender, as Meta does)."""
        senders: dict[str, list[Message]] = {}
        for message in messages:
            senders.setdefault(message.get("from") or message["from_user_id"], []).append(message)
        return self.notification(*(self.value(*group) for group in senders.values()))

    def statuses(self, *statuses: dict[str, Any]) -> dict[str, Any]:
        return self.notification({"messaging_product": "whatsapp", "metadata": self.metadata(),
                                  "statuses": list(statuses)})

    def preference(self, value: str, *, wa_id: str | None = None, bsuid: str | None = None
                   ) -> dict[str, Any]:
        """The ``user_preferences`` field: a user stops or resumes marketing messages."""
        entry: dict[str, Any] = {"detail": f"User requested to {value} marketing messages",
                                 "category": "marketing_messages", "value": value,
                                 "timestamp": int(time.time())}
        contact: dict[str, Any] = {"profile": {"name": "Test User"}}
        if wa_id or not bsuid:
            entry["wa_id"] = contact["wa_id"] = wa_id or self.wa_id
        if bsuid:
            entry["user_id"] = contact["user_id"] = bsuid
        return self.notification({"messaging_product": "whatsapp", "metadata": self.metadata(),
                                  "contacts": [contact], "user_preferences": [entry]},
                                 field="user_preferences")

    # --- messages --------------------------------------------------------------------------
    def base(self, kind: str, wa_id: str | None = None, *, bsuid: str | None = None,
             bsuid_only: bool = False, **content: Any) -> Message:
        """A message of ``kind``; ``bsuid`` adds ``from_user_id``, ``bsuid_only`` drops
        ``from`` (a user with a username whose number Meta does not share)."""
        sender = wa_id or self.wa_id
        message: dict[str, Any] = {} if bsuid_only else {"from": sender}
        if bsuid or bsuid_only:
            message["from_user_id"] = bsuid or BSUID
        return {**message, "id": fake_wamid(sender, next(self._serial)),
                "timestamp": str(int(time.time())), "type": kind, **content}

    def text(self, body: str, wa_id: str | None = None, **sender: Any) -> Message:
        return self.base("text", wa_id, text={"body": body}, **sender)

    def revoke(self, original: str, wa_id: str | None = None, **sender: Any) -> Message:
        """The user deleted ``original`` (a wamid)."""
        return self.base("revoke", wa_id, revoke={"original_message_id": original}, **sender)

    def edit(self, original: str, body: str, wa_id: str | None = None, **sender: Any
             ) -> Message:
        """The user edited ``original``: the new content, as a message inside ``edit``."""
        return self.base("edit", wa_id, edit={
            "original_message_id": original,
            "message": {"type": "text", "text": {"body": body}}}, **sender)

    def changed_number(self, new_wa_id: str, *, wa_id: str | None = None,
                       bsuid: str | None = None, new_bsuid: str | None = None) -> Message:
        """``system``/``user_changed_number``: old number in ``from``, new one in ``wa_id``
        (and the new BSUID Meta generates for the new number, if given)."""
        old = wa_id or self.wa_id
        system: dict[str, Any] = {"body": f"User Test changed from {old} to {new_wa_id}",
                                  "wa_id": new_wa_id, "type": "user_changed_number"}
        if new_bsuid:
            system["user_id"] = new_bsuid
        return self.base("system", old, bsuid=bsuid, system=system)

    def changed_user_id(self, old_bsuid: str, new_bsuid: str, *, wa_id: str | None = None
                        ) -> Message:
        """``system``/``user_changed_user_id``: only the BSUID changed (no number shared)."""
        message = self.base("system", wa_id, bsuid=old_bsuid, bsuid_only=wa_id is None, system={
            "body": f"User Test changed from {old_bsuid} to {new_bsuid}",
            "user_id": new_bsuid, "type": "user_changed_user_id"})
        return message

    def button_reply(self, button_id: str, title: str = "…", wa_id: str | None = None,
                     **sender: Any) -> Message:
        return self.base("interactive", wa_id, context=self._context(), interactive={
            "type": "button_reply", "button_reply": {"id": button_id, "title": title}},
            **sender)

    def list_reply(self, row_id: str, title: str = "…", wa_id: str | None = None,
                   **sender: Any) -> Message:
        return self.base("interactive", wa_id, context=self._context(), interactive={
            "type": "list_reply",
            "list_reply": {"id": row_id, "title": title, "description": ""}}, **sender)

    def template_button(self, payload: str | None, text: str = "Read",
                        wa_id: str | None = None) -> Message:
        button: dict[str, Any] = {"text": text}
        if payload is not None:
            button["payload"] = payload
        return self.base("button", wa_id, context=self._context(), button=button)

    def media(self, kind: str, wa_id: str | None = None, **extra: Any) -> Message:
        """image, audio (``voice=True`` for a voice note), video, document, sticker."""
        content: Any = {"mime_type": _MIME.get(kind, "application/octet-stream"),
                        "sha256": "c2hhMjU2", "id": "1234567890", **extra}
        return self.base(kind, wa_id, **{kind: content})

    def location(self, wa_id: str | None = None) -> Message:
        return self.base("location", wa_id, location={
            "latitude": 30.0444, "longitude": 31.2357, "name": "Cairo", "address": "Tahrir"})

    def contacts(self, wa_id: str | None = None) -> Message:
        return self.base("contacts", wa_id, contacts=[{
            "name": {"formatted_name": "Someone", "first_name": "Someone"},
            "phones": [{"phone": "+20 100 000 0000", "wa_id": "201000000000", "type": "MOBILE"}],
        }])

    def reaction(self, wamid: str, emoji: str = "👍", wa_id: str | None = None) -> Message:
        return self.base("reaction", wa_id, reaction={"message_id": wamid, "emoji": emoji})

    def unsupported(self, wa_id: str | None = None) -> Message:
        return self.base("unsupported", wa_id, errors=[{
            "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."}}])

    # --- statuses --------------------------------------------------------------------------
    def status(self, wamid: str, status: str, *, recipient: str | None = None,
               error_code: int | None = None, bsuid: str | None = None) -> dict[str, Any]:
        return status_report(wamid, status, recipient=None if bsuid and not recipient
                             else recipient or self.wa_id, recipient_bsuid=bsuid,
                             error_code=error_code)

    def _context(self) -> dict[str, str]:
        return {"from": DISPLAY_NUMBER, "id": fake_wamid(DISPLAY_NUMBER, next(self._serial))}


_MIME = {"image": "image/jpeg", "audio": "audio/ogg; codecs=opus", "video": "video/mp4",
         "document": "application/pdf", "sticker": "image/webp"}
