"""The opt-in choices (``content/subscribe.yml``): topics, governorates and age bands.

Their ids are what outreach segments filter on (``topics has jobs``, ``governorate=giza``,
``age_band=18_24``), so they are checked here against the same vocabularies: a typo would
otherwise store a value no campaign can ever target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._fields import Fields, display_path, read_yaml
from .limits import SERVICE_AREAS, WHATSAPP_REPLY_BUTTON_MAX
from .models import ProblemLog

TOPIC_ID_MAX = 32
SHORTLIST_MAX = 8
"""Shortlisted governorates plus "skip" must fit one WhatsApp list (10 rows, leaving room)."""


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    modules: tuple[str, ...]
    title: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Governorate:
    id: str
    name: Mapping[str, str]
    aliases: tuple[str, ...] = ()
    shortlist: bool = False


@dataclass(frozen=True, slots=True)
class SubscribeSpec:
    topics: tuple[Topic, ...]
    governorates: tuple[Governorate, ...]
    age_bands: tuple[str, ...]


def load_subscribe(root: Path, log: ProblemLog, module_ids: frozenset[str],
                   age_option_ids: frozenset[str]) -> SubscribeSpec:
    """Parse and check the file; problems go to ``log`` (an empty spec when unusable)."""
    path = root / "subscribe.yml"
    shown = display_path(path, root)
    empty = SubscribeSpec((), (), ())
    if not path.is_file():
        log.add(shown, "file", "is missing")
        return empty
    data = read_yaml(path, shown, log)
    top = Fields(data, shown, "", log)
    if data is None or not top.ok:
        return empty
    top.only(("topics", "governorates", "age_bands"))
    topics = _topics(top, module_ids)
    governorates = _governorates(top)
    age_bands = top.strings("age_bands")
    for index, band in enumerate(age_bands):
        if band not in age_option_ids:
            log.add(shown, f"age_bands[{index}]",
                    f"{band!r} is not an age option of content/screening.yml")
    return SubscribeSpec(topics, governorates, age_bands)


def _topics(top: Fields, module_ids: frozenset[str]) -> tuple[Topic, ...]:
    result: list[Topic] = []
    for index, item in enumerate(top.items("topics")):
        fields = Fields(item, top.file, f"topics[{index}]", top.log)
        fields.only(("id", "modules", "title"))
        topic_id = fields.string("id", max_len=TOPIC_ID_MAX)
        if topic_id is not None and (not topic_id.isidentifier() or topic_id != topic_id.lower()):
            fields.problem("id", f"{topic_id!r} must be lower-case letters, digits and '_'")
            topic_id = None
        if topic_id is not None and any(t.id == topic_id for t in result):
            fields.problem("id", f"duplicate topic {topic_id!r}")
            topic_id = None
        modules = fields.strings("modules")
        for position, module_id in enumerate(modules):
            if module_ids and module_id not in module_ids:
                top.log.add(top.file, f"{fields.path}.modules[{position}]",
                            f"unknown awareness module {module_id!r}")
        title = fields.translations("title", max_len=WHATSAPP_REPLY_BUTTON_MAX)
        if topic_id is not None and title is not None:
            result.append(Topic(topic_id, modules, title))
    return tuple(result)


def _governorates(top: Fields) -> tuple[Governorate, ...]:
    result: list[Governorate] = []
    for index, item in enumerate(top.items("governorates")):
        fields = Fields(item, top.file, f"governorates[{index}]", top.log)
        fields.only(("id", "name", "aliases", "shortlist"))
        area = fields.choice("id", SERVICE_AREAS - {"national"})
        name = fields.translations("name", max_len=WHATSAPP_REPLY_BUTTON_MAX)
        aliases = fields.strings("aliases", required=False)
        shortlist = fields.boolean("shortlist", default=False)
        if area is not None and any(g.id == area for g in result):
            fields.problem("id", f"duplicate governorate {area!r}")
        elif area is not None and name is not None:
            result.append(Governorate(area, name, aliases, shortlist))
    if sum(g.shortlist for g in result) > SHORTLIST_MAX:
        top.problem("governorates", f"at most {SHORTLIST_MAX} may have shortlist: true")
    return tuple(result)
