"""``content/partners.yml`` in the content check: partners that can receive referrals.

The back office reads this file (``handoff.referrals.directory``) and stops at the first
error when it starts. The content check lists every problem beforehand, with file and field,
like the rest of ``content/``: a partner may only deliver services that exist in
``services.yml`` *and* are verified (a referral names one of them), serve known areas and
cite a source. A contact marked unverified must not carry a number or an address: nobody
may be sent to a desk that no one has checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ._fields import Fields, display_path, read_yaml
from .limits import SERVICE_AREAS, SERVICE_ID_RE
from .models import ProblemLog, Service
from .sources import parse_source

PARTNER_FIELDS = ("id", "name", "kind", "child_protection", "services", "governorates",
                  "contact", "source", "note")
PARTNER_KINDS = frozenset({"government", "national_society", "un_agency", "ngo", "other"})
CONTACT_FIELDS = ("verified", "phone", "email", "url", "address", "note")
UNVERIFIED_FORBIDDEN = ("phone", "email", "address")


def check_partners(root: Path, services: Iterable[Service], log: ProblemLog) -> None:
    """Report every problem in ``partners.yml`` (an absent file is fine: no referrals)."""
    path = root / "partners.yml"
    if not path.is_file():
        return
    shown = display_path(path, root)
    data = read_yaml(path, shown, log)
    if data is None:
        return
    top = Fields(data, shown, "", log)
    if not top.ok:
        return
    top.only(("partners",))
    known = {s.id: s for s in services}
    seen: set[str] = set()
    for index, item in enumerate(top.items("partners")):
        partner_id = _partner(Fields(item, shown, f"partners[{index}]", log), known)
        if partner_id is None:
            continue
        if partner_id in seen:
            log.add(shown, f"partners[{index}].id", f"duplicate partner id {partner_id!r}")
        seen.add(partner_id)


def _partner(fields: Fields, services: dict[str, Service]) -> str | None:
    if not fields.ok:
        return None
    fields.only(PARTNER_FIELDS)
    partner_id = fields.string("id")
    if partner_id is not None and not SERVICE_ID_RE.match(partner_id):
        fields.problem("id", f"{partner_id!r} must be lower-case letters, digits and _")
    fields.translations("name")
    if fields.present("kind"):
        fields.choice("kind", PARTNER_KINDS)
    fields.boolean("child_protection", default=False)
    fields.string("note", required=False)

    offered = fields.strings("services")
    if fields.present("services") and not offered:
        fields.problem("services", "needs at least one service of services.yml")
    for index, service_id in enumerate(offered):
        service = services.get(service_id)
        where = f"services[{index}]"
        if service is None:
            fields.problem(where, f"unknown service {service_id!r} (not in services.yml)")
        elif not service.verified:
            fields.problem(where, f"service {service_id!r} is not verified in services.yml")

    areas = fields.strings("governorates")
    if fields.present("governorates") and not areas:
        fields.problem("governorates", "needs at least one area (national = all of Egypt)")
    for index, area in enumerate(areas):
        if area not in SERVICE_AREAS:
            fields.problem(f"governorates[{index}]", f"unknown area {area!r}")

    contact = fields.child("contact")
    if contact.ok:
        contact.only(CONTACT_FIELDS)
        if not contact.boolean("verified"):
            for key in UNVERIFIED_FORBIDDEN:
                if contact.present(key):
                    contact.problem(key, "an unverified contact must not give a number "
                                         "or an address")

    if not fields.present("source"):
        fields.problem("source", "is required (title, and a url or a publisher)")
    else:
        parse_source(fields.raw("source"), fields.file, fields.name("source"), fields.log,
                     need_id=False)
    return partner_id
