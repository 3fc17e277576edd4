"""What production serves: only content a reviewer approved, by hash.

The rule (docs/content-review.md):

* an awareness module in one language is served as it is in ``content/`` when that exact
  version is approved; when its YAML changed since, the last approved version is served
  (frozen) until someone reviews the change; a module never approved is hidden;
* the screening questionnaire and the services directory are single files shared by every
  language: the newest version (the file now, else an approved revision) that is approved in
  *every* language is served; if there is none, the questionnaire is not offered and, of
  the services, only the verified emergency numbers (every service of category ``emergency``,
  in file order: ambulance, the victims' hotlines, UNHCR, police) are listed: a person in
  danger must never get an empty answer while the directory awaits review.

An approved revision that no longer passes today's checks is skipped (an older one, or
nothing, is served instead) and named in ``Served.notes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .limits import LANGUAGES
from .models import Module, ProblemLog, ScreeningSpec, Service
from .modules import parse_module
from .review import FILE_ITEMS, Approvals, Item, Review, canonical, content_hash
from .screening import parse_screening
from .services import parse_services

EMERGENCY_CATEGORY = "emergency"


@dataclass(frozen=True)
class Served:
    """The production view of the library, rebuilt whenever approvals change."""

    modules: Mapping[str, tuple[Module, ...]]
    screening: ScreeningSpec | None
    services: tuple[Service, ...]
    hidden: tuple[str, ...]
    """Items not served at all, e.g. ``module check_job_offer (fr): never approved``."""
    frozen: tuple[str, ...]
    """Items served at an older approved version because their YAML changed since."""
    notes: tuple[str, ...] = ()


def _module(review: Review, module_id: str, lang: str) -> Module | None:
    log = ProblemLog()
    module = parse_module(review.snapshot, f"approved {module_id} ({lang})", module_id, lang,
                          log)
    return module if module is not None and not log.problems else None


def _modules(current: Mapping[str, tuple[Module, ...]], items: Mapping[tuple[str, str, str], Item],
             approvals: Approvals, hidden: list[str], frozen: list[str],
             notes: list[str]) -> Mapping[str, tuple[Module, ...]]:
    served: dict[str, tuple[Module, ...]] = {}
    for lang in LANGUAGES:
        chosen: list[Module] = []
        for module in current.get(lang, ()):
            key = ("module", module.id, lang)
            item = items.get(key)
            if item is not None and approvals.is_approved(key, item.digest):
                chosen.append(module)
                continue
            standing = approvals.approved(key)
            old = next((m for m in (_module(r, module.id, lang) for r in standing) if m), None)
            if old is not None:
                chosen.append(old)
                frozen.append(f"module {module.id} ({lang}): YAML changed since approval, "
                              f"serving the version approved by {standing[0].reviewer}")
            else:
                if standing:
                    notes.append(f"module {module.id} ({lang}): the approved version no "
                                 "longer passes the content checks")
                hidden.append(f"module {module.id} ({lang}): "
                              f"{'changed since approval' if standing else 'never approved'}")
        served[lang] = tuple(sorted(chosen, key=lambda m: (m.order, m.id)))
    return MappingProxyType(served)


def _candidates(kind: str, current: Any, approvals: Approvals) -> list[tuple[bool, Any]]:
    """The file now, then every approved revision, newest first, without repeats."""
    found: list[tuple[bool, Any]] = [(True, current)] if current is not None else []
    seen = {canonical(current)} if current is not None else set()
    revisions = sorted((r for lang in LANGUAGES for r in approvals.approved((kind, kind, lang))),
                       key=lambda r: r.at, reverse=True)
    for review in revisions:
        text = canonical(review.snapshot)
        if text not in seen:
            seen.add(text)
            found.append((False, review.snapshot))
    return found


def _approved_everywhere(kind: str, data: Any, approvals: Approvals) -> bool:
    return all(approvals.is_approved((kind, kind, lang), content_hash(kind, data, lang))
               for lang in LANGUAGES)


def _missing(kind: str, data: Any, approvals: Approvals) -> list[str]:
    return [lang for lang in LANGUAGES
            if data is None
            or not approvals.is_approved((kind, kind, lang), content_hash(kind, data, lang))]


def serve(modules: Mapping[str, tuple[Module, ...]], screening: ScreeningSpec,
          services: tuple[Service, ...], items: list[Item], approvals: Approvals) -> Served:
    """Choose what production serves from the current content and the approvals."""
    by_key = {item.key: item for item in items}
    hidden: list[str] = []
    frozen: list[str] = []
    notes: list[str] = []
    served_modules = _modules(modules, by_key, approvals, hidden, frozen, notes)

    data = {kind: by_key[(kind, kind, LANGUAGES[0])].data if (kind, kind, LANGUAGES[0]) in by_key
            else None for kind in FILE_ITEMS}

    served_services: tuple[Service, ...] | None = None
    for is_current, candidate in _candidates("services", data["services"], approvals):
        if not _approved_everywhere("services", candidate, approvals):
            continue
        if is_current:
            served_services = services
            break
        log = ProblemLog()
        parsed = parse_services(candidate, "approved services.yml", log)
        if not log.problems:
            served_services = parsed
            frozen.append("services directory: services.yml changed since approval, serving "
                          "the approved version")
            break
        notes.append("services directory: an approved version no longer passes the checks")
    if served_services is None:
        missing = ", ".join(_missing("services", data["services"], approvals))
        hidden.append(f"services directory: not approved in {missing} (only the verified "
                      "emergency numbers are listed)")
        served_services = tuple(s for s in services
                                if s.verified and EMERGENCY_CATEGORY in s.categories)

    shown_services = served_services
    service_ids = frozenset(s.id for s in (*services, *shown_services))
    verified_ids = frozenset(s.id for s in (*services, *shown_services) if s.verified)
    served_screening: ScreeningSpec | None = None
    for is_current, candidate in _candidates("screening", data["screening"], approvals):
        if not _approved_everywhere("screening", candidate, approvals):
            continue
        if is_current:
            served_screening = screening
            break
        log = ProblemLog()
        spec = parse_screening(candidate, "approved screening.yml", log, service_ids,
                               verified_ids)
        if spec is not None and not log.problems:
            served_screening = spec
            frozen.append("screening questionnaire: screening.yml changed since approval, "
                          "serving the approved version")
            break
        notes.append("screening questionnaire: an approved version no longer passes the checks")
    if served_screening is None:
        missing = ", ".join(_missing("screening", data["screening"], approvals))
        hidden.append(f"screening questionnaire: not approved in {missing}")

    return Served(modules=served_modules, screening=served_screening,
                  services=shown_services, hidden=tuple(hidden), frozen=tuple(frozen),
                  notes=tuple(notes))
