"""Console interface text and canned replies, loaded from YAML next to this module.

Text is data: translators edit ``console_text.yml`` and ``canned_replies.yml``, never Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.languages import LANGUAGES

HERE = Path(__file__).resolve().parent
CONSOLE_LANGUAGES = LANGUAGES.codes
"""Languages the console is offered in (the first is the default), from ``bot.languages``."""
REPLY_LANGUAGES = LANGUAGES.codes
REQUIRED_LANGUAGES = LANGUAGES.complete
"""A canned reply or console key must exist in these; a progressive language falls back."""
RTL_LANGUAGES = LANGUAGES.rtl


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _flatten(prefix: str, node: Any, out: dict[str, str]) -> None:
    if not isinstance(node, Mapping):
        if not isinstance(node, str):
            raise ValueError(f"{prefix}: expected text, got {type(node).__name__} (quote it?)")
        out[prefix] = node
        return
    for key, value in node.items():
        if not isinstance(key, str):
            raise ValueError(f"{prefix}: key {key!r} is not text (quote it)")
        _flatten(f"{prefix}.{key}" if prefix else key, value, out)


@dataclass(frozen=True)
class ConsoleText:
    """UI strings by language then dotted key (``queue.title``)."""

    texts: Mapping[str, Mapping[str, str]]

    @classmethod
    def load(cls, path: Path | None = None) -> ConsoleText:
        data = _read(path or HERE / "console_text.yml") or {}
        texts: dict[str, dict[str, str]] = {}
        for lang in CONSOLE_LANGUAGES:
            flat: dict[str, str] = {}
            _flatten("", data.get(lang) or {}, flat)
            texts[lang] = flat
        return cls(texts)

    def problems(self) -> list[str]:
        """Keys present in one language and missing in another."""
        every = set().union(*(set(t) for t in self.texts.values()))
        return sorted(f"{lang}: missing {key}" for lang, table in self.texts.items()
                      if lang in REQUIRED_LANGUAGES for key in every - set(table))

    def t(self, lang: str, key: str, **values: Any) -> str:
        """The text in ``lang``, else in its fallbacks (``bot.languages``), else the key."""
        text = next((self.texts[code][key] for code in LANGUAGES.chain(lang)
                     if self.texts.get(code, {}).get(key)), key)
        return text.format(**values) if values else text

    def label(self, lang: str, group: str, code: str | None) -> str:
        """A fixed code's display name (``priority``/``urgent``); unknown codes show as-is."""
        if not code:
            return self.t(lang, "case.none")
        return next((self.texts[lang_code][f"{group}.{code}"]
                     for lang_code in LANGUAGES.chain(lang)
                     if self.texts.get(lang_code, {}).get(f"{group}.{code}")), code)


@dataclass(frozen=True)
class CannedReply:
    id: str
    title: Mapping[str, str]
    text: Mapping[str, str]

    def text_for(self, lang: str) -> str:
        return next(self.text[code] for code in (*LANGUAGES.chain(lang), "en")
                    if self.text.get(code))


def load_canned_replies(path: Path | None = None) -> tuple[CannedReply, ...]:
    """Canned replies, validated: unique ids, a title per console language, a text per reply
    language. A broken file fails at start-up, not when a caseworker picks a reply."""
    data = _read(path or HERE / "canned_replies.yml") or {}
    replies: list[CannedReply] = []
    for index, item in enumerate(data.get("replies") or []):
        reply_id = str(item.get("id") or "")
        title, text = item.get("title") or {}, item.get("text") or {}
        missing = [f"title.{lang}" for lang in REQUIRED_LANGUAGES if not title.get(lang)]
        missing += [f"text.{lang}" for lang in REQUIRED_LANGUAGES if not text.get(lang)]
        if not reply_id or missing:
            raise ValueError(f"canned reply #{index} ({reply_id or 'no id'}): "
                             f"missing {', '.join(missing) or 'id'}")
        if any(r.id == reply_id for r in replies):
            raise ValueError(f"canned reply id {reply_id!r} is duplicated")
        replies.append(CannedReply(reply_id, dict(title), dict(text)))
    return tuple(replies)
