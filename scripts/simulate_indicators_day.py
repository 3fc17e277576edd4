"""A synthetic day of 1,000 people, to show what the daily indicators look like.

    .venv/bin/python scripts/simulate_indicators_day.py [--people 1000] [--seed 7] [--db URL]

Writes users, events, cases and referral events for 2026-12-01 (Cairo time) into a fresh
SQLite database (or ``--db``), then prints the suppressed table (markdown) and a
differentially private release's totals. Synthetic data only: the proportions below are
illustrative, not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from datetime import date, timedelta
from pathlib import Path

from bot.store.db import transaction
from bot.store.models import Case, EventRecord, User
from bot.store.repository import utcnow
from handoff.indicators.daily import AREA_METRICS, TOTAL, build_daily, day_window
from handoff.indicators.export import shown
from handoff.indicators.release import release

DAY = date(2026, 12, 1)
PLACES = {"cairo": 0.3, "giza": 0.2, "alexandria": 0.12, "sharqia": 0.08, "aswan": 0.05,
          "matrouh": 0.03, None: 0.22}
CHANNELS = {"telegram": 0.45, "whatsapp": 0.55}
PARTNERS = ("moss_shelter", "nccm_16000", "legal_aid_ngo", "erc_psychosocial")


def pick(rng: random.Random, weights: dict) -> object:  # type: ignore[type-arg]
    return rng.choices(list(weights), weights=list(weights.values()))[0]


async def simulate(url: str, people: int, seed: int) -> None:
    rng = random.Random(seed)
    start, _ = day_window(DAY)
    async with transaction(url) as db:
        referral = 0
        for i in range(people):
            at = start + timedelta(seconds=rng.randrange(86_400))
            channel = str(pick(rng, CHANNELS))
            user = User(key=f"sim-{i}", channel=channel, language="ar", language_locked=False,
                        governorate=pick(rng, PLACES), unreachable=False,
                        created_at=at - timedelta(minutes=rng.randrange(0, 90)),
                        last_active_at=at)
            db.add(user)
            await db.flush()

            def event(name: str, when: object = at, _u: User = user,
                      _c: str = channel, **data: object) -> None:
                db.add(EventRecord(user_id=_u.id, name=name, channel=_c, language="ar",
                                   data=data, created_at=when))

            if rng.random() < 0.35:
                level = rng.choices(("low", "medium", "high", "urgent"), (50, 30, 15, 5))[0]
                event("ScreeningCompleted", risk_level=level, score=0)
            else:
                level = None
            if rng.random() < 0.04:
                event("MinorDisclosed")
            if rng.random() < 0.01:
                event("ChildAtRiskReported")
            wants = level in ("high", "urgent") or rng.random() < 0.03
            if not wants:
                continue
            priority = "urgent" if level == "urgent" else "high"
            wait = timedelta(minutes=rng.expovariate(1 / 12))
            db.add(Case(user_id=user.id, alias=f"S-{i}", status="claimed", priority=priority,
                        priority_rank=0, reason="screening", risk_level=level, language="ar",
                        channel=channel, assignee="cw", created_at=at, claimed_at=at + wait))
            if rng.random() < 0.6:
                referral += 1
                ref = {"referral_id": referral, "service_id": "shelter",
                       "partner_id": rng.choice(PARTNERS), "urgency": priority}
                event("ReferralProposed", **ref)
                if rng.random() < 0.8:
                    event("ReferralConsented", **ref)
                    sent = at - timedelta(hours=rng.randrange(1, 72))
                    event("ReferralSent", sent, **ref)
                    if rng.random() < 0.85:
                        event("ReferralAccepted", **ref)
                        if rng.random() < 0.6:
                            event("ReferralCompleted", outcome="service_delivered", **ref)
    async with transaction(url) as db:
        figures = await build_daily(db, DAY, sla={"urgent": timedelta(minutes=5),
                                                  "high": timedelta(minutes=30)},
                                    now=utcnow())
        published = await release(db, figures, epsilon=0.5, budget=1.0, released_by="sim",
                                  now=utcnow())
    columns = ("reached", "screened", "level_high", "level_urgent", "minors", "handoffs",
               "sla_breaches", "referrals_proposed", "referrals_consented",
               "referrals_accepted", "services_delivered")
    print("| area | " + " | ".join(columns) + " | median min to handoff |")
    print("|---" * (len(columns) + 2) + "|")
    table = figures.areas
    for row in (*table.rows, TOTAL):
        label = "total" if row == TOTAL else row.replace("|", " · ")
        cells = " | ".join(str(shown(table.cell(row, m))) for m in columns)
        median = table.medians[row]["minutes_to_handoff"]
        print(f"| {label} | {cells} | {median if median is not None else 'n<5'} |")
    print()
    print("| partner | proposed | consented | accepted | completed | services_delivered | "
          "median h to service |")
    print("|---|---|---|---|---|---|---|")
    partners = figures.partners
    for row in (*partners.rows, TOTAL):
        cells = " | ".join(str(shown(partners.cell(row, m))) for m in
                           ("proposed", "consented", "accepted", "completed",
                            "services_delivered"))
        median = partners.medians[row]["hours_to_service"]
        print(f"| {'total' if row == TOTAL else row} | {cells} | "
              f"{median if median is not None else 'n<5'} |")
    print()
    true_total = {m: table.cell(TOTAL, m).value for m in AREA_METRICS}
    print(f"DP release (ε={published.epsilon}, scale={published.scale:g}): "
          "national totals, true → released")
    for metric in ("reached", "screened", "handoffs", "services_delivered"):
        print(f"  {metric}: {true_total[metric]} → {published.figures['total'][metric]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite+aiosqlite:///{Path(tmp) / 'day.db'}"
        asyncio.run(simulate(url, args.people, args.seed))


if __name__ == "__main__":
    main()
