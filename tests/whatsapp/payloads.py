"""Webhook notifications shaped like Meta's (Cloud API ``messages`` field), and their signature.

Shapes follow Meta's webhook reference: ``object: whatsapp_business_account``, ``entry[].changes[]
.value`` with ``metadata.phone_number_id``, ``contacts[]`` (profile name, ``wa_id``), ``messages[]``
(``from``, ``id``, ``timestamp`` as a string, ``type`` and a field named after the type) and
``statuses[]`` (``id``, ``status``, ``recipient_id``, ``errors[]`` on failure).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from tests.whatsapp.fake_graph_api import PHONE_NUMBER_ID, fake_wamid

WA_ID = "201001234567"
"""An Egyptian mobile number in WhatsApp's format (country code, no +)."""
DISPLAY_NUMBER = "15550001234"
WABA_ID = "102290129340398"

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
    def notification(self, *values: dict[str, Any]) -> dict[str, Any]:
        """One entry with one change per value."""
        return {"object": "whatsapp_business_account", "entry": [{
            "id": WABA_ID,
            "changes": [{"value": v, "field": "messages"} for v in values],
        }]}

    def value(self, *messages: Message, wa_id: str | None = None,
              phone_number_id: str | None = None) -> dict[str, Any]:
        sender = wa_id or (messages[0]["from"] if messages else self.wa_id)
        return {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY_NUMBER,
                         "phone_number_id": phone_number_id or self.phone_number_id},
            "contacts": [{"profile": {"name": "Test User"}, "wa_id": sender}],
            "messages": list(messages),
        }

    def messages(self, *messages: Message) -> dict[str, Any]:
        """A notification carrying these messages (grouped per sender, as Meta does)."""
        senders: dict[str, list[Message]] = {}
        for message in messages:
            senders.setdefault(message["from"], []).append(message)
        return self.notification(*(self.value(*group) for group in senders.values()))

    def statuses(self, *statuses: dict[str, Any]) -> dict[str, Any]:
        return self.notification({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY_NUMBER,
                         "phone_number_id": self.phone_number_id},
            "statuses": list(statuses),
        })

    # --- messages --------------------------------------------------------------------------
    def base(self, kind: str, wa_id: str | None = None, **content: Any) -> Message:
        sender = wa_id or self.wa_id
        return {"from": sender, "id": fake_wamid(sender, next(self._serial)),
                "timestamp": str(int(time.time())), "type": kind, **content}

    def text(self, body: str, wa_id: str | None = None) -> Message:
        return self.base("text", wa_id, text={"body": body})

    def button_reply(self, button_id: str, title: str = "…", wa_id: str | None = None
                     ) -> Message:
        return self.base("interactive", wa_id, context=self._context(), interactive={
            "type": "button_reply", "button_reply": {"id": button_id, "title": title}})

    def list_reply(self, row_id: str, title: str = "…", wa_id: str | None = None) -> Message:
        return self.base("interactive", wa_id, context=self._context(), interactive={
            "type": "list_reply",
            "list_reply": {"id": row_id, "title": title, "description": ""}})

    def template_button(self, payload: str | None, text: str = "Read",
                        wa_id: str | None = None) -> Message:
        button: dict[str, Any] = {"text": text}
        if payload is not None:
            button["payload"] = payload
        return self.base("button", wa_id, context=self._context(), button=button)

    def media(self, kind: str, wa_id: str | None = None, **extra: Any) -> Message:
        """image, audio (``voice=True`` for a voice note), video, document, sticker."""
        content = {"mime_type": _MIME.get(kind, "application/octet-stream"),
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
               error_code: int | None = None) -> dict[str, Any]:
        report: dict[str, Any] = {
            "id": wamid, "status": status, "timestamp": str(int(time.time())),
            "recipient_id": recipient or self.wa_id,
        }
        if status in {"sent", "delivered"}:
            report["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": "service"}}
            report["pricing"] = {"billable": True, "pricing_model": "PMP",
                                 "category": "service"}
        if error_code is not None:
            report["errors"] = [{"code": error_code, "title": "Error",
                                 "message": "Error",
                                 "error_data": {"details": "details"}}]
        return report

    def _context(self) -> dict[str, str]:
        return {"from": DISPLAY_NUMBER, "id": fake_wamid(DISPLAY_NUMBER, next(self._serial))}


_MIME = {"image": "image/jpeg", "audio": "audio/ogg; codecs=opus", "video": "video/mp4",
         "document": "application/pdf", "sticker": "image/webp"}
