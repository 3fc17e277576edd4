"""The dashboard: distinct people, k-anonymity (primary and complementary suppression), median
time to claim, CSV export, roles, and the page in a real browser.

The seeded population (by channel) has groups of 7 (telegram), 3 (whatsapp) and 6 (terminal):

=========== ======== ====== ====== ======== ====== ====== ========
group       reached  opened  done  screened medium  high  handoffs
=========== ======== ====== ====== ======== ====== ====== ========
telegram        7       7      7       7       0      7       7
whatsapp        3       3      0       3       3      0       3
terminal        6       6      5       5       5      0       5
total          16      16     12      15       8      7      15
=========== ======== ====== ====== ======== ====== ====== ========
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.app import Sanad
from bot.outreach.models import Campaign, CampaignDelivery
from bot.store.models import Case, EventRecord, User
from bot.store.repository import utcnow
from handoff.charts import Datum, bar_chart, line_chart
from handoff.console_dashboard import safe
from handoff.dashboard import (
    LEVELS,
    METRICS,
    TOTAL,
    Breakdown,
    breakdown_table,
    median_minutes,
    primary,
    protect,
)
from tests.handoff.conftest import (
    Console,
    launch_chromium,
    needs_chromium,
    sign_in,
    start_console,
)

DOCS = Path(__file__).resolve().parents[2] / (
    "docs" if os.environ.get("SANAD_UPDATE_SCREENSHOTS") == "1" else "test-artifacts")
GROUPS = {  # channel: (people, completed, screened level, screened, handoff waits in minutes)
    "telegram": (7, 7, "high", 7, [10, 20, 30, 40, 50, 60, 70]),
    "whatsapp": (3, 0, "medium", 3, [5, 5, 5]),
    "terminal": (6, 5, "medium", 5, [100] * 5),
}
GOVERNORATE = {"telegram": "=1+2", "whatsapp": "giza", "terminal": None}


async def seed(sanad: Sanad, now: datetime) -> None:
    """People with events and cases from yesterday, one old person outside every period, and
    a campaign named like a formula."""
    async with sanad.store.session() as db:
        campaign = Campaign(name="@spring", status="done", created_at=now - timedelta(days=3),
                            started_at=now - timedelta(days=2), finished_at=now - timedelta(days=1),
                            messages=[{"lang": "ar", "text": "x", "buttons": []}], segment="")
        db.add(campaign)
        await db.flush()
        for channel, (people, completed, level, screened, waits) in GROUPS.items():
            for i in range(people):
                at = now - timedelta(days=1, minutes=i)
                key = sanad.store.pseudonyms.user_key(channel, f"{channel}-{i}")
                user = User(key=key, channel=channel, language="ar", language_locked=False,
                            governorate=GOVERNORATE[channel], unreachable=False,
                            created_at=now - timedelta(days=200), last_active_at=at)
                db.add(user)
                await db.flush()
                names = ["ModuleOpened", "ModuleOpened"]  # twice: people, not events
                names += ["ModuleCompleted"] * (i < completed)
                for name in names:
                    db.add(EventRecord(user_id=user.id, name=name, channel=channel,
                                       language="ar", data={"module_id": "check_job_offer"},
                                       created_at=at))
                if i < screened:
                    for earlier, risk in ((True, "low"), (False, level)):  # latest counts
                        db.add(EventRecord(
                            user_id=user.id, name="ScreeningCompleted", channel=channel,
                            language="ar", data={"risk_level": risk, "score": 1},
                            created_at=at - timedelta(hours=2 if earlier else 0)))
                if i < len(waits):
                    db.add(Case(user_id=user.id, alias=f"S-{channel[:2]}{i}", status="claimed",
                                priority="high", priority_rank=1, reason="screening",
                                risk_level="high", language="ar",
                                channel=channel, assignee="cw1", created_at=at,
                                claimed_at=at + timedelta(minutes=waits[i])))
                db.add(CampaignDelivery(
                    campaign_id=campaign.id, user_id=user.id, channel=channel, language="ar",
                    status="read" if channel == "whatsapp" else "delivered",
                    targeted_at=at - timedelta(hours=3), sent_at=at - timedelta(hours=2)))
        old = User(key="old-person", channel="telegram", language="en", language_locked=False,
                   unreachable=False, created_at=now - timedelta(days=120),
                   last_active_at=now - timedelta(days=100))
        db.add(old)


@pytest.fixture
async def console_db(sanad: Sanad) -> AsyncIterator[Console]:
    """The console on SQLite and on PostgreSQL (``sanad`` follows ``database_url``)."""
    running = await start_console(sanad)
    yield running
    await running.close()
    await running.server.close()


def cells(html: str) -> dict[tuple[str, str], str]:
    """The breakdown table as {(row label, metric): text} (suppression markers unwrapped)."""
    table = html.split('id="breakdown"', 1)[1].split("</table>", 1)[0]
    found = {}
    for row in re.findall(r"<tr[^>]*><th scope=\"row\">(.*?)</th>(.*?)</tr>", table, re.S):
        for metric, text in re.findall(r'<td data-metric="([a-z_]+)">(.*?)</td>', row[1]):
            found[(row[0], metric)] = re.sub(r"<[^>]+>", "", text).replace("&lt;", "<")
    return found


def parsed(body: str) -> dict[tuple[str, ...], str]:
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["section", "period_days", "breakdown", "group", "metric", "value"]
    return {tuple(r[:5]): r[5] for r in rows[1:]}


EXPECTED = {  # (group, metric): shown
    ("telegram", "reached"): "7", ("whatsapp", "reached"): "<5", ("terminal", "reached"): "*",
    (TOTAL, "reached"): "16",
    ("telegram", "modules_opened"): "7", ("whatsapp", "modules_opened"): "<5",
    ("terminal", "modules_opened"): "*", (TOTAL, "modules_opened"): "16",
    ("telegram", "modules_completed"): "7", ("whatsapp", "modules_completed"): "0",
    ("terminal", "modules_completed"): "5", (TOTAL, "modules_completed"): "12",
    ("telegram", "screened"): "7", ("whatsapp", "screened"): "<5",
    ("terminal", "screened"): "*", (TOTAL, "screened"): "15",
    ("telegram", "level_high"): "7", ("whatsapp", "level_medium"): "<5",
    ("terminal", "level_medium"): "*", (TOTAL, "level_medium"): "8", (TOTAL, "level_low"): "0",
    ("telegram", "handoffs"): "7", ("whatsapp", "handoffs"): "<5",
    ("terminal", "handoffs"): "*", (TOTAL, "handoffs"): "15",
}


async def test_dashboard_figures_in_html_and_csv(console_db: Console) -> None:
    await seed(console_db.sanad, utcnow())
    out = await console_db.browser(login_as="out")
    page = await out.get("/console/dashboard?days=30&by=channel&lang=en")
    assert page.status == 200
    html = await page.text()
    table = cells(html)
    label = {"telegram": "Telegram", "whatsapp": "WhatsApp", "terminal": "Terminal",
             TOTAL: "Total"}
    for (group, metric), text in EXPECTED.items():
        assert table[(label[group] if group != "terminal" else "Terminal", metric)] == text, (
            group, metric)
    assert table[("Telegram", "median")] == "40.0 min"
    assert table[("WhatsApp", "median")] == "fewer than 5 cases"
    assert table[("Terminal", "median")] == "100.0 min"
    assert table[("Total", "median")] == "50.0 min"
    assert not [k for k, v in table.items() if v in {"1", "2", "3", "4"}], "no count under 5"
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart') == 5

    export = await out.get("/console/dashboard.csv?days=30&by=channel")
    assert export.status == 200
    assert export.headers["Content-Disposition"].startswith("attachment;")
    assert export.content_type == "text/csv"
    figures = parsed(await export.text())
    for (group, metric), text in EXPECTED.items():
        code = "total" if group == TOTAL else group
        assert figures[("breakdown", "30", "channel", code, metric)] == text, (group, metric)
    assert figures[("breakdown", "30", "channel", "whatsapp", "median_minutes_to_claim")] == "n<5"
    assert figures[("breakdown", "30", "channel", "total", "median_minutes_to_claim")] == "50.0"
    assert figures[("modules", "30", "", "check_job_offer", "opened")] == "16"
    campaign = {k[4]: v for k, v in figures.items() if k[0] == "campaigns"}
    assert campaign == {"sent": "16", "delivered": "16", "read": "<5", "clicked": "16",
                        "handoffs": "0"}
    assert ("campaigns", "30", "", "'@spring", "read") in figures, "formula-safe name"
    assert not [k for k, v in figures.items() if v in {"1", "2", "3", "4"}]
    reach = [v for k, v in figures.items() if k[0] == "timeline"]
    assert len(reach) == 30 and "16" in reach and "0" in reach


async def test_breakdown_by_governorate_and_periods(console_db: Console) -> None:
    await seed(console_db.sanad, utcnow())
    sup = await console_db.browser(login_as="sup")
    figures = parsed(await (await sup.get(
        "/console/dashboard.csv?days=7&by=governorate")).text())
    assert figures[("breakdown", "7", "governorate", "'=1+2", "reached")] == "7"
    assert figures[("breakdown", "7", "governorate", "giza", "reached")] == "<5"
    assert figures[("breakdown", "7", "governorate", "unknown", "reached")] == "*"
    page = await (await sup.get("/console/dashboard?days=90&by=governorate&lang=ar")).text()
    assert "الجيزة" in page and "=1+2" in page
    weekly = parsed(await (await sup.get("/console/dashboard.csv?days=90")).text())
    assert len([k for k in weekly if k[0] == "timeline"]) == 13, "weeks for 90 days"
    # the person last seen 100 days ago is outside even the longest period
    assert weekly[("breakdown", "90", "channel", "total", "reached")] == "16"
    fallback = parsed(await (await sup.get("/console/dashboard.csv?days=5&by=x")).text())
    assert ("breakdown", "30", "channel", "total", "reached") in fallback


async def test_roles(console_db: Console) -> None:
    for name, status in (("cw1", 403), ("sup", 200), ("out", 200), ("adm", 200)):
        person = await console_db.browser(login_as=name)
        for path in ("/console/dashboard", "/console/dashboard.csv"):
            assert (await person.get(path)).status == status, (name, path)
        home = await person.get("/console/home")
        assert ('href="/console/dashboard"' in await home.text()) == (status == 200), name
    anon = await console_db.browser()
    assert (await anon.get("/console/dashboard.csv")).status == 302


# --- pure functions ------------------------------------------------------------------------
def shown(table: Breakdown, group: str, metric: str) -> int | str | None:
    cell = table.cell(group, metric)
    return cell.suppressed or cell.value


def test_primary_suppression_is_one_to_four() -> None:
    assert [primary(n).suppressed for n in (0, 1, 4, 5, 7)] == [None, "small", "small", None,
                                                               None]
    assert primary(3).shown is None and primary(7).shown == 7


def test_complementary_suppression_protects_totals() -> None:
    values = {("a", "x"): 3, ("b", "x"): 9, ("c", "x"): 6, ("t", "x"): 18}
    result = protect(values, [(("t", "x"), (("a", "x"), ("b", "x"), ("c", "x")))])
    assert [result[k].suppressed for k in values] == ["small", None, "hidden", None]
    # a single group: the total would give the small cell away, so it is hidden
    alone = protect({("a", "x"): 2, ("t", "x"): 2}, [(("t", "x"), (("a", "x"),))])
    assert [c.suppressed for c in alone.values()] == ["small", "small"]
    # a hidden zero would not protect anything (3 + 0 = 3): the non-zero part is hidden
    mixed = protect({("a", "x"): 3, ("b", "x"): 0, ("c", "x"): 8, ("t", "x"): 11},
                    [(("t", "x"), (("a", "x"), ("b", "x"), ("c", "x")))])
    assert [c.suppressed for c in mixed.values()] == ["small", None, "hidden", None]


def test_no_constraint_is_left_with_one_hidden_cell() -> None:
    raw = {"a": {"reached": 7, "screened": 7, "level_high": 7, "handoffs": 3},
           "b": {"reached": 3, "screened": 3, "level_medium": 3},
           "c": {"reached": 40, "screened": 12, "level_low": 10, "level_urgent": 2,
                 "handoffs": 9}}
    table = breakdown_table(raw, {})
    rows = (*table.groups, TOTAL)
    constraints = [[(g, m) for g in rows] for m in METRICS]
    constraints += [[(r, "screened"), *((r, f"level_{lv}") for lv in LEVELS)] for r in rows]
    for members in constraints:
        assert sum(1 for g, m in members if table.cell(g, m).suppressed) != 1, members
    assert shown(table, "b", "reached") == "small" and shown(table, "a", "reached") == "hidden"
    assert shown(table, TOTAL, "reached") == 50
    assert shown(table, "c", "level_urgent") == "small"


def test_median_needs_five_cases() -> None:
    assert median_minutes([1, 2, 3, 4]) is None
    assert median_minutes([1, 2, 3, 4, 50]) == 3
    table = breakdown_table({"a": {"handoffs": 4}, "b": {"handoffs": 5}},
                            {"a": [1, 1, 1, 1], "b": [2, 4, 6, 8, 10]})
    assert table.medians == {"a": None, "b": 6, TOTAL: 2}


def test_csv_cells_cannot_be_formulas() -> None:
    assert [safe(v) for v in ("=SUM(A1)", "+1", "-1", "@x", "\tx", "ok", "<5")] == [
        "'=SUM(A1)", "'+1", "'-1", "'@x", "'\tx", "ok", "<5"]


def test_charts_are_accessible_svg_without_styles() -> None:
    data = [Datum("تيليجرام", 7, "7"), Datum("<b>x</b>", None, "<5")]
    svg = str(bar_chart(data, chart_id="c1", title="T", desc="D", rtl=True))
    assert 'role="img"' in svg and 'aria-labelledby="c1-title c1-desc"' in svg
    assert "<title id=\"c1-title\">T</title>" in svg and "style" not in svg
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert svg.count("<rect") == 1, "a suppressed bar has no height"
    line = str(line_chart([Datum("d1", 1, "1"), Datum("d2", None, "<5"), Datum("d3", 3, "3"),
                           Datum("d4", 4, "4")], chart_id="c2", title="T", desc="D"))
    assert line.count("<polyline") == 1 and line.count("<circle") == 3, "a gap, not a zero"
    ltr = str(bar_chart(data[:1], chart_id="c3", title="T", desc="D"))
    assert re.search(r'<rect x="170"', ltr) and not re.search(r'<rect x="170"', svg)


# --- in the browser ------------------------------------------------------------------------
@needs_chromium
async def test_outreach_sees_the_dashboard_in_the_browser(
    sanad_sqlite: Sanad, live_console: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    await seed(sanad_sqlite, utcnow())
    DOCS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="ar-EG")
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        await sign_in(page, live_console, "out")
        await page.wait_for_url("**/console/home")
        await page.click("nav a[href='/console/dashboard']")
        await page.wait_for_url("**/console/dashboard")
        assert await page.get_attribute("html", "dir") == "rtl"

        charts = page.locator("svg.chart")
        await expect(charts).to_have_count(5)
        for i in range(5):
            box = await charts.nth(i).bounding_box()
            assert box and box["width"] > 200 and box["height"] > 30
        assert await page.locator("svg.timeline polyline").count() >= 1
        assert await page.locator("svg.bars rect.bar").count() >= 5
        await expect(page.locator("#kpi-reached")).to_have_text("16")
        await expect(page.locator("#breakdown tr.total")).to_contain_text("16")
        fill = await page.eval_on_selector(
            "svg.bars rect.bar", "el => getComputedStyle(el).fill")
        assert fill == "rgb(11, 110, 99)", "the stylesheet styles the charts"

        await page.select_option("#days", "90")
        await page.select_option("#by", "governorate")
        await page.click("form.filters button")
        await page.wait_for_url("**/console/dashboard?days=90&by=governorate")
        await expect(page.locator("svg.chart")).to_have_count(5)
        await page.goto(live_console + "/console/dashboard?days=30&by=channel")
        await page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)
        await browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
