"""The HTCDS-aligned export (only what the caller may already see, no identity fields) and the
``sanad partner`` commands; the partner directory refuses what it cannot source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.content import ContentLibrary
from handoff.referrals.directory import DirectoryError, PartnerDirectory
from tests.handoff.conftest import Console
from tests.referrals.conftest import OTHER, SHELTER, add_partner_accounts, call
from tests.referrals.test_lifecycle import consented

ROOT = Path(__file__).resolve().parents[2]


async def test_the_export_maps_fields_and_leaves_out_identity(console_sqlite: Console) -> None:
    console = console_sqlite
    tokens = await add_partner_accounts(console)
    _, case_id, rid = await consented(console, "htcds")
    status, export = await call(console, "GET", f"/api/referrals/{rid}/htcds", tokens[SHELTER])
    assert status == 200
    assert export["format"] == "sanad-htcds-1"
    assert export["organisation"]["org_Type"] == "CentralGovernmentOrganisation"
    assert export["case"]["cas_ReferredOrganisation"] == SHELTER
    assert export["case"]["cas_OutgoingReferralDetails"] == "needs a safe place tonight"
    assert export["victim_context"]["vic_AgreementToManagePersonalData"] is True
    assert "vic_MethodsOfControl" not in export["victim_context"], "indicators not agreed"
    flat = json.dumps(export)
    assert not [k for k in ("prs_", "case_id", "cw1", "S-") if k in flat]
    status, _ = await call(console, "GET", f"/api/referrals/{rid}/htcds", tokens[OTHER])
    assert status == 404
    status, staff = await call(console, "GET", f"/api/referrals/{rid}/htcds",
                               console.tokens["cw1"])
    assert status == 200 and "cw1" not in json.dumps(staff)
    # With indicators agreed, the ILO signs map to vic_MethodsOfControl.
    client = await console.browser()
    response = await client.request(
        "POST", f"/api/cases/{case_id}/referrals",
        json={"partner_id": SHELTER, "service_id": "moss_trafficking_shelters",
              "urgency": "normal", "fields": ["indicators"]},
        headers={"Authorization": f"Bearer {console.tokens['cw1']}"})
    second = await response.json()
    _, view = await call(console, "GET", f"/api/referrals/{second['id']}/htcds",
                         console.tokens["cw1"])
    assert view["victim_context"]["vic_MethodsOfControl"] == ["WithholdsDocuments"]
    await call(console, "POST", f"/api/referrals/{rid}/consent-withdrawn",
               console.tokens["cw1"])
    _, after = await call(console, "GET", f"/api/referrals/{rid}/htcds", tokens[SHELTER])
    assert after["victim_context"]["vic_AgreementToManagePersonalData"] is False
    assert after["case"]["cas_OutgoingReferralDetails"] is None


def test_the_directory_refuses_unsourced_or_unknown(tmp_path: Path,
                                                   console_content: ContentLibrary) -> None:
    bad = tmp_path / "partners.yml"
    bad.write_text("partners:\n  - id: x\n    name: {ar: س, en: X, fr: X}\n"
                   "    services: [mol_recruitment_check]\n    governorates: [national]\n"
                   "    source: {title: t}\n", encoding="utf-8")
    with pytest.raises(DirectoryError, match="not a verified service"):
        PartnerDirectory.load(console_content, bad)
    bad.write_text("partners:\n  - id: x\n    name: {ar: س, en: X, fr: X}\n"
                   "    services: [iom_egypt]\n    governorates: [atlantis]\n"
                   "    source: {title: t}\n", encoding="utf-8")
    with pytest.raises(DirectoryError, match="governorates"):
        PartnerDirectory.load(console_content, bad)
    shipped = PartnerDirectory.load(console_content)
    assert not [p for p in shipped.partners if p.contact_verified], "no contact is verified"
    assert {p.id for p in shipped.partners if p.child_protection} == {"moss_shelters", "nccm"}


@pytest.fixture
def console_content() -> ContentLibrary:
    return ContentLibrary.load()


def test_partner_commands(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
           "SANAD_SECRET_KEY": "cli-test-secret-key-that-is-long-enough", "PATH": "/usr/bin"}

    def sanad(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=300)

    listed = sanad("partner", "list")
    assert listed.returncode == 0, listed.stderr
    assert SHELTER in {p["id"] for p in json.loads(listed.stdout)}
    assert sanad("db", "upgrade").returncode == 0
    token = sanad("partner", "token", SHELTER, "--scope", "referrals:read")
    assert token.returncode == 0 and token.stdout.startswith("sanadp_")
    assert sanad("partner", "token", "nobody").returncode == 1
    hook = sanad("partner", "webhook", SHELTER, "http://insecure.example/hook")
    assert hook.returncode == 1 and "https" in hook.stderr
    hook = sanad("partner", "webhook", SHELTER, "https://partner.example/hook")
    assert hook.returncode == 0 and len(hook.stdout.strip()) == 64
    member = sanad("partner", "member", "nobody", "--partner", SHELTER)
    assert member.returncode == 1 and "no account" in member.stderr
    revoked = sanad("partner", "revoke-tokens", SHELTER)
    assert revoked.returncode == 0 and "revoked 1" in revoked.stdout
