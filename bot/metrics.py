"""Prometheus metrics (``prometheus_client``). Labels are fixed vocabularies: never user data.

Counters and histograms live in a ``CollectorRegistry``: ``sanad serve`` uses the process's
default registry (:meth:`Metrics.for_process`), where other packages register theirs too; tests
get a private one. With ``PROMETHEUS_MULTIPROC_DIR`` set (several ``serve --reuse-port``
processes, or ``serve`` plus ``worker``), every process writes its values to files in that
directory and ``/metrics`` adds them all up, so whichever process answers the scrape reports
the whole stack. Clear the directory before the stack starts (``docs/deploy.md``).

Queue, SLA and outbox figures are not counted but read from the database at scrape time
(:func:`database_gauges`): every process sees the same numbers, with no double counting.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from bot.store.models import Case, OutboxMessage

log = logging.getLogger(__name__)

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds, webhook in to reply out: Telegram retries a webhook after ~60 s without an answer."""


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def prepare_multiprocess_dir() -> None:
    """Create ``PROMETHEUS_MULTIPROC_DIR`` if missing (before any metric is touched): every
    count would otherwise fail on the missing directory."""
    directory = multiprocess_dir()
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)


class Metrics:
    """The counters and histograms a process records; ``counters`` keeps this process's own
    counts too (tests read them)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self._counters: dict[str, PromCounter] = {}
        self._histograms: dict[str, PromHistogram] = {}

    @staticmethod
    @cache
    def for_process() -> Metrics:
        """The process's metrics, in the default registry (one per process by nature)."""
        return Metrics(prometheus_client.REGISTRY)

    def inc(self, name: str, help_text: str = "", amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.counters[(name, key)] += amount  # type: ignore[assignment]
        try:
            counter = self._counters.get(name)
            if counter is None:
                counter = self._counters[name] = PromCounter(
                    name, help_text or name, [k for k, _ in key], registry=self.registry)
            (counter.labels(**labels) if labels else counter).inc(amount)
        except ValueError as exc:  # a clash of names or labels: a bug, never a failed turn
            log.error("metrics: cannot count %s (%s)", name, type(exc).__name__)

    def observe(self, name: str, seconds: float, help_text: str = "",
                buckets: Sequence[float] = LATENCY_BUCKETS, **labels: str) -> None:
        """One duration into histogram ``name`` (seconds)."""
        try:
            histogram = self._histograms.get(name)
            if histogram is None:
                histogram = self._histograms[name] = PromHistogram(
                    name, help_text or name, sorted(labels), buckets=buckets,
                    registry=self.registry)
            (histogram.labels(**labels) if labels else histogram).observe(seconds)
        except ValueError as exc:
            log.error("metrics: cannot observe %s (%s)", name, type(exc).__name__)

    def render(self, *extra: Collector) -> bytes:
        """The text exposition: every process's values in multiprocess mode, else this
        registry and the default one (other packages' metrics); plus ``extra`` collectors."""
        registries: list[CollectorRegistry] = []
        if multiprocess_dir():
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            registries.append(merged)
        else:
            registries.append(self.registry)
            if self.registry is not prometheus_client.REGISTRY:
                registries.append(prometheus_client.REGISTRY)
        if extra:
            snapshot = CollectorRegistry()
            for collector in extra:
                snapshot.register(collector)
            registries.append(snapshot)
        return b"".join(generate_latest(registry) for registry in registries)

    @staticmethod
    def process_exited() -> None:
        """In multiprocess mode, drop this process's live gauges (counters stay counted)."""
        directory = multiprocess_dir()
        if directory and os.path.isdir(directory):
            multiprocess.mark_process_dead(os.getpid(), directory)


class Snapshot(Collector):
    """Gauges read at scrape time (queue, SLA, outbox): a fixed list of metric families."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


async def database_gauges(engine: Any, now: datetime | None = None) -> Snapshot:
    """Open cases by status and priority, the age of the oldest unclaimed case, cases past
    their SLA (escalated, still unclaimed) and the outbox backlog by channel and status.
    Counts and ages only: no ids, no aliases."""
    now = now or datetime.now(UTC)
    cases = GaugeMetricFamily("sanad_cases_open", "Open handoff cases by status and priority",
                              labels=["status", "priority"])
    oldest = GaugeMetricFamily("sanad_cases_oldest_waiting_seconds",
                               "Age of the oldest unclaimed case, by priority",
                               labels=["priority"])
    overdue = GaugeMetricFamily("sanad_cases_past_sla",
                                "Unclaimed cases escalated for passing their SLA")
    backlog = GaugeMetricFamily("sanad_outbox_backlog",
                                "Outbox messages not yet sent, by channel and status",
                                labels=["channel", "status"])
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Case.status, Case.priority, func.count(), func.min(Case.created_at))
            .where(Case.status != "closed").group_by(Case.status, Case.priority))
        for status, priority, count, first in rows:
            cases.add_metric([status, priority], count)
            if status == "waiting" and first is not None:
                first = first if first.tzinfo else first.replace(tzinfo=UTC)
                oldest.add_metric([priority], max(0.0, (now - first).total_seconds()))
        overdue.add_metric([], await conn.scalar(
            select(func.count()).select_from(Case)
            .where(Case.status == "waiting", Case.escalated_at.is_not(None))) or 0)
        rows = await conn.execute(
            select(OutboxMessage.channel, OutboxMessage.status, func.count())
            .where(OutboxMessage.status.in_(("pending", "sending", "held")))
            .group_by(OutboxMessage.channel, OutboxMessage.status))
        for channel, status, count in rows:
            backlog.add_metric([channel, status], count)
    return Snapshot([cases, oldest, overdue, backlog])
