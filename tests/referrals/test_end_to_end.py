"""Done-when of issue #21, end to end on SQLite and PostgreSQL: a high-risk person is handed
off, the caseworker proposes a shelter referral, the person consents in Egyptian Arabic, the
shelter (its own login) accepts and completes it; another organisation sees nothing of it; a
declined consent sends nothing; a withdrawn consent removes access."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.store.models import Case, EventRecord
from bot.store.repository import as_utc, utcnow
from handoff.indicators.daily import DEFAULT_TZ, PARTNER_METRICS, TOTAL, build_daily
from handoff.models import AuditEntry
from tests.handoff.conftest import Browser, Console
from tests.referrals.conftest import (
    OTHER,
    SHELTER,
    add_partner_accounts,
    handed_off_high_risk,
)

FIELDS = ["language", "risk_level", "indicators", "summary", "contact"]
SUMMARY = "محتاجة مكان آمن تبات فيه النهارده"
CONTACT = "تتصل بيها الأخصائية على نفس المحادثة"


async def claim_and_propose(console: Console, case_id: int, **overrides: Any) -> dict[str, Any]:
    client = await console.browser()
    auth = {"Authorization": f"Bearer {console.tokens['cw1']}"}
    claimed = await client.request("POST", f"/api/cases/{case_id}/claim", headers=auth)
    assert claimed.status == 200
    body = {"partner_id": SHELTER, "service_id": "moss_trafficking_shelters",
            "urgency": "urgent", "fields": FIELDS, "summary": SUMMARY, "contact": CONTACT,
            **overrides}
    response = await client.request("POST", f"/api/cases/{case_id}/referrals", json=body,
                                    headers=auth)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def partner_list(console: Console, token: str) -> list[dict[str, Any]]:
    client = await console.browser()
    response = await client.request("GET", "/api/referrals",
                                    headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    listed: list[dict[str, Any]] = await response.json()
    return listed


async def event_names(console: Console) -> list[str]:
    async with console.sanad.store.session() as db:
        rows = await db.scalars(select(EventRecord).where(
            EventRecord.name.like("Referral%"), EventRecord.name != "ReferralConsentAnswered")
            .order_by(EventRecord.id))
        return [r.name for r in rows]


async def test_consent_in_egyptian_arabic_then_the_shelter_accepts_and_completes(
        console_any_db: Console) -> None:
    console = console_any_db
    tokens = await add_partner_accounts(console)
    person, case_id = await handed_off_high_risk(console.sanad, "e2e-consent")
    referral = await claim_and_propose(console, case_id)
    assert referral["status"] == "proposed" and referral["task_status"] == "draft"

    # Nothing reaches the shelter before the person agrees.
    assert await partner_list(console, tokens[SHELTER]) == []

    # The question arrives in the person's chat, in Egyptian Arabic, listing exactly the fields.
    [question] = await person.check_phone()
    assert "مراكز إيواء" in question.text and "ملخص قصير من الأخصائي" in question.text
    assert "المحافظة" not in question.text, "a field not asked for is not listed"
    titles = [b.title for b in question.buttons]
    assert titles == ["أيوه، موافق", "لأ، ما تبعتش", "اسألني بعدين"]
    yes = person.phone.button("rc:yes:")
    turn = await person.say("أيوه، موافق", button=yes)
    assert "هنبعت البيانات اللي وافقت عليها بس" in turn.outbound[0].text
    assert [e.name for e in turn.events] == ["ReferralConsentAnswered"]

    # The shelter's own login sees it, with exactly the agreed fields, and nothing of the case.
    shelter = await console.browser(login_as="shelter1")
    page = await shelter.get("/console/partner")
    html = await page.text()
    assert page.status == 200 and SUMMARY in html and CONTACT in html
    async with console.sanad.store.session() as db:
        alias = await db.scalar(select(Case.alias).where(Case.id == case_id))
    assert alias and alias not in html, "no case alias"
    [seen] = await partner_list(console, tokens[SHELTER])
    assert seen["status"] == "sent" and seen["task_status"] == "requested"
    assert set(seen["shared"]) == set(FIELDS)
    assert "case_id" not in seen and "created_by" not in seen
    assert all("actor" not in step for step in seen["steps"])
    forbidden = await shelter.get(f"/console/cases/{case_id}")
    assert forbidden.status == 403
    thread = await shelter.request("GET", f"/api/cases/{case_id}/messages")
    assert thread.status == 403

    # A second organisation sees nothing of it, by list, by id, or by acting on it.
    assert await partner_list(console, tokens[OTHER]) == []
    other = await console.browser()
    bearer = {"Authorization": f"Bearer {tokens[OTHER]}"}
    for method, path in (("GET", f"/api/referrals/{seen['id']}"),
                         ("GET", f"/api/referrals/{seen['id']}/htcds"),
                         ("POST", f"/api/referrals/{seen['id']}/accept")):
        response = await other.request(method, path, headers=bearer)
        assert response.status == 404, path
    iom = await console.browser(login_as="iom1")
    assert SUMMARY not in await (await iom.get("/console/partner")).text()

    # The shelter accepts (the person hears of it neutrally), starts and completes.
    await act(shelter, seen["id"], "accept")
    update = await person.check_phone()
    assert update and "اتقبل" in update[0].text and "مراكز" not in update[0].text
    await act(shelter, seen["id"], "start")
    await act(shelter, seen["id"], "complete", outcome="service_delivered")
    [done] = await partner_list(console, tokens[SHELTER])
    assert done["status"] == "completed" and done["outcome"] == "service_delivered"

    # The caseworker sees every step; events carry ids and codes only.
    client = await console.browser()
    steps = await (await client.request(
        "GET", f"/api/cases/{case_id}/referrals",
        headers={"Authorization": f"Bearer {console.tokens['cw1']}"})).json()
    assert [s["action"] for s in steps[0]["steps"]] == [
        "propose", "consent", "accept", "start", "complete"]
    assert await event_names(console) == [
        "ReferralProposed", "ReferralConsented", "ReferralSent", "ReferralAccepted",
        "ReferralInProgress", "ReferralCompleted"]
    async with console.sanad.store.session() as db:
        data = [r.data for r in await db.scalars(select(EventRecord).where(
            EventRecord.name.like("Referral%"), EventRecord.name != "ReferralConsentAnswered")
            .order_by(EventRecord.id))]
        consent = await db.scalar(select(EventRecord).where(
            EventRecord.name == "ReferralConsentAnswered"))
        audited = set(await db.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("referral.%"))))
    assert all(set(d) <= {"referral_id", "service_id", "partner_id", "urgency", "outcome"}
               for d in data)
    assert data[-1]["outcome"] == "service_delivered"
    assert consent is not None and "token" not in consent.data
    assert {"referral.propose", "referral.consent", "referral.accept", "referral.start",
            "referral.complete", "referral.list", "referral.denied"} <= audited

    # The day's indicators count it: one person referred, consenting, accepted, served; the
    # shelter's row has the referral at every step and nothing for the other organisation.
    async with console.sanad.store.session() as db:
        sent_at = await db.scalar(select(EventRecord.created_at).where(
            EventRecord.name == "ReferralSent"))
        assert sent_at is not None
        day = as_utc(sent_at).astimezone(ZoneInfo(DEFAULT_TZ)).date()
        figures = await build_daily(db, day, sla={}, now=utcnow())
    for metric in ("referrals_proposed", "referrals_consented", "referrals_accepted",
                   "referrals_completed", "services_delivered", "handoffs"):
        assert figures.areas.cell(TOTAL, metric).value == 1, metric
    assert figures.partners.rows == (SHELTER,)
    shelter_row = {m: figures.partners.cell(SHELTER, m).value for m in PARTNER_METRICS}
    assert shelter_row == {**dict.fromkeys(PARTNER_METRICS, 1), "consent_declined": 0,
                           "declined": 0, "withdrawn": 0}


async def act(browser: Browser, referral_id: int, action: str, **form: str) -> None:
    await browser.get("/console/partner")
    response = await browser.post(f"/console/partner/referrals/{referral_id}/{action}", form)
    assert response.status == 303
    assert "referral_updated" in response.headers["Location"], response.headers["Location"]


async def test_a_declined_consent_sends_nothing(console_any_db: Console) -> None:
    console = console_any_db
    tokens = await add_partner_accounts(console)
    person, case_id = await handed_off_high_risk(console.sanad, "e2e-decline")
    await claim_and_propose(console, case_id)
    await person.check_phone()
    turn = await person.say("لأ، ما تبعتش", button=person.phone.button("rc:no:"))
    assert "مش هنبعت حاجة" in turn.outbound[0].text
    assert await partner_list(console, tokens[SHELTER]) == []
    client = await console.browser()
    [referral] = await (await client.request(
        "GET", f"/api/cases/{case_id}/referrals",
        headers={"Authorization": f"Bearer {console.tokens['cw1']}"})).json()
    assert referral["status"] == "consent_declined" and referral["shared"] is None
    # The "yes" of the same question, tapped afterwards, changes nothing.
    await person.say(button=person.phone.button("rc:yes:"))
    assert await partner_list(console, tokens[SHELTER]) == []
    assert "ReferralSent" not in await event_names(console)


async def test_a_withdrawn_consent_removes_access(console_any_db: Console) -> None:
    console = console_any_db
    tokens = await add_partner_accounts(console)
    person, case_id = await handed_off_high_risk(console.sanad, "e2e-withdraw")
    referral = await claim_and_propose(console, case_id)
    await person.check_phone()
    await person.say(button=person.phone.button("rc:yes:"))
    shelter = await console.browser(login_as="shelter1")
    await act(shelter, referral["id"], "accept")
    [_update] = await person.check_phone()
    stop = person.phone.button("rc:stop:")
    turn = await person.say("وقّف المشاركة", button=stop)
    assert "بلّغناهم يوقفوا" in turn.outbound[0].text
    [seen] = await partner_list(console, tokens[SHELTER])
    assert seen["status"] == "consent_withdrawn" and seen["shared"] is None
    assert seen["instruction"] == "stop"
    html = await (await shelter.get("/console/partner")).text()
    assert SUMMARY not in html and CONTACT not in html
    # Nothing further can happen to it.
    response = await shelter.post(f"/console/partner/referrals/{referral['id']}/complete",
                                  {"outcome": "service_delivered"})
    assert "referral_conflict" in response.headers["Location"]
    assert (await event_names(console))[-1] == "ReferralWithdrawn"


