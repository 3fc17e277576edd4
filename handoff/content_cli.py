"""``sanad content status|approve|reviewer`` and the production part of ``content check``.

Approvals live in the database (``content_reviews``), so these commands read the configured
``DATABASE_URL``. ``approve`` is an operator bootstrap (the console is the normal way) and,
like ``reviewer``, is written in one transaction with its audit row (actor ``cli``).
"""

from __future__ import annotations

import argparse
import json
import sys

from bot.config import Settings
from bot.content import LANGUAGES, ContentError, ContentLibrary, Problem
from bot.content.review import ItemStatus, statuses
from bot.content.review_store import ReviewError, decide, grant, load_approvals, revoke
from bot.store.db import transaction
from bot.store.repository import utcnow
from handoff import audit
from handoff.auth import AccountError, find_account


def production_problems(library: ContentLibrary) -> list[Problem]:
    """What makes a production start pointless or unsafe: a language with no awareness
    module, no approved questionnaire, no approved services directory."""
    served = library.served
    if served is None:
        return []
    problems: list[Problem] = []
    for lang in LANGUAGES:
        if not served.modules.get(lang):
            problems.append(Problem(f"content/{lang}/modules", "review",
                                    f"production would serve no awareness module in {lang}: "
                                    "none is approved (sanad content status)"))
    if served.screening is None:
        problems.append(Problem("content/screening.yml", "review",
                                "production would not offer the screening questionnaire: no "
                                "version is approved in every language"))
    if not library.services_approved:
        problems.append(Problem("content/services.yml", "review",
                                "production would list only the emergency numbers: no version "
                                "of the services directory is approved in every language"))
    return problems


async def production_library(settings: Settings) -> tuple[ContentLibrary, list[ItemStatus]]:
    """The library as production would serve it, with the stored approvals applied."""
    library = ContentLibrary.load(show_drafts=False)
    async with transaction(settings.database_url) as db:
        approvals = await load_approvals(db)
    library.apply_approvals(approvals)
    return library, statuses(library.review_items(), approvals)


async def production_check(settings: Settings) -> list[Problem]:
    """The problems ``sanad content check --production`` adds (none if content is broken:
    the ordinary check already reports that)."""
    try:
        library, _ = await production_library(settings)
    except ContentError:
        return []
    return production_problems(library)


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    library, found = await production_library(settings)
    if args.json:
        print(json.dumps({"items": [s.to_dict() for s in found],
                          "hidden": list(library.served.hidden if library.served else ()),
                          "frozen": list(library.served.frozen if library.served else ())},
                         ensure_ascii=False))
        return 0
    counts = {status: sum(1 for s in found if s.status == status)
              for status in ("approved", "stale", "never")}
    for s in found:
        by = f"  (approved by {s.last.reviewer} {s.last.at:%Y-%m-%d})" if s.last else ""
        asks = "  changes requested" if s.changes_requested else ""
        print(f"{s.status:<9} {s.item.kind:<10} {s.item.item_id:<24} {s.item.lang}{by}{asks}")
    print(f"{counts['approved']} approved, {counts['stale']} changed since approval, "
          f"{counts['never']} never reviewed")
    return 0


async def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    kind = args.id if args.id in ("screening", "services") else "module"
    library = ContentLibrary.load(show_drafts=False)
    item = next((i for i in library.review_items()
                 if i.kind == kind and i.item_id == args.id and i.lang == args.lang), None)
    if item is None:
        print(f"sanad content approve: no content {args.id!r} in {args.lang}", file=sys.stderr)
        return 1
    try:
        async with transaction(settings.database_url) as db:
            await decide(db, item, decision="approved", reviewer=args.reviewer,
                         comment=args.comment or "", at=utcnow())
            audit.record(db, "cli", "content.approve",
                         detail=f"{item.kind}:{item.item_id}:{item.lang}"[:64])
    except ReviewError as exc:
        print(f"sanad content approve: {exc}", file=sys.stderr)
        return 1
    print(f"approved {item.kind} {item.item_id} ({item.lang}) {item.digest[:12]} "
          f"for {args.reviewer}")
    return 0


async def cmd_reviewer(args: argparse.Namespace, settings: Settings) -> int:
    try:
        async with transaction(settings.database_url) as db:
            account = await find_account(db, args.name)
            if args.revoke:
                changed = await revoke(db, account.id)
            else:
                changed = await grant(db, account.id, by="cli", at=utcnow())
            if changed:
                audit.record(db, "cli", "content.revoke" if args.revoke else "content.grant",
                             detail=account.name)
    except AccountError as exc:
        print(f"sanad content reviewer: {exc}", file=sys.stderr)
        return 1
    verb = "may no longer" if args.revoke else "may now"
    print(f"{args.name} {verb} review content" + ("" if changed else " (unchanged)"))
    return 0


def register(content_commands: argparse._SubParsersAction) -> None:
    """Add ``status``, ``approve`` and ``reviewer`` to ``sanad content``."""
    status = content_commands.add_parser(
        "status", help="what is approved, changed since approval, or never reviewed")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)
    approve = content_commands.add_parser(
        "approve", help="record an approval without the console (audited; for bootstrap)")
    approve.add_argument("id", help="a module id, or 'screening' or 'services'")
    approve.add_argument("--lang", choices=LANGUAGES, required=True,
                         help="the language version that was read")
    approve.add_argument("--reviewer", required=True, help="the qualified person who read it")
    approve.add_argument("--comment", default="", help="kept with the approval")
    approve.set_defaults(handler=cmd_approve)
    reviewer = content_commands.add_parser(
        "reviewer", help="let a console account with another role review content")
    reviewer.add_argument("name", help="the console account")
    reviewer.add_argument("--revoke", action="store_true", help="withdraw the capability")
    reviewer.set_defaults(handler=cmd_reviewer)

