"""Parsing and validation of the referral directory (``content/services.yml``).

A wrong hotline number given to someone in danger is worse than none. So a service may only
be ``verified: true`` with a source somebody actually checked, the date it was checked, and a
way to reach it (a phone number, a URL, or a referral pathway); unverified entries are kept
in the file for the next reviewer but never returned by ``ContentLibrary.services()``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ._fields import Fields, display_path, read_yaml
from .limits import (
    PHONE_RE,
    SERVICE_AREAS,
    SERVICE_CATEGORIES,
    SERVICE_CHANNELS,
    SERVICE_HELPS_WITH_MAX,
    SERVICE_ID_RE,
)
from .models import ProblemLog, Service
from .sources import parse_source

SERVICE_FIELDS = (
    "id", "name", "provider", "helps_with", "categories", "phone", "url", "hours",
    "channel", "area", "verified", "verified_on", "source", "note",
)


def load_services(root: Path, log: ProblemLog) -> tuple[Service, ...]:
    """All services in file order (verified or not); problems go to ``log``."""
    path = root / "services.yml"
    shown = display_path(path, root)
    if not path.is_file():
        log.add(shown, "file", "is missing")
        return ()
    data = read_yaml(path, shown, log)
    if data is None:
        return ()
    return parse_services(data, shown, log)


def parse_services(data: Any, shown: str, log: ProblemLog) -> tuple[Service, ...]:
    """Check the directory's parsed YAML; also used for approved revisions."""
    top = Fields(data, shown, "", log)
    if not top.ok:
        return ()
    top.only(("services",))
    result: list[Service] = []
    seen: set[str] = set()
    for index, item in enumerate(top.items("services")):
        service = _service(item, shown, f"services[{index}]", log)
        if service is None:
            continue
        if service.id in seen:
            log.add(shown, f"services[{index}].id", f"duplicate service id {service.id!r}")
            continue
        seen.add(service.id)
        result.append(service)
    return tuple(result)


def _service(data: Any, file: str, path: str, log: ProblemLog) -> Service | None:
    fields = Fields(data, file, path, log)
    if not fields.ok:
        return None
    fields.only(SERVICE_FIELDS)
    service_id = fields.string("id")
    if service_id is not None and not SERVICE_ID_RE.match(service_id):
        fields.problem("id", f"{service_id!r} must be lower-case letters, digits and _")
    name = fields.translations("name")
    provider = fields.translations("provider")
    helps_with = fields.translations("helps_with", max_len=SERVICE_HELPS_WITH_MAX)

    categories = fields.strings("categories")
    if fields.present("categories") and not categories:
        fields.problem("categories", "needs at least one category")
    for index, category in enumerate(categories):
        if category not in SERVICE_CATEGORIES:
            log.add(file, f"{path}.categories[{index}]", f"unknown category {category!r}")

    phone = _phone(fields)
    url = fields.url("url")
    hours = fields.translations("hours", required=False)
    channel = fields.choice("channel", SERVICE_CHANNELS)
    area = fields.choice("area", SERVICE_AREAS)
    if channel == "phone" and phone is None:
        fields.problem("phone", "channel is phone but no verified phone number is given")
    fields.string("note", required=False)

    verified = fields.boolean("verified")
    verified_on = fields.day("verified_on")
    source = parse_source(fields.raw("source"), file, fields.name("source"), log,
                          need_id=False)
    if verified:
        if verified_on is None:
            fields.problem("verified_on", "a verified service needs the date it was checked")
        if phone is None and url is None and channel != "referral":
            fields.problem("verified", "a verified service needs a phone, a url, or "
                                       "channel: referral")

    if None in (service_id, name, provider, helps_with, channel, area, source):
        return None
    assert service_id is not None and name is not None and provider is not None
    assert helps_with is not None and channel is not None and area is not None
    assert source is not None
    return Service(
        id=service_id, name=name, provider=provider, helps_with=helps_with,
        categories=categories, phone=phone, url=url, hours=hours, channel=channel,
        area=area, verified=verified, verified_on=verified_on,
        source=replace(source, id=service_id),
    )


def _phone(fields: Fields) -> str | None:
    """Digits only, written as a quoted string (a YAML number would drop leading zeros)."""
    value = fields.raw("phone")
    if value is None:
        return None
    if not isinstance(value, str):
        fields.problem("phone", f"must be a quoted string of digits (found {value!r})")
        return None
    if not PHONE_RE.match(value):
        fields.problem("phone", f"{value!r} must be digits only (no spaces, + or -)")
        return None
    return value
