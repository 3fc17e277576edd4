"""Messages, window notices and read receipts to one WhatsApp number, in the Cloud API's shapes.

If Meta refuses an interactive message for a reason the render did not foresee, the same words
go out again as text with numbered choices: the user gets an answer either way, and the engine
understands a typed number as the button.

An address is a phone number (sent as ``to``) or a business-scoped user id (sent as
``recipient``, for users whose number Meta does not share: "Business-scoped user IDs",
developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/,
section "Messages"; when both are given Meta uses ``to``, so only one is ever sent).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.channels.whatsapp_api import GraphClient, GraphError, message_id
from bot.channels.whatsapp_errors import Disposition
from bot.channels.whatsapp_payload import is_bsuid
from bot.channels.whatsapp_render import Body, as_text, render
from bot.channels.whatsapp_templates import Template, WhatsAppTexts
from bot.messages import Outbound

log = logging.getLogger(__name__)

READ_RECEIPT_ATTEMPTS = 1
"""A read receipt is a courtesy: never worth a retry that delays the answer."""


class Messenger:
    def __init__(self, client: GraphClient, texts: WhatsAppTexts) -> None:
        self.client = client
        self.texts = texts

    async def send(self, to: str, outbound: Outbound, lang: str | None, *,
                   attempts: int | None = None) -> list[str]:
        """Send one ``Outbound`` (one or more messages); their ``wamid``s, in order."""
        labels = self.texts.label(lang)
        sent: list[str] = []
        for body in render(outbound, labels):
            try:
                sent.append(await self._post(to, body, attempts))
            except GraphError as exc:
                if exc.disposition is not Disposition.REJECTED or body["type"] != "interactive":
                    raise
                log.warning("whatsapp: interactive message refused (Graph error %s); sent as "
                            "numbered text", exc.code)
                text = body["interactive"]["body"]["text"]
                for plain in as_text(Outbound(text, outbound.buttons), labels):
                    sent.append(await self._post(to, plain, attempts))
        return sent

    async def send_notice(self, to: str, lang: str | None, *, template: Template | None = None,
                          attempts: int | None = None) -> str:
        """The approved new-message template (allowed outside the 24-hour window), or the
        given one (a campaign's)."""
        template = template or self.texts.notice(lang)
        return await self._post(to, {"type": "template", "template": template.payload()},
                                attempts)

    async def mark_read(self, wamid: str) -> bool:
        """Blue ticks on the user's message; a failure is logged (by code) and forgotten."""
        try:
            await self.client.post({"messaging_product": "whatsapp", "status": "read",
                                    "message_id": wamid}, attempts=READ_RECEIPT_ATTEMPTS)
        except GraphError as exc:
            log.info("whatsapp: read receipt not sent (Graph error %s)", exc.code)
            return False
        return True

    async def _post(self, to: str, body: Body, attempts: int | None = None) -> str:
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                   ("recipient" if is_bsuid(to) else "to"): to, **body}
        return message_id(await self.client.post(payload, attempts=attempts)) or ""
