"""Time to first reply of `sanad chat` (a fresh process each run), with a warm model cache.

Prints one JSON object. Usage: python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def first_reply_seconds(workdir: Path, env: dict[str, str]) -> float:
    """Start `sanad chat --json`, send one line, stop the clock at the first output line."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat", "--json"], cwd=workdir, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("hello\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.stdin.close()
    proc.wait(timeout=30)
    if not line.startswith("{"):
        raise RuntimeError("no reply from sanad chat")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = {**os.environ, "SANAD_SECRET_KEY": "bench-secret-key-0123456789",
               "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
               "SANAD_CACHE_DIR": str(workdir / "cache")}
        cold = first_reply_seconds(workdir, env)  # trains the model, creates the schema
        warm = [first_reply_seconds(workdir, env) for _ in range(args.runs)]
    print(json.dumps({
        "benchmark": "startup", "cold_first_reply_s": round(cold, 3),
        "warm_first_reply_s": {"median": round(statistics.median(warm), 3),
                               "max": round(max(warm), 3), "runs": len(warm)},
        "target_warm_s": 1.5,
    }))


if __name__ == "__main__":
    main()
