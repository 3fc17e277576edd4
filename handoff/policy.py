"""Who may do what: the role model of the console and the API, in one place.

* ``caseworker``: the unclaimed cases and their own cases; claim, reply, note, refer, return a
  case to the queue, close their own case.
* ``supervisor``: every case; additionally reassign to a named caseworker, close any open case,
  reports.
* ``outreach``: no case data at all (campaigns: the campaigns page and the CLI).
* ``admin``: accounts only, no case data: whoever manages logins should not also read threads.
* The dashboard (aggregate, k-anonymised figures, no case data): supervisor, outreach, admin.
* The campaigns page (funnels, pause/resume; no case data): outreach, supervisor, admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

UNCLAIMED = ("waiting", "transferred")
CASE_ROLES = ("caseworker", "supervisor")
DASHBOARD_ROLES = ("supervisor", "outreach", "admin")
CAMPAIGN_ROLES = ("outreach", "supervisor", "admin")


class CaseLike(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def assignee(self) -> str | None: ...


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a console session or a bearer token."""

    id: int
    name: str
    role: str
    via: str  # "session" | "token"
    csrf_token: str | None = None
    session_hash: str | None = None
    lang: str = "ar"

    @property
    def handles_cases(self) -> bool:
        return self.role in CASE_ROLES

    @property
    def supervises(self) -> bool:
        return self.role == "supervisor"

    @property
    def manages_accounts(self) -> bool:
        return self.role == "admin"

    @property
    def sees_dashboard(self) -> bool:
        return self.role in DASHBOARD_ROLES

    @property
    def manages_campaigns(self) -> bool:
        return self.role in CAMPAIGN_ROLES


def can_see(principal: Principal, case: CaseLike) -> bool:
    """A caseworker sees the queue and their own cases; a supervisor sees everything."""
    if principal.supervises:
        return True
    if principal.role == "caseworker":
        return case.status in UNCLAIMED or case.assignee == principal.name
    return False


def holds(principal: Principal, case: CaseLike) -> bool:
    return case.status == "claimed" and case.assignee == principal.name


def home_path(principal: Principal) -> str:
    """Where a role lands after login."""
    if principal.handles_cases:
        return "/console/queue"
    if principal.manages_accounts:
        return "/console/accounts"
    return "/console/home"
