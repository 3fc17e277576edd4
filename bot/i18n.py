"""Interface strings (menus, prompts, errors) per language, loaded from ``content/<lang>/ui.yml``.

Arabic, English and French text is data: flows ask for a key and get the text in the user's
language, or in its declared fallback (bot/languages.py). Missing keys of a complete language
are caught by ``check()`` at start-up and by ``sanad content check``.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.content.models import ContentError, Problem
from bot.languages import LANGUAGES, REFERENCE, Languages
from bot.words import word_list
from nlu import yamlio

REFERENCE_LANGUAGE = REFERENCE
PARTIAL_REQUIRED = ("language.name",)
"""What a language that ships progressively must have from its first day: its own name
(on the language buttons)."""


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
    languages: Languages = field(default=LANGUAGES, compare=False, repr=False)
    _words: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, root: Path | None = None, languages: Languages = LANGUAGES) -> UiCatalog:
        """Read every language's ``ui.yml``; raise ContentError naming each broken field."""
        root = root or content_root()
        texts: dict[str, dict[str, str]] = {}
        problems: list[Problem] = []
        for lang in languages.codes:
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
        return cls(texts, languages)

    def text(self, lang: str, key: str, **values: Any) -> str:
        """The text in ``lang``, else in the first of its fallbacks that has it."""
        for source in self.languages.chain(lang):
            template = self.texts.get(source, {}).get(key)
            if template:
                return template.format(**values) if values else template
        raise KeyError(f"no interface text {key!r}")

    def words(self, key: str) -> frozenset[str]:
        """The folded word list ``key`` (``words.stop``) of every language: a user may write
        in another language than the one the bot speaks. Cached: matched on every turn."""
        found = self._words.get(key)
        if found is None:
            found = self._words[key] = word_list(self.texts, key)
        return found

    def check(self) -> list[Problem]:
        """Every key in every complete language (a partial one: its name), nothing unknown,
        and the same placeholders in each translation."""
        problems: list[Problem] = []
        reference = self.texts[REFERENCE_LANGUAGE]
        for lang, table in self.texts.items():
            path = f"content/{lang}/ui.yml"
            complete = lang not in self.languages or self.languages.get(lang).complete
            required = reference.keys() if complete else set(PARTIAL_REQUIRED)
            for key in sorted(required - table.keys()):
                problems.append(Problem(path, key, "missing translation"))
            for key in sorted(table.keys() - reference.keys()):
                problems.append(Problem(path, key, "not in content/en/ui.yml"))
            for key in sorted(reference.keys() & table.keys()):
                if _fields(reference[key]) != _fields(table[key]):
                    problems.append(Problem(path, key, "placeholders differ from English"))
        return problems


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
