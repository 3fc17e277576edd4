"""Parsing of source citations, shared by modules, services and the screening.

The rule is the same everywhere: a source has a title and can be found again, through a URL
or at least a publisher (the Arabic news seeds have no URL; they carry ``url: null``, a
``publisher`` and a ``note``).
"""

from __future__ import annotations

from typing import Any

from ._fields import Fields
from .limits import SOURCE_ID_RE
from .models import ProblemLog, Source

SOURCE_FIELDS = ("id", "title", "publisher", "url", "note")


def parse_source(data: Any, file: str, path: str, log: ProblemLog, *,
                 need_id: bool = True) -> Source | None:
    """One ``{id, title, publisher, url, note}`` mapping; None if it is unusable."""
    fields = Fields(data, file, path, log)
    if not fields.ok:
        return None
    fields.only(SOURCE_FIELDS)
    source_id = ""
    if need_id:
        source_id = fields.string("id") or ""
        if source_id and not SOURCE_ID_RE.match(source_id):
            fields.problem("id", f"{source_id!r} must be lower-case letters, digits and _")
    title = fields.string("title")
    publisher = fields.string("publisher", required=False)
    url = fields.url("url")
    fields.string("note", required=False)
    if url is None and publisher is None:
        fields.problem("url", "a source needs a url or, failing that, a publisher")
    if title is None or (need_id and not source_id):
        return None
    return Source(id=source_id, title=title, publisher=publisher, url=url)


def parse_sources(fields: Fields, key: str, *, minimum: int = 1) -> tuple[Source, ...]:
    """A list of sources with unique ids; at least ``minimum`` usable ones."""
    result: list[Source] = []
    seen: set[str] = set()
    items = fields.items(key)
    for index, item in enumerate(items):
        source = parse_source(item, fields.file, f"{fields.name(key)}[{index}]", fields.log)
        if source is None:
            continue
        if source.id in seen:
            fields.log.add(fields.file, f"{fields.name(key)}[{index}].id",
                           f"duplicate source id {source.id!r}")
            continue
        seen.add(source.id)
        result.append(source)
    if len(result) < minimum and fields.present(key) and isinstance(fields.raw(key), list):
        fields.problem(key, f"needs at least {minimum} source(s) with a title and a url "
                            "or publisher")
    return tuple(result)
