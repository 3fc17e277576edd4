"""NLU benchmark: prints one JSON object.

  python bench/nlu.py [--data nlu/tests/heldout.jsonl] [--repeat 5] [--url http://127.0.0.1:5005]

In-process (embedded backend, and the safety layer likewise): model load time cold (empty
cache: trains) and warm (cache hit), parse latency p50/p95/p99 and parses/s on one core, the
parse time of one 20,000-character message (`long_input_ms`),
held-out accuracy. With --url: the
same texts POSTed to {url}/model/parse (a Rasa server, or `sanad serve`): HTTP latency and
the accuracy of the server's raw answers, plus the accuracy through nlu.RasaNLU (the server
with Sanad's safety net, yes/no lexicon and langid on top).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This file is bench/nlu.py: with bench/ on sys.path, `import nlu` would import this very
# file instead of the package. Drop bench/ and put the repository root first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

from nlu import EmbeddedNLU, RasaNLU  # noqa: E402
from nlu.evaluate import latency_summary, score  # noqa: E402
from nlu.rasa_client import RasaUnavailable, map_rasa_response  # noqa: E402
from nlu.rasa_data import (  # noqa: E402
    Example,
    read_examples,
    training_files,
)
from nlu.results import Language, ParseResult  # noqa: E402
from nlu.safeguard import EmbeddedSafety  # noqa: E402
from nlu.safety_eval import evaluate  # noqa: E402
from nlu.safety_model import load_or_train, read_safety_jsonl  # noqa: E402
from nlu.safety_model import training_files as safety_training_files  # noqa: E402


def pin_to_one_core() -> int | None:
    """Measure on one core, as deployed per worker process."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    return None


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("examples", "accuracy", "macro_f1", "per_variety", "emergency", "language_id")
    out = {k: report[k] for k in keep if k in report}
    if "per_variety" in out:
        out["per_variety"] = {k: v["accuracy"] for k, v in out["per_variety"].items()}
    return out


def bench_embedded(examples: list[Example], repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sanad-bench-") as tmp:
        t0 = time.perf_counter()
        EmbeddedNLU.load(cache_dir=Path(tmp))
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        nlu = EmbeddedNLU.load(cache_dir=Path(tmp))
        warm = time.perf_counter() - t0
    texts = [e.text for e in examples]
    for text in texts:  # warm-up: lazy structures, CPU caches
        nlu.parse_sync(text)
    latencies: list[float] = []
    t_all = time.perf_counter()
    for _ in range(repeat):
        for text in texts:
            t0 = time.perf_counter()
            nlu.parse_sync(text)
            latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    results = [nlu.parse_sync(t) for t in texts]
    long_input: list[float] = []
    for _ in range(5):  # a 20,000-character message (was a wall-clock test, < 500 ms)
        t0 = time.perf_counter()
        nlu.parse_sync("help " * 4000)
        long_input.append(time.perf_counter() - t0)
    return {
        "load_cold_s": round(cold, 3),
        "load_warm_s": round(warm, 4),
        "long_input_ms": round(1000 * statistics.median(long_input), 2),
        "parses": len(latencies),
        "parses_per_s": round(len(latencies) / total, 1),
        **latency_summary(latencies),
        **_summary(score(examples, results)),
    }


async def _bench_http(url: str, examples: list[Example], fallback: EmbeddedNLU,
                      timeout: float) -> dict[str, Any]:
    import aiohttp

    endpoint = url.rstrip("/") + "/model/parse"
    raw_results: list[ParseResult] = []
    latencies: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        for ex in examples:
            t0 = time.perf_counter()
            try:
                async with session.post(endpoint, json={"text": ex.text.lstrip("/")}) as resp:
                    data = await resp.json(content_type=None)
                intent, ranking = map_rasa_response(data)
            except (TimeoutError, aiohttp.ClientError, ValueError, RasaUnavailable):
                failures += 1
                intent, ranking = map_rasa_response({"intent": {"name": "nlu_fallback"}})
            latencies.append(time.perf_counter() - t0)
            raw_results.append(ParseResult(ex.text, intent, ranking[:10],
                                           Language("und", "Zyyy", 0.0)))
    rasa_nlu = RasaNLU(url, fallback=fallback, timeout=timeout)
    try:
        wrapped = [await rasa_nlu.parse(ex.text) for ex in examples]
    finally:
        await rasa_nlu.aclose()
    return {
        "url": endpoint,
        "failures": failures,
        **latency_summary(latencies),
        "server_answer": _summary(score(examples, raw_results)),
        "with_sanad_safety_net": _summary(score(examples, wrapped)),
    }


def bench_safety(path: Path, repeat: int) -> dict[str, Any]:
    """The safety layer (nlu.safeguard): training time on an empty cache, warm load, and the
    latency of one assessment over the held-out safety set (rambles of 1,200 characters
    included), plus its recall and false alarms."""
    examples = read_safety_jsonl(path)
    files = (safety_training_files(), training_files(ROOT / "nlu"))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        load_or_train(*files, Path(tmp))
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        detector = EmbeddedSafety(load_or_train(*files, Path(tmp)))
        warm = time.perf_counter() - t0
    latencies = []
    for _ in range(repeat):
        for ex in examples:
            t0 = time.perf_counter()
            detector.assess(ex.text)
            latencies.append(time.perf_counter() - t0)
    report = evaluate(detector, examples)
    return {
        "data": str(path), "load_cold_s": round(cold, 2), "load_warm_s": round(warm, 3),
        **latency_summary(latencies),
        "recall": {k: v["recall"] for k, v in report["labels"].items()},
        "false_alarm_rate": report["hard_negatives"]["false_alarm_rate"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "nlu" / "tests" / "heldout.jsonl")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", help="also benchmark POST {url}/model/parse")
    parser.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout (s)")
    parser.add_argument("--safety-data", type=Path,
                        default=ROOT / "nlu" / "tests" / "safety_heldout.jsonl")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU core")
    args = parser.parse_args(argv)

    cpu = None if args.no_pin else pin_to_one_core()
    examples = read_examples(args.data)
    out: dict[str, Any] = {"data": str(args.data), "cpu": cpu,
                           "python": sys.version.split()[0]}
    out["embedded"] = bench_embedded(examples, max(1, args.repeat))
    out["safety"] = bench_safety(args.safety_data, max(1, args.repeat))
    if args.url:
        fallback = EmbeddedNLU.load()
        out["http"] = asyncio.run(_bench_http(args.url, examples, fallback, args.timeout))
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
