"""``sanad content check``: lint the content directory without starting the bot."""

from __future__ import annotations

import sys
from pathlib import Path

from .loader import parse_content
from .models import Problem


def check(root: Path | None = None) -> list[Problem]:
    """Every problem in the content directory (default: ``$SANAD_CONTENT_DIR`` or the
    repository's ``content/``); an empty list means the content is fit to ship."""
    _, problems = parse_content(root)
    return problems


def report(problems: list[Problem]) -> str:
    """Human-readable report, one problem a line, for the command line."""
    if not problems:
        return "content OK"
    lines = [str(p) for p in problems]
    lines.append(f"{len(problems)} problem(s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m bot.content [ROOT]``: print the report; exit 1 if there are problems."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else None
    problems = check(root)
    print(report(problems))
    return 1 if problems else 0
