"""``sanad caseworker ...`` and ``sanad audit verify``: accounts, API tokens and the audit
chain from the command line.

``add`` is the bootstrap (the first admin and supervisor): whoever runs it already holds the
server and its keys. Everyone else is invited (``invite`` here or on the accounts page) and
chooses their own password; a case-role account then waits for a supervisor's approval in the
console. Passwords are read with ``getpass`` (twice) or, for scripts, from the first line of
stdin with ``--password-stdin``; they never appear in argv, where other users of the machine
see them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import timedelta

import orjson

from bot.config import Settings
from bot.store.db import transaction
from handoff import accounts, audit
from handoff.auth import (
    AccountError,
    AuthPolicy,
    Passwords,
    create_account,
    find_account,
    issue_token,
)
from handoff.models import ROLES
from handoff.policy import CASE_SCOPES


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat the password: "):
        raise AccountError("the passwords do not match")
    return first


async def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        password = _read_password(args.password_stdin)
        async with transaction(settings.database_url) as db:
            account = await create_account(db, Passwords(), name=args.name, role=args.role,
                                           password=password)
            audit.record(db, "cli", "account.create", detail=account.name)
    except AccountError as exc:
        print(f"sanad caseworker add: {exc}", file=sys.stderr)
        return 1
    print(f"created {args.role} account {args.name}")
    return 0


async def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with transaction(settings.database_url) as db:
            token = await issue_token(db, args.name, scopes=tuple(args.scope or CASE_SCOPES),
                                      lifetime=timedelta(days=args.days))
            audit.record(db, "cli", "token.issue", detail=args.name)
    except AccountError as exc:
        print(f"sanad caseworker token: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


async def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with transaction(settings.database_url) as db:
            invited = await accounts.invite(db, AuthPolicy(), name=args.name, role=args.role,
                                            by="cli")
    except AccountError as exc:
        print(f"sanad caseworker invite: {exc}", file=sys.stderr)
        return 1
    print(args.base_url.rstrip("/") + invited.path)
    print(f"one use, expires {invited.expires_at.isoformat(timespec='minutes')}"
          + ("; a supervisor must approve the account in the console"
             if args.role in accounts.APPROVAL_ROLES else ""), file=sys.stderr)
    return 0


async def cmd_lifecycle(args: argparse.Namespace, settings: Settings) -> int:
    """deactivate | reactivate | revoke | reset-totp NAME."""
    action = args.caseworker_command
    try:
        async with transaction(settings.database_url) as db:
            account = await find_account(db, args.name)
            if action in ("deactivate", "reactivate"):
                await accounts.set_active(db, account, action == "reactivate", by="cli")
            elif action == "revoke":
                await accounts.revoke(db, account, by="cli")
            else:
                await accounts.reset_second_factor(db, account, by="cli")
            pending = accounts.pending_approval(account) and account.active
    except AccountError as exc:
        print(f"sanad caseworker {action}: {exc}", file=sys.stderr)
        return 1
    print(f"{action}: {args.name}" + (" (waits for a supervisor's approval)" if pending else ""))
    return 0


async def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when the chain is whole, 1 when a row was edited or removed."""
    async with transaction(settings.database_url) as db:
        verdict = await audit.verify(db, anchors=tuple(args.anchor or ()))
    if args.json:
        print(orjson.dumps({
            "ok": verdict.ok, "rows": verdict.rows, "first_seq": verdict.first_seq,
            "head_seq": verdict.head_seq, "head_hash": verdict.head_hash,
            "problems": [{"seq": p.seq, "problem": p.what} for p in verdict.problems],
        }).decode())
    else:
        for problem in verdict.problems:
            print(f"row {problem.seq}: {problem.what}" if problem.seq else problem.what)
        state = "intact" if verdict.ok else f"BROKEN ({len(verdict.problems)} problems)"
        print(f"audit chain {state}: {verdict.rows} rows from {verdict.first_seq or '-'} "
              f"to {verdict.head_seq}, head {verdict.head_hash}")
    return 0 if verdict.ok else 1


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``caseworker add`` and ``caseworker token`` to the ``sanad`` parser."""
    caseworker = commands.add_parser("caseworker", help="console accounts and API tokens")
    sub = caseworker.add_subparsers(dest="caseworker_command", required=True)
    add = sub.add_parser("add", help="create a console account")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin")
    add.set_defaults(handler=cmd_add)
    token = sub.add_parser("token", help="print a new bearer token for the JSON API")
    token.add_argument("name")
    token.add_argument("--scope", action="append", choices=CASE_SCOPES,
                       help="repeat for several (default: all)")
    token.add_argument("--days", type=int, default=AuthPolicy.token_lifetime.days,
                       help="expires after this many days (default 90)")
    token.set_defaults(handler=cmd_token)
    invite = sub.add_parser("invite", help="a new account and its one-time set-password link")
    invite.add_argument("name")
    invite.add_argument("--role", choices=ROLES, required=True)
    invite.add_argument("--base-url", default="http://127.0.0.1:8080",
                        help="the console's public address, for the printed link")
    invite.set_defaults(handler=cmd_invite)
    for action, what in (("deactivate", "end every session and token; refuse logins"),
                         ("reactivate", "allow logins again (case roles: after approval)"),
                         ("revoke", "end every session and revoke every API token"),
                         ("reset-totp", "forget the second factor (lost phone)")):
        lifecycle = sub.add_parser(action, help=what)
        lifecycle.add_argument("name")
        lifecycle.set_defaults(handler=cmd_lifecycle)
    audit_parser = commands.add_parser("audit", help="the audit log")
    audit_sub = audit_parser.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the audit log's hash chain")
    verify.add_argument("--json", action="store_true")
    verify.add_argument("--anchor", action="append", metavar="HASH",
                        help="a head hash printed earlier and kept elsewhere: it must still be "
                             "in the chain (repeatable)")
    verify.set_defaults(handler=cmd_audit_verify)
