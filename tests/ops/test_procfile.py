"""``honcho start`` with the repository's ``Procfile`` (what Heroku, Dokku and foreman read):
web and worker come up on a fresh database, both migrating at once, and stay up; SIGTERM
stops them cleanly. A slower integration test (~30 s), kept in the suite."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.reliability.support import REPO, free_port, sanad_env

UP_FOR_S = 20.0
pytestmark = pytest.mark.slow


def procfile_processes() -> dict[str, str]:
    entries = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def test_the_procfile_has_no_process_that_exits_normally() -> None:
    processes = procfile_processes()
    assert set(processes) == {"web", "worker"}, processes
    assert "$PORT" in processes["web"]


async def test_honcho_start_brings_up_web_and_worker(tmp_path: Path, nlu_cache: Path) -> None:
    port = free_port()
    env = sanad_env(f"sqlite+aiosqlite:///{tmp_path / 'sanad.db'}",
                    SANAD_CACHE_DIR=str(nlu_cache), SANAD_LOG_FORMAT="json",
                    PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    (tmp_path / "metrics").mkdir()
    honcho = Path(sys.executable).with_name("honcho")
    log = tmp_path / "honcho.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(honcho), "-f", str(REPO / "Procfile"), "-d", str(REPO),
                                 "-e", os.devnull, "start", "-p", str(port), "--no-colour"],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        statuses: list[int] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            deadline = time.monotonic() + 90
            while not statuses:  # start-up: migrate (both at once), load the NLU
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            statuses.append(200)
                except aiohttp.ClientError:
                    await asyncio.sleep(0.2)
            up_since = time.monotonic()
            while time.monotonic() - up_since < UP_FOR_S:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    statuses.append(response.status)
                assert proc.poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.5)
        assert set(statuses) == {200} and len(statuses) > 20
        output = log.read_text()
        assert "worker: retention done" in output, output[-3000:]  # the worker ran its jobs
        assert "sanad serve listening" in output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # honcho passes it on to web and worker
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log.read_text()
    assert "Traceback" not in output
    for name in ("web.1", "worker.1"):  # both stopped cleanly on SIGTERM, not killed
        assert f"{name} stopped (rc=0)" in output, output[-3000:]
