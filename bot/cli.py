"""The ``sanad`` command line (also ``python -m bot``); the public commands are in
``docs/contract.md``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bot.config import SUPPORTED_LANGUAGES, ConfigError, Settings
from bot.content import ContentError, Problem
from bot.logs import configure_from_env
from bot.store.db import DatabaseUnavailable, open_database, transaction

log = logging.getLogger("sanad")

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]

DESCRIPTION = """\
Sanad (سند): an Arabic-first awareness, screening and caseworker handoff bot on Telegram and
WhatsApp. Configuration comes from the environment (DATABASE_URL, SANAD_SECRET_KEY,
TELEGRAM_BOT_TOKEN, ...): see docs/contract.md and README.md, "Configuration"."""

EPILOG = """\
common tasks:
  sanad chat                     try the bot in this terminal (no token needed)
  sanad db upgrade               create or migrate the database (safe to repeat)
  sanad serve --port 8080        webhooks, caseworker console, /healthz, /metrics
  sanad worker                   campaigns, SLA escalation, retention clean-up
  sanad caseworker add NAME --role admin
                                 the first console account

Run `sanad COMMAND --help` for a command's options. Operating it (Procfile, systemd, logs,
metrics, backups): docs/deploy.md."""

LONG_RUNNING = ("serve", "worker")
"""Commands that log at INFO by default (start-up, shutdown); one-shot commands log warnings."""

SHUTDOWN_TIMEOUT_S = 20.0
"""``serve``: after SIGTERM, how long in-flight requests may take before they are cancelled
(under Heroku's 30 s and systemd's TimeoutStopSec in deploy/)."""


def configure_logging(level: int) -> None:
    """Logs on stderr, text or JSON (``SANAD_LOG_FORMAT``): :mod:`bot.logs`."""
    configure_from_env(level)


def version() -> str:
    """The installed distribution's version (the source tree's when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("sanad")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


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
    if args.production:  # approvals in the database: what production would serve
        from handoff.content_cli import production_check

        problems += await production_check(settings)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"content check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("content check: OK")
    return 0


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings.database_url):
        pass  # migrated under a lock: concurrent runs wait, then find nothing to do
    print("database is up to date")
    return 0


async def cmd_cases_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store.crypto import FieldCipher
    from handoff.queue import list_cases

    cipher = FieldCipher(settings.secret_key, settings.old_secret_keys)  # opens indicators
    async with transaction(settings.database_url) as db:
        cases = await list_cases(db, cipher=cipher)
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
    from bot.metrics import Metrics

    stop = asyncio.Event()
    _stop_on_signals(stop)  # before the slow start: a SIGTERM while loading still exits 0
    sanad = await build(settings)  # migrates under a lock: waits for another process's upgrade
    channels = configured_channels(sanad, telegram_polling=args.polling)
    runner = web.AppRunner(create_app(sanad, Metrics.for_process(), channels=channels),
                           access_log=None, shutdown_timeout=args.shutdown_timeout)
    port = args.port or settings.port
    try:
        await runner.setup()  # starts the channels (Telegram: getMe, commands, webhook)
        # --reuse-port: several `sanad serve` processes share one port (Linux SO_REUSEPORT)
        await web.TCPSite(runner, args.host, port, reuse_port=args.reuse_port or None).start()
        freeze_startup_heap()  # full collections would walk the model and content: bot.heap
        log.info("sanad serve listening on http://%s:%s", args.host, port)
        await stop.wait()
        log.info("sanad serve stopping: finishing requests in flight (up to %.0f s)",
                 args.shutdown_timeout)
    finally:
        # aiohttp closes the listener, waits for handlers in flight (up to shutdown_timeout),
        # then runs the channels' stop: their outbox senders record or give back what is leased
        await runner.cleanup()
        await sanad.aclose()
        Metrics.process_exited()
    log.info("sanad serve stopped")
    return 0


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM (supervisors) and SIGINT (Ctrl-C) end ``serve`` cleanly with exit status 0."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            return


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


async def cmd_keys_status(args: argparse.Namespace, settings: Settings) -> int:
    """Which keys seal what (docs/keys.md): master key ids per sealed column with their row
    counts, rows under users' data keys, and how many users have a data key."""
    from bot.store.keys import status
    from bot.store.repository import Store

    async with open_database(settings.database_url) as engine:  # no NLU, no content
        found = await status(Store.from_settings(settings, engine))
    if args.json:
        print(json.dumps(found.to_dict()))
        return 0
    print(f"current master key: {found.current}"
          + (f" (old still configured: {', '.join(found.old)})" if found.old else ""))
    print(f"users with a data key: {found.users_with_key}")
    for column in found.columns:
        if not column.master and not column.user_rows:
            continue
        parts = [f"master {key}{'' if key == found.current else ' (old)'}: {count}"
                 for key, count in sorted(column.master.items())]
        if column.user_rows:
            parts.append(f"user data keys: {column.user_rows} rows / {column.user_keys} keys")
        print(f"{column.column}: " + "; ".join(parts))
    if found.stale:
        print(f"{found.stale} rows under an old master key: run `sanad keys rotate`")
    return 0


# --- parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanad", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log at INFO (serve and worker always do; SANAD_LOG_LEVEL "
                             "overrides); logs never hold message text or phone numbers")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument("--user", default="local", help="terminal user id (default: local)")
    chat.add_argument("--lang", choices=SUPPORTED_LANGUAGES, help="reply language")
    chat.add_argument("--json", action="store_true", help="one JSON line per input line")
    chat.set_defaults(handler=cmd_chat)

    nlu = commands.add_parser("nlu", help="natural language understanding")
    nlu_commands = nlu.add_subparsers(dest="nlu_command", required=True)
    parse = nlu_commands.add_parser("parse", help="parse a text (or JSON lines on stdin)")
    parse.add_argument("text", nargs="?", help="the text to parse (omit with --jsonl)")
    parse.add_argument("--jsonl", action="store_true",
                       help='read {"text": ...} lines on stdin, write one result a line')
    parse.set_defaults(handler=cmd_nlu_parse)
    test = nlu_commands.add_parser("test", help="evaluate on labelled data")
    test.add_argument("--data", required=True,
                      help="Rasa YAML, or JSON lines {\"text\", \"intent\"}; a safety file "
                           "evaluates the safety detector")
    test.add_argument("--json", action="store_true", help="figures as one JSON object")
    test.set_defaults(handler=cmd_nlu_test)

    content = commands.add_parser("content", help="content tools")
    content_commands = content.add_subparsers(dest="content_command", required=True)
    content_check = content_commands.add_parser("check", help="lint content/")
    content_check.add_argument(
        "--production", action="store_true",
        help="also fail when production would serve no module in a language, no approved "
             "screening or no approved services directory (reads DATABASE_URL)")
    content_check.set_defaults(handler=cmd_content_check)
    from handoff.content_cli import register as register_content_review_commands

    register_content_review_commands(content_commands)

    serve = commands.add_parser(
        "serve", help="the web app: webhooks, console, APIs",
        description="The web app: channel webhooks, caseworker console, case and parse APIs, "
                    "/healthz, /readyz and /metrics. Migrates the database first (waiting for "
                    "another process that is migrating). SIGTERM or Ctrl-C: stop accepting, "
                    "finish requests in flight, exit 0.")
    serve.add_argument("--host", default="0.0.0.0",
                       help="address to listen on (default: 0.0.0.0, every interface; "
                            "127.0.0.1 behind a reverse proxy on the same machine)")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    serve.add_argument("--polling", action="store_true",
                       help="development: get Telegram updates by polling, not the webhook")
    serve.add_argument("--reuse-port", action="store_true",
                       help="SO_REUSEPORT: run several serve processes on one port "
                            "(PostgreSQL; the kernel spreads connections over them)")
    serve.add_argument("--shutdown-timeout", type=float, default=SHUTDOWN_TIMEOUT_S,
                       metavar="SECONDS",
                       help="after SIGTERM, how long requests in flight may finish "
                            f"(default: {SHUTDOWN_TIMEOUT_S:.0f})")
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="background jobs (campaign sending, "
                                                 "retention clean-up, SLA escalation)")
    worker.add_argument("--once", action="store_true",
                        help="run each job once, send what is due, and exit")
    worker.set_defaults(handler=cmd_worker)

    db = commands.add_parser("db", help="database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser(
        "upgrade", help="create or migrate the schema (idempotent; concurrent runs wait "
                        "for each other)").set_defaults(handler=cmd_db_upgrade)

    cases = commands.add_parser("cases", help="the handoff queue")
    cases_commands = cases.add_subparsers(dest="cases_command", required=True)
    listing = cases_commands.add_parser("list", help="open cases, most urgent first")
    listing.add_argument("--json", action="store_true", help="a JSON array (docs/contract.md)")
    listing.set_defaults(handler=cmd_cases_list)
    keys = commands.add_parser("keys", help="encryption keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    keys_commands.add_parser(
        "rotate", help="re-seal all encrypted data with SANAD_SECRET_KEY (old keys in "
                       "SANAD_OLD_SECRET_KEYS)").set_defaults(handler=cmd_keys_rotate)
    keys_status = keys_commands.add_parser(
        "status", help="key ids in use per table, rows per key id, users with a data key")
    keys_status.add_argument("--json", action="store_true", help="one JSON object")
    keys_status.set_defaults(handler=cmd_keys_status)

    from handoff.cli import register as register_caseworker_commands

    register_caseworker_commands(commands)
    from bot.outreach.cli import register as register_campaign_commands

    register_campaign_commands(commands)
    from handoff.indicators.cli import register as register_indicator_commands

    register_indicator_commands(commands)
    from handoff.referrals.cli import register as register_partner_commands

    register_partner_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    long_running = args.command in LONG_RUNNING
    try:
        configure_logging(logging.INFO if args.verbose or long_running else logging.WARNING)
    except ValueError as exc:  # SANAD_LOG_FORMAT / SANAD_LOG_LEVEL
        print(f"sanad: configuration error: {exc}", file=sys.stderr)
        return 2
    if long_running:
        from bot.metrics import prepare_multiprocess_dir

        try:
            prepare_multiprocess_dir()
        except OSError as exc:
            print(f"sanad: configuration error: PROMETHEUS_MULTIPROC_DIR cannot be created "
                  f"({exc.strerror})", file=sys.stderr)
            return 2
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
