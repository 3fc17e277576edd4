"""Partner organisations as data: ``content/partners.yml``, validated against the verified
services of ``content/services.yml`` and the service areas."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.content import ContentLibrary
from bot.content.limits import SERVICE_AREAS
from bot.content.loader import default_content_root
from bot.languages import LANGUAGES


class DirectoryError(ValueError):
    """``partners.yml`` is malformed or names something that does not exist."""


@dataclass(frozen=True)
class Partner:
    id: str
    name: Mapping[str, str]
    kind: str
    child_protection: bool
    services: tuple[str, ...]
    governorates: tuple[str, ...]
    contact_verified: bool
    source_title: str
    source_url: str | None

    def name_in(self, lang: str) -> str:
        return self.name.get(lang) or self.name["en"]

    def serves(self, governorate: str | None) -> bool:
        return "national" in self.governorates or governorate in self.governorates


@dataclass(frozen=True)
class PartnerDirectory:
    partners: tuple[Partner, ...]

    def get(self, partner_id: str) -> Partner | None:
        return next((p for p in self.partners if p.id == partner_id), None)

    def offering(self, service_id: str) -> tuple[Partner, ...]:
        return tuple(p for p in self.partners if service_id in p.services)

    @classmethod
    def load(cls, content: ContentLibrary, path: Path | None = None) -> PartnerDirectory:
        path = path or default_content_root() / "partners.yml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entries = raw.get("partners") if isinstance(raw, dict) else None
        if not isinstance(entries, list):
            raise DirectoryError(f"{path}: expected a 'partners' list")
        partners = [_partner(entry, content) for entry in entries]
        ids = [p.id for p in partners]
        if len(ids) != len(set(ids)):
            raise DirectoryError(f"{path}: duplicate partner ids")
        return cls(tuple(partners))


def _partner(entry: Any, content: ContentLibrary) -> Partner:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        raise DirectoryError("every partner needs an id")
    pid = entry["id"]
    name = entry.get("name") or {}
    if not all(isinstance(name.get(lang), str) and name[lang] for lang in LANGUAGES.complete):
        raise DirectoryError(f"{pid}: name needs ar, en and fr")
    services = tuple(entry.get("services") or ())
    for service_id in services:
        if content.configured_service(service_id) is None:  # approved or not (a check)
            raise DirectoryError(f"{pid}: {service_id!r} is not a verified service")
    if not services:
        raise DirectoryError(f"{pid}: needs at least one service")
    areas = tuple(entry.get("governorates") or ())
    unknown = [a for a in areas if a not in SERVICE_AREAS]
    if not areas or unknown:
        raise DirectoryError(f"{pid}: governorates must be service areas ({unknown})")
    source = entry.get("source") or {}
    if not source.get("title"):
        raise DirectoryError(f"{pid}: needs a source")
    contact = entry.get("contact") or {}
    return Partner(
        id=pid, name=dict(name), kind=str(entry.get("kind") or "other"),
        child_protection=bool(entry.get("child_protection")), services=services,
        governorates=areas, contact_verified=bool(contact.get("verified")),
        source_title=str(source["title"]), source_url=source.get("url"),
    )
