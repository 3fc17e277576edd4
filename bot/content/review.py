"""What a reviewer approves: content items per language, their hashes, and approval state.

An *item* is one awareness module in one language, or the screening questionnaire or the
services directory seen in one language. Its hash is the SHA-256 of the canonical JSON of the
parsed YAML (key order, comments and layout do not count), without the obsolete review
bookkeeping fields (``reviewed``, ``reviewer``). For the two multilingual files the hash covers
every language-neutral field (weights, thresholds, phone numbers) plus that language's texts,
so changing a weight withdraws every language's approval and fixing a French typo only the
French one.

Approvals themselves are stored by ``bot.content.review_store``; this module is pure so that
the library, the console and the command line all compute the same answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ._fields import display_path, read_yaml
from .limits import LANGUAGES
from .models import ProblemLog
from .modules import module_files

KINDS = ("module", "screening", "services")
#: Item ids of the two single-file kinds (a module's item id is its module id).
FILE_ITEMS = {"screening": "screening.yml", "services": "services.yml"}
BOOKKEEPING = frozenset({"reviewed", "reviewer"})
"""YAML fields from before the console workflow; never part of what is approved."""

APPROVED, STALE, NEVER = "approved", "stale", "never"
STATUSES = (APPROVED, STALE, NEVER)
DECISIONS = ("approved", "changes_requested")


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot hash a {type(value).__name__}")


def canonical(data: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, dates as ISO text."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=_plain)


def plain(data: Any) -> Any:
    """The data as JSON would give it back (dates become text), in the file's key order
    (so a diff reads like the file): what a snapshot stores."""
    return json.loads(stored(data))


def stored(data: Any) -> str:
    """JSON text of a snapshot, keys in the file's order."""
    return json.dumps(data, ensure_ascii=False, default=_plain)


def _is_translation(node: Mapping[Any, Any]) -> bool:
    return bool(node) and all(key in LANGUAGES for key in node)


def project(data: Any, lang: str) -> Any:
    """The data as one language sees it: every ``{ar, en, fr}`` mapping keeps only ``lang``."""
    if isinstance(data, Mapping):
        if _is_translation(data):
            return {lang: data.get(lang)}
        return {k: project(v, lang) for k, v in data.items()}
    if isinstance(data, list):
        return [project(v, lang) for v in data]
    return data


def reviewable(kind: str, data: Any, lang: str) -> Any:
    """What a reviewer of ``lang`` approves for this item (JSON-plain)."""
    if isinstance(data, Mapping) and kind == "module":
        data = {k: v for k, v in data.items() if k not in BOOKKEEPING}
    elif kind != "module":
        data = project(data, lang)
    return plain(data)


def content_hash(kind: str, data: Any, lang: str) -> str:
    """The stable SHA-256 (hex) of the item as ``lang`` sees it."""
    return hashlib.sha256(canonical(reviewable(kind, data, lang)).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Item:
    """One reviewable item as it is in ``content/`` now."""

    kind: str
    item_id: str
    lang: str
    file: str
    data: Any  # the whole parsed file (JSON-plain): what an approval snapshots
    digest: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.item_id, self.lang)


def current_items(root: Path) -> list[Item]:
    """Every item of a content directory, modules first (by language, then id); files too
    broken to parse are left out (the checker reports them)."""
    log = ProblemLog()
    items: list[Item] = []
    for lang in LANGUAGES:
        for path in module_files(root, lang):
            if path.suffix != ".yml":
                continue
            data = read_yaml(path, display_path(path, root), log)
            if isinstance(data, Mapping):
                stored = plain(data)
                items.append(Item("module", path.stem, lang, display_path(path, root), stored,
                                  content_hash("module", stored, lang)))
    for kind, name in FILE_ITEMS.items():
        path = root / name
        if not path.is_file():
            continue
        data = read_yaml(path, display_path(path, root), log)
        if isinstance(data, Mapping):
            stored = plain(data)
            items.extend(Item(kind, kind, lang, display_path(path, root), stored,
                              content_hash(kind, stored, lang)) for lang in LANGUAGES)
    return items


@dataclass(frozen=True, slots=True)
class Review:
    """One decision on one item version (a row of ``content_reviews``)."""

    kind: str
    item_id: str
    lang: str
    digest: str
    decision: str  # approved | changes_requested
    reviewer: str
    comment: str
    at: datetime
    snapshot: Any = None  # the whole file as approved (approvals only)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.item_id, self.lang)


@dataclass(frozen=True)
class Approvals:
    """Every review decision, newest first; answers "what is approved" without a database."""

    reviews: tuple[Review, ...] = ()
    _valid: Mapping[tuple[str, str, str], tuple[Review, ...]] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.reviews, key=lambda r: r.at, reverse=True))
        object.__setattr__(self, "reviews", ordered)
        latest: dict[tuple[str, str, str, str], str] = {}
        for review in ordered:  # the newest decision on a version is the one that counts
            latest.setdefault((*review.key, review.digest), review.decision)
        valid: dict[tuple[str, str, str], list[Review]] = {}
        for review in ordered:
            if review.decision == "approved" and latest[(*review.key, review.digest)] == \
                    "approved":
                valid.setdefault(review.key, []).append(review)
        object.__setattr__(self, "_valid", {k: tuple(v) for k, v in valid.items()})

    def approved(self, key: tuple[str, str, str]) -> tuple[Review, ...]:
        """Standing approvals of an item, newest first (a version whose approval was
        followed by a request for changes is not standing)."""
        return self._valid.get(key, ())

    def is_approved(self, key: tuple[str, str, str], digest: str) -> bool:
        return any(r.digest == digest for r in self.approved(key))

    def last_approved(self, key: tuple[str, str, str]) -> Review | None:
        found = self.approved(key)
        return found[0] if found else None

    def history(self, key: tuple[str, str, str]) -> tuple[Review, ...]:
        return tuple(r for r in self.reviews if r.key == key)


@dataclass(frozen=True, slots=True)
class ItemStatus:
    """One line of ``sanad content status`` and of the console's list."""

    item: Item
    status: str  # approved | stale | never
    last: Review | None  # the newest standing approval
    changes_requested: bool  # the newest decision on the current version asks for changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.item.kind, "id": self.item.item_id, "lang": self.item.lang,
            "status": self.status, "hash": self.item.digest,
            "approved_hash": self.last.digest if self.last else None,
            "approved_by": self.last.reviewer if self.last else None,
            "approved_at": self.last.at.isoformat() if self.last else None,
            "changes_requested": self.changes_requested,
        }


def statuses(items: Iterable[Item], approvals: Approvals) -> list[ItemStatus]:
    """Approved (this exact version), stale (an older version is approved) or never."""
    result: list[ItemStatus] = []
    for item in items:
        last = approvals.last_approved(item.key)
        if approvals.is_approved(item.key, item.digest):
            status = APPROVED
        else:
            status = STALE if last is not None else NEVER
        newest = next((r for r in approvals.history(item.key) if r.digest == item.digest), None)
        result.append(ItemStatus(item, status, last,
                                 newest is not None and newest.decision == "changes_requested"))
    return result
