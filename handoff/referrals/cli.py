"""``sanad partner ...``: partner organisations' accounts, tokens and webhooks.

An organisation exists as data (``content/partners.yml``); these commands give it access after
an agreement: tie a ``partner`` console account (``sanad caseworker add NAME --role partner``)
to it, issue a scoped token for its own system, register its webhook. Tokens and webhook
secrets are printed once; only digests (tokens) or sealed values (secrets) are stored.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from bot.config import Settings
from bot.content import ContentLibrary
from bot.store.crypto import FieldCipher
from bot.store.db import transaction
from handoff import audit
from handoff.referrals import partners, webhooks
from handoff.referrals.directory import PartnerDirectory


def _directory(settings: Settings) -> PartnerDirectory:
    return PartnerDirectory.load(ContentLibrary.load(show_drafts=settings.show_drafts))


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = [{"id": p.id, "name": p.name["en"], "child_protection": p.child_protection,
             "services": list(p.services), "governorates": list(p.governorates),
             "contact_verified": p.contact_verified}
            for p in _directory(settings).partners]
    print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    return 0


async def cmd_member(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with transaction(settings.database_url) as db:
            await partners.add_member(db, _directory(settings), name=args.name,
                                      partner_id=args.partner)
            audit.record(db, "cli", "partner.member", detail=args.partner[:64])
    except partners.PartnerAccountError as exc:
        print(f"sanad partner member: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name} now acts for {args.partner}")
    return 0


async def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with transaction(settings.database_url) as db:
            token = await partners.issue_token(db, _directory(settings), args.partner,
                                               tuple(args.scope or partners.SCOPES))
            audit.record(db, "cli", "partner.token", detail=args.partner[:64])
    except partners.PartnerAccountError as exc:
        print(f"sanad partner token: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


async def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async with transaction(settings.database_url) as db:
        count = await partners.revoke_tokens(db, args.partner)
        audit.record(db, "cli", "partner.revoke", detail=args.partner[:64])
    print(f"revoked {count} token(s) of {args.partner}")
    return 0


async def cmd_webhook(args: argparse.Namespace, settings: Settings) -> int:
    if _directory(settings).get(args.partner) is None:
        print(f"sanad partner webhook: unknown partner {args.partner!r}", file=sys.stderr)
        return 1
    cipher = FieldCipher(settings.secret_key, settings.old_secret_keys)
    try:
        async with transaction(settings.database_url) as db:
            secret = await webhooks.set_webhook(db, cipher, args.partner, args.url)
            audit.record(db, "cli", "partner.webhook", detail=args.partner[:64])
    except webhooks.WebhookError as exc:
        print(f"sanad partner webhook: {exc}", file=sys.stderr)
        return 1
    print(secret)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``sanad partner list|member|token|revoke-tokens|webhook``."""
    partner = commands.add_parser("partner", help="partner organisations: access for referrals")
    sub = partner.add_subparsers(dest="partner_command", required=True)
    sub.add_parser("list", help="organisations in content/partners.yml (JSON)").set_defaults(
        handler=cmd_list)
    member = sub.add_parser("member", help="tie a 'partner' console account to an organisation")
    member.add_argument("name", help="an existing account with the role 'partner'")
    member.add_argument("--partner", required=True, help="organisation id (partners.yml)")
    member.set_defaults(handler=cmd_member)
    token = sub.add_parser("token", help="print a new scoped token for an organisation's system")
    token.add_argument("partner", help="organisation id (partners.yml)")
    token.add_argument("--scope", action="append", choices=partners.SCOPES,
                       help="repeat for several (default: both)")
    token.set_defaults(handler=cmd_token)
    revoke = sub.add_parser("revoke-tokens", help="revoke every token of an organisation")
    revoke.add_argument("partner", help="organisation id (partners.yml)")
    revoke.set_defaults(handler=cmd_revoke)
    hook = sub.add_parser("webhook", help="set an organisation's https webhook; prints the "
                                          "signing secret once")
    hook.add_argument("partner", help="organisation id (partners.yml)")
    hook.add_argument("url", help="https:// address of the organisation's receiver")
    hook.set_defaults(handler=cmd_webhook)
