"""The ``sanad`` command line (also ``python -m bot``): see CONTRACT.md for the public commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bot.config import SUPPORTED_LANGUAGES, ConfigError, Settings
from bot.content import ContentError, Problem
from bot.store.db import DatabaseUnavailable

log = logging.getLogger("sanad")

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def configure_logging(level: int) -> None:
    """Plain logs on stderr. Third-party request logs stay at WARNING: Telegram URLs carry the
    bot token, and nothing we log may contain message text or phone numbers."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "telegram", "aiohttp.access", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --- commands --------------------------------------------------------------------------
async def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build
    from bot.channels.terminal import TerminalChannel

    sanad = await build(settings)
    try:
        channel = TerminalChannel(sanad, user_id=args.user, as_json=args.json, language=args.lang)
        return await channel.run()
    finally:
        await sanad.aclose()


async def cmd_nlu_parse(args: argparse.Namespace, settings: Settings) -> int:
    from nlu import build_backend
    from nlu.cli import parse_command

    backend = build_backend(settings.nlu_backend, rasa_url=settings.rasa_url,
                            cache_dir=settings.cache_dir)
    try:
        return parse_command(backend, args.text, args.jsonl, sys.stdin, sys.stdout)
    finally:
        await backend.aclose()


async def cmd_nlu_test(args: argparse.Namespace, settings: Settings) -> int:
    from nlu import EmbeddedNLU
    from nlu.classifier import default_cache_dir
    from nlu.cli import is_safety_file, safety_test_command, test_command
    from nlu.safeguard import EmbeddedSafety

    if is_safety_file(Path(args.data)):
        detector = EmbeddedSafety.load(settings.cache_dir or default_cache_dir())
        return safety_test_command(detector, Path(args.data), sys.stdout, as_json=args.json)
    backend = EmbeddedNLU.load(cache_dir=settings.cache_dir)
    return test_command(backend, Path(args.data), sys.stdout, as_json=args.json)


async def cmd_content_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels.telegram_commands import load_commands
    from bot.channels.whatsapp_templates import check as check_whatsapp_templates
    from bot.content import check
    from bot.i18n import UiCatalog

    def interface_texts() -> list[Problem]:
        return UiCatalog.load().check()

    def telegram_commands() -> list[Problem]:
        load_commands()
        return []

    problems: list[Problem] = []
    for checker in (check, interface_texts, telegram_commands, check_whatsapp_templates):
        try:
            problems += checker()
        except ContentError as exc:  # a file too broken to check further
            problems += exc.problems
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"content check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("content check: OK")
    return 0


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store.db import open_database

    async with open_database(settings.database_url):
        pass
    print("database is up to date")
    return 0


async def cmd_cases_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store.db import transaction
    from handoff.queue import list_cases

    async with transaction(settings.database_url) as db:
        cases = await list_cases(db)
    if args.json:
        print(json.dumps([c.to_dict() for c in cases], ensure_ascii=False))
        return 0
    if not cases:
        print("no open cases")
    for case in cases:
        print(f"#{case.id:<5} {case.alias}  {case.priority:<7} {case.status:<8} "
              f"risk={case.risk_level or '-':<7} {case.language} {case.channel} "
              f"since {case.created_at:%Y-%m-%d %H:%M}Z")
    return 0


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from bot.app import build
    from bot.heap import freeze_startup_heap
    from bot.web.app import configured_channels, create_app

    if args.polling and not settings.telegram_bot_token:
        raise ConfigError("serve --polling needs TELEGRAM_BOT_TOKEN")
    sanad = await build(settings)
    channels = configured_channels(sanad, telegram_polling=args.polling)
    runner = web.AppRunner(create_app(sanad, channels=channels), access_log=None)
    port = args.port or settings.port
    try:
        await runner.setup()  # starts the channels (Telegram: getMe, commands, webhook)
        # --reuse-port: several `sanad serve` processes share one port (Linux SO_REUSEPORT)
        await web.TCPSite(runner, args.host, port, reuse_port=args.reuse_port or None).start()
        freeze_startup_heap()  # full collections would walk the model and content: bot.heap
        log.warning("sanad serve listening on http://%s:%s", args.host, port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await sanad.aclose()
    return 0


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from bot.worker import Worker

    return await Worker(settings).run(once=args.once)


async def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build
    from bot.store.keys import rotate

    sanad = await build(settings)
    try:
        counts = await rotate(sanad.store)
    finally:
        await sanad.aclose()
    for column, count in counts.items():
        print(f"{column}: {count} re-sealed")
    print("rotation done: SANAD_OLD_SECRET_KEYS can now be retired")
    return 0


# --- parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanad", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (never text)")
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument("--user", default="local", help="terminal user id (default: local)")
    chat.add_argument("--lang", choices=SUPPORTED_LANGUAGES, help="reply language")
    chat.add_argument("--json", action="store_true", help="one JSON line per input line")
    chat.set_defaults(handler=cmd_chat)

    nlu = commands.add_parser("nlu", help="natural language understanding")
    nlu_commands = nlu.add_subparsers(dest="nlu_command", required=True)
    parse = nlu_commands.add_parser("parse", help="parse a text (or JSON lines on stdin)")
    parse.add_argument("text", nargs="?")
    parse.add_argument("--jsonl", action="store_true")
    parse.set_defaults(handler=cmd_nlu_parse)
    test = nlu_commands.add_parser("test", help="evaluate on labelled data")
    test.add_argument("--data", required=True)
    test.add_argument("--json", action="store_true")
    test.set_defaults(handler=cmd_nlu_test)

    content = commands.add_parser("content", help="content tools")
    content_commands = content.add_subparsers(dest="content_command", required=True)
    content_commands.add_parser("check", help="lint content/").set_defaults(
        handler=cmd_content_check)

    serve = commands.add_parser("serve", help="the web app: webhooks, console, APIs")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    serve.add_argument("--polling", action="store_true",
                       help="development: get Telegram updates by polling, not the webhook")
    serve.add_argument("--reuse-port", action="store_true",
                       help="SO_REUSEPORT: run several serve processes on one port "
                            "(PostgreSQL; the kernel spreads connections over them)")
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="background jobs (campaign sending, "
                                                 "retention clean-up, SLA escalation)")
    worker.add_argument("--once", action="store_true",
                        help="run each job once, send what is due, and exit")
    worker.set_defaults(handler=cmd_worker)

    db = commands.add_parser("db", help="database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)

    cases = commands.add_parser("cases", help="the handoff queue")
    cases_commands = cases.add_subparsers(dest="cases_command", required=True)
    listing = cases_commands.add_parser("list", help="open cases, most urgent first")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_cases_list)
    keys = commands.add_parser("keys", help="encryption keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    keys_commands.add_parser(
        "rotate", help="re-seal all encrypted data with SANAD_SECRET_KEY (old keys in "
                       "SANAD_OLD_SECRET_KEYS)").set_defaults(handler=cmd_keys_rotate)

    from handoff.cli import register as register_caseworker_commands

    register_caseworker_commands(commands)
    from bot.outreach.cli import register as register_campaign_commands

    register_campaign_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8")
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(encoding="utf-8", errors="replace")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"sanad: configuration error: {exc}", file=sys.stderr)
        return 2
    from bot import outbox

    outbox.configure(settings.outbox_lease_seconds)
    from bot import eventloop

    try:
        return eventloop.run(args.handler(args, settings), choice=settings.event_loop)
    except DatabaseUnavailable as exc:
        print(f"sanad: the database is unavailable ({exc.reason}); the command did not complete",
              file=sys.stderr)
        return 3
    except ConfigError as exc:  # found while starting (e.g. a channel's settings)
        print(f"sanad: configuration error: {exc}", file=sys.stderr)
        return 2
    except ContentError as exc:
        print(f"sanad: invalid content, run `sanad content check`:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
