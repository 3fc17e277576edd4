"""Prometheus metrics of the send budgets (``prometheus_client``'s default registry).

No personal data: labels are the budget's channel and the priority's name.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from bot.sendbudget.priority import Priority

GRANTED = Counter("sanad_send_budget_granted", "Sends granted by the send budget",
                  ["budget", "priority"])
WAIT = Histogram("sanad_send_budget_wait_seconds",
                 "Time a send waited in the send budget's queue", ["budget", "priority"],
                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0,
                          120.0))
FLOOD_WAITS = Counter("sanad_send_budget_flood_waits",
                      "Flood waits (HTTP 429, Graph rate errors) that paused a send budget",
                      ["budget"])


def _name(priority: int) -> str:
    try:
        return Priority(priority).name.lower()
    except ValueError:
        return str(priority)


def granted(budget: str, priority: int, waited: float) -> None:
    name = _name(priority)
    GRANTED.labels(budget, name).inc()
    WAIT.labels(budget, name).observe(max(0.0, waited))


def flood_wait(budget: str) -> None:
    FLOOD_WAITS.labels(budget).inc()
