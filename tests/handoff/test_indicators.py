"""Daily indicators of the referral mechanism: the local day's window, distinct people per
area, referral steps per partner, medians, SLA breaches, suppression, the CLI, and the
differentially private release (noise scale, sensitivity, budget).

The seeded day (2026-12-01 in Cairo, UTC+2) has, in ``giza|telegram``, six people who were
screened (4 high, 2 urgent), handed off (urgent cases claimed after 10 minutes: SLA breached),
referred to ``moss_shelter`` and served 48 hours after the referral was sent; in
``cairo|whatsapp``, two people who only read a module, one of them a minor.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import cli
from bot.store.db import transaction
from bot.store.models import Case, EventRecord, User
from handoff import auth
from handoff.indicators import export
from handoff.indicators.daily import (
    AREA_METRICS,
    TOTAL,
    DailyIndicators,
    build_daily,
    day_window,
)
from handoff.indicators.models import DpBudget, DpRelease
from handoff.indicators.release import (
    BudgetExceeded,
    cells,
    count_vector,
    figures_of,
    measurement,
    release,
    sensitivity,
    totals_of,
)
from handoff.models import AuditEntry
from handoff.referrals.models import PartnerMember
from tests.handoff.conftest import FAST_PASSWORDS, PASSWORD, Console

DAY = date(2026, 12, 1)
START = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # 00:00 in Cairo
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SLA = {"urgent": timedelta(minutes=5), "high": timedelta(minutes=30)}
GIZA = "giza|telegram"
CAIRO = "cairo|whatsapp"


def event(user: User | None, name: str, at: datetime, **data: object) -> EventRecord:
    return EventRecord(user_id=user.id if user else None, name=name, channel="telegram",
                       language="ar", data=dict(data), created_at=at)


async def add_user(db, key: str, channel: str, governorate: str | None,  # type: ignore[no-untyped-def]
                   at: datetime, joined: datetime | None = None) -> User:
    user = User(key=key, channel=channel, language="ar", language_locked=False,
                governorate=governorate, unreachable=False, created_at=joined or at,
                last_active_at=at)
    db.add(user)
    await db.flush()
    return user


async def seed(db) -> None:  # type: ignore[no-untyped-def]
    for i in range(6):
        at = START + timedelta(hours=1, minutes=i)
        user = await add_user(db, f"g{i}", "telegram", "giza", at,
                              joined=at - timedelta(minutes=20 + i))
        level = "urgent" if i < 2 else "high"
        db.add(event(user, "ScreeningCompleted", at - timedelta(minutes=1), risk_level="low"))
        db.add(event(user, "ScreeningCompleted", at, risk_level=level))
        db.add(Case(user_id=user.id, alias=f"A-{i}", status="claimed", priority=level,
                    priority_rank=0, reason="screening", risk_level=level,
                    language="ar", channel="telegram", assignee="cw", created_at=at,
                    claimed_at=at + timedelta(minutes=10)))
        ref = {"referral_id": 100 + i, "service_id": "moss_shelter",
               "partner_id": "moss_shelter", "urgency": "high"}
        db.add(event(user, "ReferralSent", at - timedelta(hours=48), **ref))
        for name in ("ReferralProposed", "ReferralConsented", "ReferralAccepted"):
            db.add(event(user, name, at, **ref))
        db.add(event(user, "ReferralCompleted", at, outcome="service_delivered", **ref))
    for i in range(2):
        at = START + timedelta(minutes=30 + i)  # 00:30 in Cairo, still 30 Nov in UTC
        user = await add_user(db, f"c{i}", "whatsapp", "cairo", at)
        db.add(event(user, "ModuleOpened", at, module_id="check_job_offer"))
        if i == 0:
            db.add(event(user, "MinorDisclosed", at))
    late = START - timedelta(minutes=30)  # 23:30 in Cairo the day before: not counted
    user = await add_user(db, "late", "telegram", "giza", late)
    db.add(event(user, "MinorDisclosed", late))


async def build(database_url: str) -> DailyIndicators:
    async with transaction(database_url) as db:
        return await build_daily(db, DAY, sla=SLA, now=NOW)


def test_the_local_day_follows_cairo_time_including_summer_time() -> None:
    assert day_window(DAY) == (START, START + timedelta(days=1))
    start, end = day_window(date(2026, 7, 1))  # Egypt's summer time: UTC+3
    assert start == datetime(2026, 6, 30, 21, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)


async def test_a_day_counts_people_per_area_and_referrals_per_partner(
        database_url: str) -> None:
    async with transaction(database_url) as db:
        await seed(db)
    found = await build(database_url)
    areas = found.areas
    assert areas.rows == ("cairo|whatsapp", "giza|telegram")
    giza = {m: areas.cell(GIZA, m) for m in AREA_METRICS}
    assert {m: c.value for m, c in giza.items() if c.value} == {
        "reached": 6, "screened": 6, "level_urgent": 2, "level_high": 4, "handoffs": 6,
        "sla_breaches": 2, "referrals_proposed": 6, "referrals_consented": 6,
        "referrals_accepted": 6, "referrals_completed": 6, "services_delivered": 6}
    # The earlier "low" screening of the same people does not count: latest level only.
    assert giza["level_low"].value == 0
    assert areas.cell(CAIRO, "reached").value == 2
    assert areas.cell(CAIRO, "minors").value == 1  # the late minor fell on the day before
    assert areas.cell(TOTAL, "reached").value == 8
    # Suppression: 1-4 are "small"; the levels must add up to "screened", so hiding
    # "urgent" (2) forces a second level to be hidden.
    assert giza["level_urgent"].suppressed == "small"
    assert giza["level_high"].suppressed == "small"
    # Complementary: 8 reached = giza + cairo, and cairo (2) is small, so giza's 6 must go.
    assert areas.cell(CAIRO, "reached").suppressed == "small"
    assert areas.cell(GIZA, "reached").suppressed == "hidden"
    assert areas.cell(TOTAL, "reached").suppressed is None
    assert areas.cell(GIZA, "handoffs").suppressed is None  # 6 = the total: nothing to hide
    assert areas.medians[GIZA]["minutes_to_handoff"] == 22.5  # 20..25 minutes
    assert areas.medians[GIZA]["hours_to_service"] == 48.0
    assert areas.medians[CAIRO]["minutes_to_handoff"] is None  # fewer than five
    partners = found.partners
    assert partners.rows == ("moss_shelter",)
    assert partners.cell("moss_shelter", "accepted").value == 6
    assert partners.cell("moss_shelter", "sent").value == 0  # sent two days earlier
    assert partners.medians["moss_shelter"]["hours_to_service"] == 48.0


async def test_a_partner_sees_only_its_own_row(sqlite_url: str) -> None:
    async with transaction(sqlite_url) as db:
        await seed(db)
        other = await add_user(db, "o", "telegram", "giza", START + timedelta(hours=3))
        db.add(event(other, "ReferralProposed", START + timedelta(hours=3), referral_id=7,
                     partner_id="legal_aid", service_id="x", urgency="normal"))
    found = await build(sqlite_url)
    assert set(found.partners.rows) == {"legal_aid", "moss_shelter"}
    mine = found.partners.only("legal_aid")
    assert mine.rows == ("legal_aid",)
    assert {row for row, _ in mine.cells} == {"legal_aid"}


async def seed_url(url: str) -> None:
    async with transaction(url) as db:
        await seed(db)


def test_the_cli_prints_json_and_csv_with_suppression_markers(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(seed_url(sqlite_url))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert cli.main(["indicators", "--date", DAY.isoformat(), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    giza = next(a for a in printed["areas"] if a["governorate"] == "giza")
    assert giza["handoffs"] == 6 and giza["reached"] == "*" and giza["level_urgent"] == "<5"
    assert printed["disclosure_control"]["k"] == 5
    assert cli.main(["indicators", "--date", DAY.isoformat(), "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "date,table,governorate,channel,partner,metric,value"
    assert "2026-12-01,areas,giza,telegram,,handoffs,6" in lines
    assert "2026-12-01,areas,cairo,whatsapp,,reached,<5" in lines
    assert "2026-12-01,partners,,,moss_shelter,completed,6" in lines
    with pytest.raises(SystemExit):
        cli.main(["indicators", "--date", "1 December"])
    with pytest.raises(SystemExit):
        cli.main(["indicators", "--date", DAY.isoformat(), "--tz", "Mars/Olympus"])


# --- the differentially private release ----------------------------------------------------
def test_the_mechanism_costs_exactly_epsilon_and_its_noise_has_the_documented_scale() -> None:
    epsilon, size = 0.5, 40_000
    meas, scale = measurement(epsilon, size)
    assert scale == sensitivity() / epsilon
    assert meas.map(sensitivity()) == pytest.approx(epsilon)
    noise = list(meas([0] * size))
    # Discrete Laplace of scale b: variance 2·e^(-1/b) / (1 - e^(-1/b))².
    q = math.exp(-1 / scale)
    expected = 2 * q / (1 - q) ** 2
    assert statistics.pvariance(noise) == pytest.approx(expected, rel=0.05)
    assert abs(statistics.fmean(noise)) < 4 * math.sqrt(expected / size)
    # A mechanism twice as private is twice as noisy.
    _, half = measurement(epsilon / 2, 1)
    assert half == 2 * scale
    with pytest.raises(ValueError):
        measurement(0, 1)


async def test_one_person_changes_the_release_by_at_most_the_sensitivity(
        sqlite_url: str) -> None:
    """Add a person who does everything (twice): the count vector moves by ≤ sensitivity."""
    async with transaction(sqlite_url) as db:
        await seed(db)
    before = count_vector(await build(sqlite_url))
    async with transaction(sqlite_url) as db:
        at = START + timedelta(hours=5)
        user = await add_user(db, "busy", "telegram", "giza", at, joined=at)
        for n in range(2):
            ref = {"referral_id": 900 + n, "partner_id": f"p{n}", "service_id": "s",
                   "urgency": "high"}
            for name in ("ScreeningCompleted", "MinorDisclosed", "ChildAtRiskReported",
                         "ReferralProposed", "ReferralConsented", "ReferralAccepted"):
                db.add(event(user, name, at, risk_level=("high", "urgent")[n], **ref))
            db.add(event(user, "ReferralCompleted", at, outcome="service_delivered", **ref))
            db.add(Case(user_id=user.id, alias=f"B-{n}", status="waiting", priority="urgent",
                        priority_rank=0, reason="emergency", language="ar",
                        channel="telegram", created_at=at))
    after = count_vector(await build(sqlite_url))
    change = sum(abs(a - b) for a, b in zip(after, before, strict=True))
    assert change == sensitivity() == 12


def test_the_release_covers_a_fixed_public_domain_and_measures_totals_apart() -> None:
    domain = cells()
    assert len(domain) == 28 * 3 * len(AREA_METRICS)
    vector = [i % 3 for i in range(len(domain))]
    totals = totals_of(vector)
    assert totals[AREA_METRICS.index("reached")] == sum(
        v for (_, _, m), v in zip(domain, vector, strict=True) if m == "reached")
    figures = figures_of([-3] * len(domain), [7] * len(AREA_METRICS))
    assert len(figures["areas"]) == 28 * 3
    # Negative noisy counts are kept (clamping would bias sums); totals are their own draw.
    assert {a["reached"] for a in figures["areas"]} == {-3}
    assert figures["total"]["reached"] == 7


async def test_the_budget_is_enforced_and_a_repeated_release_spends_nothing(
        database_url: str) -> None:
    async with transaction(database_url) as db:
        await seed(db)
    found = await build(database_url)
    fixed = lambda vector: list(vector)  # noqa: E731 - tests need exact numbers
    async with transaction(database_url) as db:
        first = await release(db, found, epsilon=0.5, budget=1.0, released_by="sup",
                              now=NOW, noise=fixed)
    assert first.spent == pytest.approx(0.5) and not first.reused
    giza = next(a for a in first.figures["areas"]
                if (a["governorate"], a["channel"]) == ("giza", "telegram"))
    assert giza["handoffs"] == 6 and first.figures["total"]["handoffs"] == 6
    assert first.scale == sensitivity() / 0.25  # each half of the release spends ε/2
    async with transaction(database_url) as db:
        again = await release(db, found, epsilon=0.5, budget=1.0, released_by="sup", now=NOW)
    assert again.reused and again.figures == first.figures and again.spent == 0.5
    async with transaction(database_url) as db:
        await release(db, found, epsilon=0.4, budget=1.0, released_by="sup", now=NOW)
    with pytest.raises(BudgetExceeded):
        async with transaction(database_url) as db:
            await release(db, found, epsilon=0.2, budget=1.0, released_by="sup", now=NOW)
    async with transaction(database_url) as db:
        assert await db.scalar(select(DpBudget.spent)) == pytest.approx(0.9)
        assert await db.scalar(select(func.count()).select_from(DpRelease)) == 2


async def test_two_releases_at_once_cannot_overspend(database_url: str) -> None:
    found = await build(database_url)

    async def one(eps: float) -> str:
        try:
            async with transaction(database_url) as db:
                await release(db, found, epsilon=eps, budget=1.0, released_by="x", now=NOW)
            return "ok"
        except BudgetExceeded:
            return "refused"
        except Exception as exc:  # a serialisation failure is also a refusal, never a spend
            return type(exc).__name__

    outcomes: Sequence[str] = await asyncio.gather(one(0.6), one(0.7))
    assert "ok" in outcomes
    async with transaction(database_url) as db:
        spent = await db.scalar(select(DpBudget.spent))
    assert spent is not None and spent <= 1.0
    assert outcomes.count("ok") == 1


def test_the_method_is_documented_next_to_the_numbers() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "indicators.md").read_text()
    for term in ("make_laplace", "sensitivity", "SANAD_DP_BUDGET", "SANAD_DP_EPSILON",
                 "k = 5", "--dp"):
        assert term in docs
    assert export.SMALL in docs


# --- the console page ----------------------------------------------------------------------
async def test_the_console_page_csv_and_release_are_for_supervisors_only(
        console: Console) -> None:
    async with console.sanad.store.session() as db:
        await seed(db)
    for name in ("cw1", "out", "adm"):
        other = await console.browser(login_as=name)
        assert (await other.get(f"/console/indicators?date={DAY}")).status == 403
        assert (await other.get(f"/console/indicators.csv?date={DAY}")).status == 403
    sup = await console.browser(login_as="sup")
    page = await sup.get(f"/console/indicators?date={DAY}&lang=en")
    assert page.status == 200
    html = await page.text()
    areas = html.split('id="areas"', 1)[1].split("</table>", 1)[0]
    row = re.search(r'<th scope="row">Giza · Telegram</th>(.*?)</tr>', areas, re.S)
    assert row is not None
    assert re.search(r'data-metric="handoffs">6<', row.group(1))
    assert 'data-metric="level_urgent"><span class="sup small"' in row.group(1)
    assert "moss_shelter" in html
    export_ = await sup.get(f"/console/indicators.csv?date={DAY}")
    assert export_.status == 200 and export_.content_type == "text/csv"
    assert "2026-12-01,areas,giza,telegram,,handoffs,6" in (await export_.text()).splitlines()
    # The release spends budget once per day and epsilon, then is shown again for free.
    first = await sup.post("/console/indicators/release", {"date": DAY.isoformat()})
    assert first.status == 200
    assert 'id="release"' in await first.text()
    assert (await sup.post("/console/indicators/release",
                           {"date": DAY.isoformat()})).status == 200
    assert (await sup.post("/console/indicators/release", {"date": DAY.isoformat()},
                           csrf="forged")).status == 403
    async with console.sanad.store.session() as db:
        assert await db.scalar(select(func.count()).select_from(DpRelease)) == 1
        actions = set(await db.scalars(select(AuditEntry.action)))
    assert {"indicators.view", "indicators.export", "indicators.dp_release"} <= actions


async def test_a_release_the_budget_cannot_pay_for_is_refused_in_the_console(
        console: Console) -> None:
    console.sanad.settings = replace(console.sanad.settings, dp_epsilon=0.6, dp_budget=1.0)
    sup = await console.browser(login_as="sup")
    await sup.get("/console/indicators")
    assert (await sup.post("/console/indicators/release", {"date": DAY.isoformat()})).status \
        == 200
    console.sanad.settings = replace(console.sanad.settings, dp_epsilon=0.5)
    refused = await sup.post("/console/indicators/release", {"date": DAY.isoformat()})
    assert refused.status == 409
    assert 'role="alert"' in await refused.text()


async def test_a_partner_sees_only_its_own_referral_figures_and_cannot_publish(
        console: Console) -> None:
    async with console.sanad.store.session() as db:
        await seed(db)
        other = await add_user(db, "o", "telegram", "giza", START + timedelta(hours=3))
        db.add(event(other, "ReferralProposed", START + timedelta(hours=3), referral_id=7,
                     partner_id="legal_aid", service_id="x", urgency="normal"))
        account = await auth.create_account(db, FAST_PASSWORDS, name="p1", role="partner",
                                            password=PASSWORD)
        db.add(PartnerMember(caseworker_id=account.id, partner_id="legal_aid",
                             created_at=NOW))
    partner = await console.browser(login_as="p1")
    page = await partner.get(f"/console/indicators?date={DAY}&lang=en")
    assert page.status == 200
    html = await page.text()
    assert "legal_aid" in html
    assert "moss_shelter" not in html and 'id="areas"' not in html
    assert 'action="/console/indicators/release"' not in html
    export_ = (await (await partner.get(f"/console/indicators.csv?date={DAY}")).text())
    rows = export_.splitlines()[1:]
    assert rows and all(",partners,,,legal_aid," in r for r in rows)
    assert (await partner.post("/console/indicators/release",
                               {"date": DAY.isoformat()})).status == 403
