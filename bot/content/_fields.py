"""Typed, problem-collecting access to the fields of one YAML mapping.

Content editors are not programmers: a wrong type or a missing field must become a readable
``Problem`` naming the file and the field (``messages[2].text``), and parsing must go on so
that one run reports everything. ``Fields`` does that bookkeeping for the parsers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from bot.languages import LANGUAGES as DECLARED_LANGUAGES
from nlu import yamlio

from .limits import LANGUAGES, REQUIRED_LANGUAGES, URL_RE
from .models import ProblemLog


def display_path(path: Path, root: Path) -> str:
    """``content/fr/modules/x.yml``: the path as an editor sees it in the repository."""
    try:
        return path.relative_to(root.parent).as_posix()
    except ValueError:
        return path.as_posix()


def read_yaml(path: Path, shown: str, log: ProblemLog) -> Any:
    """Parse one YAML file safely; a syntax error or an empty file becomes a problem and
    None."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.add(shown, "file", f"cannot be read: {exc}")
        return None
    try:
        data = yamlio.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        log.add(shown, "file", f"invalid YAML{where}: {problem}")
        return None
    if data is None:
        log.add(shown, "file", "is empty")
    return data


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view, so a flow cannot edit shared content."""
    return MappingProxyType(dict(mapping))


def text_length(text: str) -> int:
    """Characters as users and WhatsApp count them (code points)."""
    return len(text)


def utf16_length(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (emoji count twice)."""
    return len(text.encode("utf-16-le")) // 2


class Fields:
    """The fields of one mapping in one file, with the path that leads to it."""

    def __init__(self, data: Any, file: str, path: str, log: ProblemLog) -> None:
        self.file = file
        self.path = path
        self.log = log
        self.ok = isinstance(data, dict)
        if not self.ok:
            what = "missing" if data is None else f"a {type(data).__name__}"
            log.add(file, path or "file", f"must be a mapping (found {what})")
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}

    def name(self, key: str) -> str:
        """The dotted field path of ``key``."""
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str, message: str) -> None:
        self.log.add(self.file, self.name(key), message)

    def only(self, allowed: Iterable[str]) -> None:
        """Report keys nobody reads: almost always a typo (``sources`` as ``source``)."""
        allowed_set = set(allowed)
        for key in self.data:
            if key not in allowed_set:
                self.log.add(self.file, self.name(str(key)), "unknown field")

    def present(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def child(self, key: str) -> Fields:
        return Fields(self.data.get(key), self.file, self.name(key), self.log)

    # --- scalars -----------------------------------------------------------------------
    def string(
        self, key: str, *, max_len: int | None = None, required: bool = True
    ) -> str | None:
        """A non-empty string, stripped; None (and a problem if required) otherwise."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, "is required")
            return None
        if not isinstance(value, str):
            self.problem(key, f"must be text (found {type(value).__name__})")
            return None
        value = value.strip()
        if not value:
            self.problem(key, "must not be empty")
            return None
        if max_len is not None and text_length(value) > max_len:
            self.problem(key, f"{text_length(value)} characters (limit {max_len})")
        return value

    def url(self, key: str) -> str | None:
        value = self.string(key, required=False)
        if value is not None and not URL_RE.match(value):
            self.problem(key, f"not an http(s) URL: {value!r}")
        return value

    def boolean(self, key: str, *, default: bool | None = None) -> bool:
        value = self.data.get(key)
        if value is None and default is not None:
            return default
        if value is None:
            self.problem(key, "is required (true or false)")
            return False
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false (found {value!r})")
            return False
        return value

    def integer(self, key: str, *, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        value = self.data.get(key)
        if value is None:
            self.problem(key, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"must be a whole number (found {value!r})")
            return None
        if minimum is not None and value < minimum:
            self.problem(key, f"{value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            self.problem(key, f"{value} is above the maximum {maximum}")
        return value

    def day(self, key: str) -> date | None:
        """A date written as YYYY-MM-DD (YAML parses it to a date); None if absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.problem(key, f"must be a date YYYY-MM-DD (found {value!r})")
        return None

    def choice(self, key: str, allowed: Iterable[str]) -> str | None:
        allowed_set = set(allowed)
        value = self.string(key)
        if value is not None and value not in allowed_set:
            self.problem(key, f"{value!r} is not one of {', '.join(sorted(allowed_set))}")
            return None
        return value

    # --- collections -------------------------------------------------------------------
    def items(self, key: str, *, required: bool = True) -> list[Any]:
        """A YAML list; a problem and [] if it is something else."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, "is required (a list)")
            return []
        if not isinstance(value, list):
            self.problem(key, f"must be a list (found {type(value).__name__})")
            return []
        return value

    def strings(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        """A list of non-empty strings without duplicates."""
        result: list[str] = []
        for index, item in enumerate(self.items(key, required=required)):
            if not isinstance(item, str) or not item.strip():
                self.log.add(self.file, f"{self.name(key)}[{index}]", "must be non-empty text")
                continue
            item = item.strip()
            if item in result:
                self.log.add(self.file, f"{self.name(key)}[{index}]", f"duplicate {item!r}")
                continue
            result.append(item)
        return tuple(result)

    def translations(self, key: str, *, max_len: int | None = None,
                     required: bool = True) -> Mapping[str, str] | None:
        """``{ar: ..., en: ..., fr: ...}``: non-empty in every complete language; a
        progressive language without a text gets its fallback's (``bot.languages``)."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, f"is required (text in {', '.join(REQUIRED_LANGUAGES)})")
            return None
        sub = self.child(key)
        if not sub.ok:
            return None
        sub.only(LANGUAGES)
        texts: dict[str, str] = {}
        for lang in LANGUAGES:
            if lang not in REQUIRED_LANGUAGES and sub.data.get(lang) is None:
                continue
            text = sub.string(lang, max_len=max_len)
            if text is not None:
                texts[lang] = text
        if any(lang not in texts for lang in REQUIRED_LANGUAGES):
            return None
        return frozen(DECLARED_LANGUAGES.with_fallbacks(texts))
