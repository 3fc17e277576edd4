"""``/metrics`` with ``prometheus_client``: two ``serve --reuse-port`` processes report the
same, correct totals (multiprocess mode); queue, SLA and outbox gauges come from the database;
the token still guards the route; nothing personal is exposed; the JSON logs of real processes
parse and carry request ids."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.metrics import Metrics, database_gauges
from bot.store.db import create_engine, upgrade
from bot.store.models import Case, OutboxMessage, User
from tests.reliability.support import free_port, process, sanad_env, wait_healthy

TOKEN = "metrics-token-0123456789"
SECRET_TEXT = "my passport was taken 01001234567"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counters_and_histograms_render_with_the_default_registry() -> None:
    metrics = Metrics()
    metrics.inc("sanad_things_total", "Things", kind="a")
    metrics.inc("sanad_things_total", "Things", amount=2, kind="a")
    metrics.observe("sanad_wait_seconds", 0.3, "Waits", route="/x")
    found = samples(metrics.render().decode())
    assert found[("sanad_things_total", (("kind", "a"),))] == 3
    assert found[("sanad_wait_seconds_count", (("route", "/x"),))] == 1
    assert found[("sanad_wait_seconds_bucket", (("le", "0.5"), ("route", "/x")))] == 1
    assert found[("sanad_wait_seconds_bucket", (("le", "0.25"), ("route", "/x")))] == 0
    assert any(name.startswith("python_") or name.startswith("process_")
               for name, _ in found), "the default registry (other packages' metrics) is there"
    assert metrics.counters[("sanad_things_total", (("kind", "a"),))] == 3


async def test_queue_sla_and_outbox_gauges_come_from_the_database(database_url: str) -> None:
    engine = create_engine(database_url)
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    try:
        await upgrade(engine)
        async with async_sessionmaker(engine)() as db, db.begin():
            user = User(key="k" * 64, channel="telegram", created_at=now, last_active_at=now)
            db.add(user)
            await db.flush()
            for minutes, status, priority, escalated in [
                (50, "waiting", "urgent", True), (20, "waiting", "urgent", False),
                (5, "claimed", "high", False), (90, "closed", "urgent", False),
            ]:
                db.add(Case(alias="A-1", status=status, priority=priority, priority_rank=0,
                            reason="request", language="ar", channel="telegram",
                            created_at=now - timedelta(minutes=minutes), labels=[],
                            escalated_at=now if escalated else None))
            for n, status in enumerate(["pending", "pending", "sending", "sent"]):
                db.add(OutboxMessage(user_id=user.id, channel="telegram", kind="reply",
                                     idempotency_key=f"key-{n}", payload_enc=b"x",
                                     status=status, next_attempt_at=now, created_at=now))
        snapshot = await database_gauges(engine, now=now)
    finally:
        await engine.dispose()
    metrics = Metrics()
    found = samples(metrics.render(snapshot).decode())
    assert found[("sanad_cases_open", (("priority", "urgent"), ("status", "waiting")))] == 2
    assert found[("sanad_cases_open", (("priority", "high"), ("status", "claimed")))] == 1
    assert ("sanad_cases_open", (("priority", "urgent"), ("status", "closed"))) not in found
    assert found[("sanad_cases_oldest_waiting_seconds", (("priority", "urgent"),))] == 3000
    assert found[("sanad_cases_past_sla", ())] == 1
    assert found[("sanad_outbox_backlog", (("channel", "telegram"), ("status", "pending")))] == 2
    assert found[("sanad_outbox_backlog", (("channel", "telegram"), ("status", "sending")))] == 1


async def test_two_processes_on_one_port_count_together(tmp_path: Path, nlu_cache: Path) -> None:
    port = free_port()
    metrics_dir = tmp_path / "metrics"  # made by serve at start
    env = sanad_env(f"sqlite+aiosqlite:///{tmp_path / 'sanad.db'}",
                    SANAD_CACHE_DIR=str(nlu_cache), SANAD_LOG_FORMAT="json",
                    SANAD_METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--reuse-port"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with process(args, env, tmp_path / "serve-1.log") as one, \
            process(args, env, tmp_path / "serve-2.log") as two:
        await wait_healthy(port, one)
        await wait_healthy(port, two)
        # /healthz on the shared port may be answered by either process: wait until each
        # says it listens, or a slow second start leaves every request to the first one.
        for log in ("serve-1.log", "serve-2.log"):
            await wait_for_line(tmp_path / log, "listening")
        # a new connection per request: the kernel spreads them over both processes
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            async def parse() -> int:
                async with http.post(f"http://127.0.0.1:{port}/model/parse",
                                     json={"text": SECRET_TEXT}) as response:
                    await response.read()
                    return response.status

            statuses = [await parse() for _ in range(30)]
            ok = statuses.count(200)
            assert ok >= 20, statuses
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 401  # SANAD_METRICS_TOKEN still guards it
            scrapes = []
            for _ in range(8):
                async with http.get(f"http://127.0.0.1:{port}/metrics", headers=auth) as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith("text/plain")
                    scrapes.append(await response.text())
        assert one.proc is not None and two.proc is not None
        pids = {one.proc.pid, two.proc.pid}
        writers = {int(m.group(1)) for f in metrics_dir.iterdir()
                   if (m := re.search(r"_(\d+)\.db$", f.name))}
        assert pids <= writers, "both processes served requests (and wrote their counts)"
    for text in scrapes:  # whichever process answered, the totals are the stack's
        found = samples(text)
        assert found[("sanad_parse_requests_total", ())] == ok
        assert sum(v for (name, labels), v in found.items()
                   if name == "sanad_request_seconds_count"
                   and ("route", "/model/parse") in labels) == len(statuses)
        assert ("sanad_outbox_backlog", (("channel", "telegram"), ("status", "pending"))) \
            not in found  # gauges present as families, no rows yet
        assert "sanad_cases_open" in text
        assert "passport" not in text and "01001234567" not in text
    for log in ("serve-1.log", "serve-2.log"):
        lines = (tmp_path / log).read_text().splitlines()
        entries = [orjson.loads(line) for line in lines if line.strip()]  # every line is JSON
        listening = [e for e in entries if "listening" in str(e["message"])]
        assert listening and listening[0]["level"] == "INFO"
        assert SECRET_TEXT not in "\n".join(lines) and "01001234567" not in "\n".join(lines)


def test_several_scrapes_in_a_row_do_not_double_count() -> None:
    metrics = Metrics()
    metrics.inc("sanad_x_total", "X")
    first = samples(metrics.render().decode())
    second = samples(metrics.render().decode())
    assert first[("sanad_x_total", ())] == second[("sanad_x_total", ())] == 1


def test_a_label_clash_is_logged_not_raised() -> None:
    metrics = Metrics()
    metrics.inc("sanad_y_total", "Y", kind="a")
    metrics.inc("sanad_y_total", "Y", outcome="b")  # a bug somewhere: the turn must go on
    assert samples(metrics.render().decode())[("sanad_y_total", (("kind", "a"),))] == 1


async def wait_for_line(log: Path, words: str, attempts: int = 1200) -> None:
    """Until ``words`` appear in a process's log (bounded: a start that never logs fails)."""
    for _ in range(attempts):
        if log.exists() and words in log.read_text(encoding="utf-8", errors="replace"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{log.name}: no {words!r} line")
