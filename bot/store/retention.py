"""Retention: every table that holds something about a person keeps it for a set time only.

One rule per table, with its period and what "past its time" means there, so that the whole
policy reads in one place (and in docs/privacy.md). ``SANAD_RETENTION_DAYS`` (90 by default)
is the period of personal data; what exists only for a mechanism has a period of its own:

=====================  =========================  ============================================
table                  kept for                   then
=====================  =========================  ============================================
screening_results      retention                  deleted
case_messages          retention                  deleted (the case keeps outcome, priority)
case_notes             retention after closing    deleted
outbox                 retention                  deleted, sent or not (payloads hold replies)
sessions               retention since last turn  deleted (conversation data, answers)
events                 retention                  unlinked from the person (counts stay)
users.address_enc      retention since last turn  cleared, unless subscribed or with an open
                                                  case (they still expect messages)
platform_messages      3 days                     deleted (Telegram deletes only 48 h back)
processed_inbound      retention                  deleted (de-duplication ids)
login_throttles        1 day after the last try   deleted
audit_log              1 year                     deleted (its own, longer period)
referrals.shared_enc   retention after it ended   cleared, with the chat token (the referral
                                                  keeps its codes and timeline for counts)
=====================  =========================  ============================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.schema import metadata

PLATFORM_MESSAGE_DAYS = 3
THROTTLE_DAYS = 1
AUDIT_DAYS = 365
OPEN_CASE = ("waiting", "claimed", "transferred")


@dataclass(frozen=True)
class Rule:
    table: str
    statement: Callable[[dict[str, Table], datetime, datetime], Any]
    """Builds the DELETE/UPDATE from the tables, the retention cutoff and now."""


def _older(table: str, column: str) -> Callable[[dict[str, Table], datetime, datetime], Any]:
    return lambda t, cutoff, now: delete(t[table]).where(t[table].c[column] < cutoff)


def _notes(t: dict[str, Table], cutoff: datetime, now: datetime) -> Any:
    notes, cases = t["case_notes"], t["cases"]
    closed = select(cases.c.id).where(cases.c.closed_at < cutoff)
    return delete(notes).where(notes.c.case_id.in_(closed))


def _events(t: dict[str, Table], cutoff: datetime, now: datetime) -> Any:
    events = t["events"]
    return (update(events).where(events.c.created_at < cutoff, events.c.user_id.is_not(None))
            .values(user_id=None))


def _addresses(t: dict[str, Table], cutoff: datetime, now: datetime) -> Any:
    users, subscriptions, cases = t["users"], t["subscriptions"], t["cases"]
    subscribed = exists().where(subscriptions.c.user_id == users.c.id)
    open_case = exists().where(cases.c.user_id == users.c.id, cases.c.status.in_(OPEN_CASE))
    return (update(users).where(users.c.last_active_at < cutoff, users.c.address_enc.is_not(None),
                                ~subscribed, ~open_case)
            .values(address_enc=None))


def _referrals(t: dict[str, Table], cutoff: datetime, now: datetime) -> Any:
    referrals = t["referrals"]
    return (update(referrals).where(referrals.c.closed_at < cutoff,
                                    referrals.c.shared_enc.is_not(None))
            .values(shared_enc=None, consent_token_enc=None))


def _since(days: int, table: str, column: str
           ) -> Callable[[dict[str, Table], datetime, datetime], Any]:
    return lambda t, cutoff, now: delete(t[table]).where(
        t[table].c[column] < now - timedelta(days=days))


RULES = (
    Rule("screening_results", _older("screening_results", "created_at")),
    Rule("case_messages", _older("case_messages", "created_at")),
    Rule("case_notes", _notes),
    Rule("outbox", _older("outbox", "created_at")),
    Rule("sessions", _older("sessions", "updated_at")),
    Rule("events", _events),
    Rule("users.address_enc", _addresses),
    Rule("platform_messages", _since(PLATFORM_MESSAGE_DAYS, "platform_messages", "created_at")),
    Rule("processed_inbound", _older("processed_inbound", "created_at")),
    Rule("login_throttles", _since(THROTTLE_DAYS, "login_throttles", "window_start")),
    Rule("audit_log", _since(AUDIT_DAYS, "audit_log", "at")),
    Rule("referrals.shared_enc", _referrals),
)


async def purge(db: AsyncSession, retention_days: int, now: datetime) -> dict[str, int]:
    """Apply every rule in the caller's transaction; rows affected per table."""
    tables = dict(metadata().tables)
    cutoff = now - timedelta(days=retention_days)
    counts = {}
    for rule in RULES:
        result = await db.execute(rule.statement(tables, cutoff, now))
        counts[rule.table] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return counts
