"""``sanad caseworker add|token``: console accounts and API tokens from the command line.

Passwords are read with ``getpass`` (twice) or, for scripts, from the first line of stdin with
``--password-stdin``; they never appear in argv, where other users of the machine see them.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.config import Settings
from bot.store.db import transaction
from handoff import audit
from handoff.auth import AccountError, Passwords, create_account, issue_token
from handoff.models import ROLES


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
            token = await issue_token(db, args.name)
            audit.record(db, "cli", "token.issue", detail=args.name)
    except AccountError as exc:
        print(f"sanad caseworker token: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


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
    token.set_defaults(handler=cmd_token)
