"""The console's role model (handoff/policy.py) as tables: every role against every permission,
every role against every kind of case, who holds a case, and where each role lands."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from handoff.policy import Principal, can_see, holds, home_path

ROLES = ("caseworker", "supervisor", "outreach", "admin", "unknown")
ME, OTHER = "cw1", "cw2"


@dataclass(frozen=True)
class Case:
    status: str
    assignee: str | None


def principal(role: str) -> Principal:
    return Principal(id=1, name=ME, role=role, via="session")


PERMISSIONS = {
    # role          handles_cases supervises manages_accounts sees_dashboard manages_campaigns
    "caseworker":  (True,  False, False, False, False),
    "supervisor":  (True,  True,  False, True,  True),
    "outreach":    (False, False, False, True,  True),
    "admin":       (False, False, True,  True,  True),
    "unknown":     (False, False, False, False, False),
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_has_exactly_its_permissions(role: str) -> None:
    who = principal(role)
    granted = (who.handles_cases, who.supervises, who.manages_accounts, who.sees_dashboard,
               who.manages_campaigns)
    assert granted == PERMISSIONS[role]


CASES = {
    "waiting": Case("waiting", None),
    "transferred": Case("transferred", None),
    "transferred-to-me": Case("transferred", ME),
    "claimed-by-me": Case("claimed", ME),
    "claimed-by-other": Case("claimed", OTHER),
    "closed-mine": Case("closed", ME),
    "closed-other": Case("closed", OTHER),
    "closed-nobody": Case("closed", None),
}

VISIBLE = {
    # case                caseworker supervisor outreach admin unknown
    "waiting":            (True,  True, False, False, False),
    "transferred":        (True,  True, False, False, False),
    "transferred-to-me":  (True,  True, False, False, False),
    "claimed-by-me":      (True,  True, False, False, False),
    "claimed-by-other":   (False, True, False, False, False),
    "closed-mine":        (True,  True, False, False, False),
    "closed-other":       (False, True, False, False, False),
    "closed-nobody":      (False, True, False, False, False),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("role", ROLES)
def test_who_sees_which_case(role: str, case: str) -> None:
    expected = VISIBLE[case][ROLES.index(role)]
    assert can_see(principal(role), CASES[case]) is expected


@pytest.mark.parametrize(("case", "held"), [
    ("waiting", False), ("transferred", False), ("transferred-to-me", False),
    ("claimed-by-me", True), ("claimed-by-other", False), ("closed-mine", False),
    ("closed-other", False), ("closed-nobody", False),
])
@pytest.mark.parametrize("role", ROLES)
def test_only_the_claimant_holds_a_claimed_case(role: str, case: str, held: bool) -> None:
    """Holding is about the name on the claim, whatever the role (the routes check roles)."""
    assert holds(principal(role), CASES[case]) is held


@pytest.mark.parametrize(("role", "path"), [
    ("caseworker", "/console/queue"), ("supervisor", "/console/queue"),
    ("admin", "/console/accounts"), ("outreach", "/console/home"), ("unknown", "/console/home"),
])
def test_each_role_lands_on_its_home(role: str, path: str) -> None:
    assert home_path(principal(role)) == path


def test_a_token_caller_has_the_same_rights_as_a_session() -> None:
    by_token = Principal(id=2, name=ME, role="caseworker", via="token")
    assert can_see(by_token, CASES["claimed-by-me"]) and holds(by_token, CASES["claimed-by-me"])
    assert not can_see(by_token, CASES["claimed-by-other"])
