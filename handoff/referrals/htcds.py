"""A referral in a JSON shape aligned with the Human Trafficking Case Data Standard (HTCDS,
github.com/UNMigration/HTCDS, "HTCDS Field Reference"): the ``org_``, ``vic_`` and ``cas_``
field names where one fits, nothing that the person did not agree to share.

Deliberately left out (docs/referrals.md): every ``prs_`` identity field (names, birthdate,
phones, addresses: Sanad never holds them, and the ``contact`` the person agreed to share
stays free text under ``sanad.contact``), perpetrator and historic-event tables, caseworker
names (``cas_ReferringPrimaryCaseWorker``), and the chat thread.
"""

from __future__ import annotations

from typing import Any

from handoff.referrals import states
from handoff.referrals.directory import Partner

VERSION = "sanad-htcds-1"
CONTROL_METHODS = {
    "documents_retained": "WithholdsDocuments",
    "recruitment_debt": "DebtBondage",
    "wages_withheld": "TakesEarnings",
    "excessive_hours": "ExcessiveWorkingHours",
    "not_free_to_leave": "RestrictsMovement",
    "violence_threats": "Threats",
    "deceived_job": "FalsePromises",
}
"""Screening indicator ids -> HTCDS ``vic_MethodsOfControl`` values; others stay under
``sanad.indicators``."""
ORG_TYPES = {"government": "CentralGovernmentOrganisation", "un_agency": "NGO",
             "national_society": "NGO", "ngo": "NGO", "legal": "LegalService"}
CASE_STATUS = {states.COMPLETED: "ClosedReferred", states.DECLINED: "Closed"}


def export(view: dict[str, Any], partner: Partner | None) -> dict[str, Any]:
    """``view`` is what the caller may already see (``views.for_partner`` or
    ``for_caseworker``); the export adds no field to it."""
    shared = view.get("shared") or {}
    indicators = list(shared.get("indicators") or [])
    controls = sorted({CONTROL_METHODS[i] for i in indicators if i in CONTROL_METHODS})
    organisation: dict[str, Any] = {"org_Name": partner.name["en"] if partner else None,
                                    "org_Type": ORG_TYPES.get(partner.kind) if partner else None,
                                    "org_ShippingCountry": "EG"}
    return {
        "format": VERSION,
        "organisation": organisation,
        "victim_context": {
            "vic_AgreementToManagePersonalData": view.get("shared") is not None,
            **({"vic_MethodsOfControl": controls} if "indicators" in shared else {}),
        },
        "case": {
            "cas_Status": CASE_STATUS.get(view["status"], "Active"),
            "cas_ReferringOrganisation": "Sanad",
            "cas_ReferredOrganisation": view["partner_id"],
            "cas_ReasonForOutgoingReferral": "AdditionalServicesRequired",
            "cas_OutgoingReferralDate": (view.get("sent_at") or "")[:10] or None,
            "cas_OutgoingReferralDetails": shared.get("summary"),
            "cas_ReasonForCaseClosure": view.get("outcome") or view.get("decline_reason"),
        },
        "sanad": {
            "referral_id": view["id"], "service_id": view["service_id"],
            "status": view["status"], "task_status": view["task_status"],
            "urgency": view["urgency"], "minor": view["minor"],
            "language": shared.get("language"), "age_band": shared.get("age_band"),
            "governorate": shared.get("governorate"), "risk_level": shared.get("risk_level"),
            "indicators": [i for i in indicators if i not in CONTROL_METHODS],
            "contact": shared.get("contact"),
            "steps": [{"status": s["status"], "action": s["action"], "at": s["at"]}
                      for s in view.get("steps", [])],
        },
    }
