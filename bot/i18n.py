"""Interface strings (menus, prompts, errors) per language, loaded from ``content/<lang>/ui.yml``.

Arabic, English and French text is data: flows ask for a key and get the text in the user's
language. Missing keys are caught by ``check()`` at start-up and by ``sanad content check``.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import SUPPORTED_LANGUAGES
from bot.content.models import ContentError, Problem
from nlu import yamlio

REFERENCE_LANGUAGE = "en"


def content_root() -> Path:
    override = os.environ.get("SANAD_CONTENT_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[1] / "content"


def _flatten(prefix: str, node: Any, out: dict[str, str], problems: list[Problem],
             path: str) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if not isinstance(key, str):
                # YAML 1.1 reads unquoted yes/no/on/off keys as booleans.
                problems.append(Problem(path, f"{prefix}.{key}".lstrip("."),
                                        "key is not text (quote it)"))
                continue
            _flatten(f"{prefix}.{key}" if prefix else key, value, out, problems, path)
    elif isinstance(node, str):
        out[prefix] = node.strip("\n")
    else:
        problems.append(Problem(path, prefix or "(root)",
                                f"expected text, got {type(node).__name__}"))


@dataclass(frozen=True)
class UiCatalog:
    """All interface strings, keyed by language then dotted key (``menu.prompt``)."""

    texts: Mapping[str, Mapping[str, str]]

    @classmethod
    def load(cls, root: Path | None = None) -> UiCatalog:
        """Read every language's ``ui.yml``; raise ContentError naming each broken field."""
        root = root or content_root()
        texts: dict[str, dict[str, str]] = {}
        problems: list[Problem] = []
        for lang in SUPPORTED_LANGUAGES:
            path = f"content/{lang}/ui.yml"
            flat: dict[str, str] = {}
            try:
                data = yamlio.safe_load((root / lang / "ui.yml").read_text(encoding="utf-8"))
            except (OSError, yamlio.YAMLError) as exc:
                problems.append(Problem(path, "file", f"cannot be read: {type(exc).__name__}"))
                data = {}
            _flatten("", data or {}, flat, problems, path)
            texts[lang] = flat
        if problems:
            raise ContentError(problems)
        return cls(texts)

    def text(self, lang: str, key: str, **values: Any) -> str:
        table = self.texts.get(lang) or self.texts[REFERENCE_LANGUAGE]
        template = table.get(key) or self.texts[REFERENCE_LANGUAGE].get(key)
        if template is None:
            raise KeyError(f"no interface text {key!r}")
        return template.format(**values) if values else template

    def check(self) -> list[Problem]:
        """Every key in every language, and the same placeholders in each translation."""
        problems: list[Problem] = []
        reference = self.texts[REFERENCE_LANGUAGE]
        for lang, table in self.texts.items():
            path = f"content/{lang}/ui.yml"
            for key in sorted(reference.keys() - table.keys()):
                problems.append(Problem(path, key, "missing translation"))
            for key in sorted(table.keys() - reference.keys()):
                problems.append(Problem(path, key, "not in content/en/ui.yml"))
            for key in sorted(reference.keys() & table.keys()):
                if _fields(reference[key]) != _fields(table[key]):
                    problems.append(Problem(path, key, "placeholders differ from English"))
        return problems


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
