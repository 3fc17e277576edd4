"""Imports stay at the top of a module (#22): an import inside a function is allowed only for an
optional or heavy dependency not needed on every path, or for the CLI's per-subcommand start-up
(bench/README "Start-up"). Never to dodge a cycle: the layers (pyproject's import-linter
contracts) leave none to dodge. The core is a leaf whatever new module appears."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "nlu", "handoff")

OPTIONAL = "optional dependency"
CLI = "CLI start-up"

ALLOWED: dict[tuple[str, str], str] = {
    # sanad's subcommands import what they use, so that `sanad chat` and `--version` start fast.
    ("bot.cli", "importlib.metadata"): CLI,
    ("bot.cli", "bot.app"): CLI,
    ("bot.cli", "bot.channels.terminal"): CLI,
    ("bot.cli", "nlu"): CLI,
    ("bot.cli", "nlu.cli"): CLI,
    ("bot.cli", "nlu.classifier"): CLI,
    ("bot.cli", "nlu.safeguard"): CLI,
    ("bot.cli", "bot.channels.telegram_commands"): CLI,
    ("bot.cli", "bot.channels.whatsapp_templates"): CLI,
    ("bot.cli", "bot.content.check"): CLI,
    ("bot.cli", "bot.i18n"): CLI,
    ("bot.cli", "handoff.content_cli"): CLI,
    ("bot.cli", "bot.store.crypto"): CLI,
    ("bot.cli", "handoff.queue"): CLI,
    ("bot.cli", "aiohttp"): CLI,
    ("bot.cli", "bot.heap"): CLI,
    ("bot.cli", "bot.web.app"): CLI,
    ("bot.cli", "bot.metrics"): CLI,
    ("bot.cli", "bot.worker"): CLI,
    ("bot.cli", "bot.store.keys"): CLI,
    ("bot.cli", "bot.store.repository"): CLI,
    ("bot.cli", "handoff.cli"): CLI,
    ("bot.cli", "bot.outreach.cli"): CLI,
    ("bot.cli", "handoff.indicators.cli"): CLI,
    ("bot.cli", "handoff.referrals.cli"): CLI,
    ("bot.cli", "bot.outbox"): CLI,
    ("bot.cli", "bot.eventloop"): CLI,
    ("bot.outreach.cli", "bot.app"): CLI,
    ("bot.outreach.cli", "bot.channels.campaigns"): CLI,
    # Loaded only on the path that needs them.
    ("bot.eventloop", "uvloop"): OPTIONAL,  # not on Windows; SANAD_EVENT_LOOP
    ("bot.sendbudget.config", "redis.asyncio"): OPTIONAL,  # the `redis` extra
    ("bot.sendbudget.config", "bot.sendbudget.redis_backend"): OPTIONAL,  # imports redis
    ("bot.store.db", "alembic"): OPTIONAL,  # migrations only
    ("bot.store.db", "alembic.config"): OPTIONAL,
    ("bot.store.db", "alembic.script"): OPTIONAL,
    ("bot.store.db", "fcntl"): OPTIONAL,  # POSIX file lock for SQLite migrations
    ("bot.web.app", "bot.channels.telegram"): OPTIONAL,  # python-telegram-bot, when enabled
    ("nlu.langid", "langdetect"): OPTIONAL,
    ("nlu.langid", "langdetect.lang_detect_exception"): OPTIONAL,
    ("nlu.rasa_client", "aiohttp"): OPTIONAL,  # NLU_BACKEND=rasa only; nlu stays usable alone
    ("nlu.safety_model", "sklearn.feature_extraction.text"): OPTIONAL,  # training only
    ("nlu.safety_model", "sklearn.model_selection"): OPTIONAL,
    ("nlu.safety_model", "sklearn.multiclass"): OPTIONAL,
    ("nlu.safety_model", "sklearn.pipeline"): OPTIONAL,
    ("nlu.safety_model", "sklearn.svm"): OPTIONAL,
    ("nlu.training", "sklearn.feature_extraction.text"): OPTIONAL,
    ("nlu.training", "sklearn.model_selection"): OPTIONAL,
    ("nlu.training", "sklearn.pipeline"): OPTIONAL,
    ("nlu.training", "sklearn.svm"): OPTIONAL,
    ("handoff.indicators.release", "opendp.prelude"): OPTIONAL,  # pulls in scikit-learn
    ("handoff.live", "asyncpg"): OPTIONAL,  # LISTEN/NOTIFY on PostgreSQL only
}

CORE_MAY_IMPORT = ("bot.core", "bot.messages", "nlu.results", "nlu.safeguard")
"""Of the project, the core imports itself, the messages and the NLU's result types."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> Iterator[tuple[str, Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), path, ast.parse(path.read_text(encoding="utf-8"))


def imported(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names of what ``node`` imports; ``from pkg import sub`` names the submodule."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    base = node.module or ""
    if node.level:
        base = f"{package}.{base}" if base else package
    names = []
    for alias in node.names:
        sub = ROOT.joinpath(*f"{base}.{alias.name}".split("."))
        is_module = sub.with_suffix(".py").exists() or (sub / "__init__.py").exists()
        names.append(f"{base}.{alias.name}" if is_module else base)
    return names


def function_imports(module: str, path: Path, tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(imported name, line) of every import statement inside a function body."""
    inside = {id(inner): inner for node in ast.walk(tree)
              if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
              for inner in ast.walk(node) if isinstance(inner, ast.Import | ast.ImportFrom)}
    for node in sorted(inside.values(), key=lambda n: n.lineno):
        for name in imported(module, path, node):
            yield name, node.lineno


def all_function_imports() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for module, path, tree in sources():
        for name, line in function_imports(module, path, tree):
            found.setdefault((module, name), []).append(line)
    return found


def test_no_import_inside_a_function_but_the_allowed() -> None:
    found = all_function_imports()
    unexplained = {f"{m}:{lines[0]} imports {name}" for (m, name), lines in found.items()
                   if (m, name) not in ALLOWED}
    assert not unexplained, (
        "imports inside functions: move them to the top of the module (a cycle means a layer "
        "is wrong), or add an optional dependency / CLI start-up entry to ALLOWED: "
        + "; ".join(sorted(unexplained)))


def test_the_allow_table_is_exact_and_gives_only_the_two_reasons() -> None:
    found = all_function_imports()
    stale = sorted(f"{m} -> {name}" for m, name in ALLOWED if (m, name) not in found)
    assert not stale, f"ALLOWED names imports that are no longer inside functions: {stale}"
    assert set(ALLOWED.values()) <= {OPTIONAL, CLI}


def test_the_scan_sees_imports_nested_anywhere_in_a_function(tmp_path: Path) -> None:
    source = (
        "import os\n"
        "def f():\n"
        "    if True:\n"
        "        from bot.store import db\n"
        "    class C:\n"
        "        def g(self):\n"
        "            import json\n"
    )
    tree = ast.parse(source)
    found = [name for name, _ in function_imports("bot.x", ROOT / "bot" / "x.py", tree)]
    assert sorted(found) == ["bot.store.db", "json"]


def test_the_core_imports_only_itself_the_messages_and_nlu_results() -> None:
    outside = []
    for module, path, tree in sources():
        if module != "bot.core" and not module.startswith("bot.core."):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in imported(module, path, node):
                project = name.split(".")[0] in PACKAGES
                if project and not any(name == allowed or name.startswith(allowed + ".")
                                       for allowed in CORE_MAY_IMPORT):
                    outside.append(f"{module} imports {name}")
    assert not outside, outside
