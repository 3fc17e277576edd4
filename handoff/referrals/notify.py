"""What the person is told in their chat about a referral: the consent question and neutral
updates. Queued in the outbox (kind ``caseworker``) in the caller's transaction, so contact
being paused (quick exit, erasure) holds them like any caseworker message."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.content import ContentLibrary
from bot.i18n import UiCatalog
from bot.messages import Button, Outbound
from bot.outbox import enqueue
from bot.store.crypto import FieldCipher
from handoff.referrals.directory import Partner
from handoff.referrals.models import Referral

KIND = "caseworker"
"""Delivered by the generic outbox sender; held while contact is paused."""


def consent_question(ui: UiCatalog, content: ContentLibrary, lang: str, referral: Referral,
                     partner: Partner, token: str) -> Outbound:
    """The question that lists exactly the fields to be shared, with yes / no / later."""
    service = content.service(referral.service_id)
    service_name = service.name.get(lang, service.name["en"]) if service else referral.service_id
    fields = "\n".join("• " + ui.text(lang, f"referral.field_{name}") for name in referral.fields)
    text = ui.text(lang, "referral.ask", organisation=partner.name_in(lang),
                   service=service_name, fields=fields)
    if referral.minor:
        text += "\n\n" + ui.text(lang, "referral.ask_minor")
    prefix = f"rc:{{}}:{referral.id}:{token}"
    return Outbound(text=text, buttons=(
        Button(prefix.format("yes"), ui.text(lang, "referral.yes_button")),
        Button(prefix.format("no"), ui.text(lang, "referral.no_button")),
        Button(prefix.format("later"), ui.text(lang, "referral.later_button")),
    ))


def update_message(ui: UiCatalog, lang: str, referral: Referral, key: str,
                   token: str | None) -> Outbound:
    """A neutral update (no organisation, no topic named); while the referral is open it
    carries the "stop sharing" button, which ends consent."""
    buttons: tuple[Button, ...] = ()
    if token is not None:
        buttons = (Button(f"rc:stop:{referral.id}:{token}",
                          ui.text(lang, "referral.stop_button")),)
    return Outbound(text=ui.text(lang, f"referral.{key}"), buttons=buttons)


async def send(db: AsyncSession, cipher: FieldCipher, *, user_id: int, channel: str,
               referral: Referral, what: str, message: Outbound) -> None:
    """Queue ``message``; the key makes a repeat of the same step a no-op."""
    await enqueue(db, cipher, user_id=user_id, channel=channel, kind=KIND, messages=[message],
                  idempotency_key=f"referral:{referral.id}:{what}:{referral.version}")
