"""Who may do what: the role model of the console and the API, in one place.

* ``caseworker``: the unclaimed cases and their own cases; claim, reply, note, refer, return a
  case to the queue, close their own case.
* ``supervisor``: every case; additionally reassign to a named caseworker, close any open case,
  reports.
* ``outreach``: no case data at all (campaigns: the campaigns page and the CLI).
* ``admin``: accounts only, no case data: whoever manages logins should not also read threads.
* The dashboard (aggregate, k-anonymised figures, no case data): supervisor, outreach, admin.
* The campaigns page (funnels, pause/resume; no case data): outreach, supervisor, admin.
* ``partner``: staff of a partner organisation: only the referrals sent to its own
  organisation (``/console/partner``, ``/api/referrals``), never a case, a thread or another
  organisation's referral (handoff/referrals/).
* ``reviewer``: content approval only (``/console/content``, no case data). Any other account
  can also be granted the review capability (``can_review``, ``sanad content reviewer NAME``)
  without changing its role: a supervisor who is also the NGO's content reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

UNCLAIMED = ("waiting", "transferred")
CASE_ROLES = ("caseworker", "supervisor")
DASHBOARD_ROLES = ("supervisor", "outreach", "admin")
CAMPAIGN_ROLES = ("outreach", "supervisor", "admin")
REVIEW_ROLES = ("reviewer",)
PARTNER_ROLE = "partner"
CASE_SCOPES = ("cases:read", "cases:write")
"""API token scopes: ``cases:read`` for GET, ``cases:write`` for POST (handoff/guard.py)."""


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
    can_review: bool = False
    """The review capability granted on top of the role (see ``reviews_content``)."""
    scopes: frozenset[str] = frozenset(CASE_SCOPES)
    """What the caller may do with cases: a session may do all, a token what it was given."""

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

    @property
    def reviews_content(self) -> bool:
        """Approves content in the console: the ``reviewer`` role or a granted capability."""
        return self.role in REVIEW_ROLES or self.can_review


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
    if principal.role in REVIEW_ROLES:
        return "/console/content"
    if principal.role == PARTNER_ROLE:
        return "/console/partner"
    return "/console/home"
