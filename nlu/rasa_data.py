"""Read Rasa 3 NLU YAML (training and held-out files) and JSON-lines evaluation files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import orjson

from nlu import yamlio

_ENTITY_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled message. `intent` is None for language-id-only rows."""

    text: str
    intent: str | None
    variety: str | None = None
    lang: str | None = None


def _block_examples(block: str) -> list[str]:
    out = []
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("- "):
            text = _ENTITY_ANNOTATION.sub(r"\1", line[2:].strip())
            if text:
                out.append(text)
    return out


def read_rasa_yaml(path: Path) -> list[Example]:
    """Intent examples of a Rasa 3 `nlu:` file; `metadata.variety` of a block is kept."""
    doc = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
    examples: list[Example] = []
    for item in doc.get("nlu") or []:
        if not isinstance(item, dict) or "intent" not in item:
            continue  # synonyms, regexes, lookups
        meta = item.get("metadata") or {}
        variety = meta.get("variety") if isinstance(meta, dict) else None
        lang = meta.get("lang") if isinstance(meta, dict) else None
        for text in _block_examples(str(item.get("examples") or "")):
            examples.append(Example(text, str(item["intent"]), variety, lang))
    return examples


def read_jsonl(path: Path) -> list[Example]:
    """Rows `{"text", "intent"[, "variety"][, "lang"]}`; blank lines are skipped."""
    examples = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            text = row["text"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path.name}:{n}: not a JSON object with a 'text' field") from exc
        examples.append(Example(str(text), row.get("intent"), row.get("variety"), row.get("lang")))
    return examples


def read_examples(path: Path) -> list[Example]:
    """Dispatch on the suffix: .jsonl/.json -> JSON lines, anything else -> Rasa YAML."""
    if path.suffix.lower() in {".jsonl", ".json", ".ndjson"}:
        return read_jsonl(path)
    return read_rasa_yaml(path)


def training_files(project_dir: Path) -> list[Path]:
    """The Rasa NLU data files of a project (`data/**/*.yml|yaml`), in a stable order."""
    data = project_dir / "data"
    return sorted(p for p in data.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())
