"""Evaluation of an NLU on labelled examples (used by `sanad nlu test`, tests and bench)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from .rasa_data import Example
from .results import Language, ParseResult

EMERGENCY = "emergency"


def language_label(lang: Language) -> str:
    """"ar-Latn" for Arabizi, else the language code (the labels of langid.jsonl)."""
    return f"{lang.code}-Latn" if lang.code == "ar" and lang.script == "Latn" else lang.code


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = sorted(s * 1000.0 for s in seconds)
    return {"p50_ms": round(_percentile(ms, 0.50), 3), "p95_ms": round(_percentile(ms, 0.95), 3),
            "p99_ms": round(_percentile(ms, 0.99), 3), "max_ms": round(ms[-1], 3) if ms else 0.0}


def run(nlu: Any, examples: Sequence[Example]) -> tuple[list[ParseResult], list[float]]:
    """Parse every example (sync `parse_sync` if available, else the async `parse`)."""
    if hasattr(nlu, "parse_sync"):
        results, times = [], []
        for ex in examples:
            t0 = time.perf_counter()
            results.append(nlu.parse_sync(ex.text))
            times.append(time.perf_counter() - t0)
        return results, times

    async def _all() -> tuple[list[ParseResult], list[float]]:
        res, ts = [], []
        for ex in examples:
            t0 = time.perf_counter()
            res.append(await nlu.parse(ex.text))
            ts.append(time.perf_counter() - t0)
        return res, ts

    return asyncio.run(_all())


def score(examples: Sequence[Example], results: Sequence[ParseResult],
          latencies: Sequence[float] = ()) -> dict[str, Any]:
    """Accuracy, per-intent P/R/F1, top confusions, per-variety accuracy, emergency
    recall/precision and (when rows carry `lang`) language-id accuracy."""
    pairs = [(ex, res) for ex, res in zip(examples, results, strict=True) if ex.intent]
    report: dict[str, Any] = {"examples": len(pairs)}
    if pairs:
        gold = [str(ex.intent) for ex, _ in pairs]
        pred = [res.intent.name for _, res in pairs]
        correct = [g == p for g, p in zip(gold, pred, strict=True)]
        report["accuracy"] = round(sum(correct) / len(pairs), 4)
        per_intent = {}
        for name in sorted(set(gold) | set(pred)):
            tp = sum(g == name and p == name for g, p in zip(gold, pred, strict=True))
            n_pred, n_gold = pred.count(name), gold.count(name)
            prec = tp / n_pred if n_pred else 0.0
            rec = tp / n_gold if n_gold else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            per_intent[name] = {"precision": round(prec, 4), "recall": round(rec, 4),
                                "f1": round(f1, 4), "support": n_gold}
        report["per_intent"] = per_intent
        report["macro_f1"] = round(
            sum(v["f1"] for k, v in per_intent.items() if v["support"]) /
            max(1, sum(1 for v in per_intent.values() if v["support"])), 4)
        confusions = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p)
        report["confusions"] = [{"gold": g, "predicted": p, "count": c}
                                for (g, p), c in confusions.most_common(15)]
        by_variety: dict[str, list[bool]] = defaultdict(list)
        for (ex, _), ok in zip(pairs, correct, strict=True):
            if ex.variety:
                by_variety[ex.variety].append(ok)
        report["per_variety"] = {
            v: {"examples": len(oks), "accuracy": round(sum(oks) / len(oks), 4)}
            for v, oks in sorted(by_variety.items())}
        tp = sum(g == EMERGENCY and p == EMERGENCY for g, p in zip(gold, pred, strict=True))
        fn = sum(g == EMERGENCY and p != EMERGENCY for g, p in zip(gold, pred, strict=True))
        fp = sum(g != EMERGENCY and p == EMERGENCY for g, p in zip(gold, pred, strict=True))
        report["emergency"] = {
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "true_positives": tp, "false_negatives": fn, "false_positives": fp}
    with_lang = [(ex, res) for ex, res in zip(examples, results, strict=True) if ex.lang]
    if with_lang:
        oks = [language_label(res.language) == ex.lang for ex, res in with_lang]
        by_lang: dict[str, list[bool]] = defaultdict(list)
        for (ex, _), ok in zip(with_lang, oks, strict=True):
            by_lang[str(ex.lang)].append(ok)
        report["language_id"] = {
            "examples": len(oks), "accuracy": round(sum(oks) / len(oks), 4),
            "per_language": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_lang.items())}}
    if latencies:
        report["latency"] = latency_summary(latencies)
    return report


def format_report(report: dict[str, Any]) -> str:
    """Human-readable table of `score`'s result."""
    lines = [f"examples: {report.get('examples', 0)}"]
    if "accuracy" in report:
        lines.append(f"accuracy: {report['accuracy']:.4f}   macro F1: {report['macro_f1']:.4f}")
        lines += ["", f"{'intent':28} {'prec':>6} {'rec':>6} {'f1':>6} {'n':>5}"]
        for name, m in report["per_intent"].items():
            lines.append(f"{name:28} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} "
                         f"{m['support']:5d}")
        if report["per_variety"]:
            lines += ["", f"{'variety':12} {'accuracy':>8} {'n':>5}"]
            for v, m in report["per_variety"].items():
                lines.append(f"{v:12} {m['accuracy']:8.3f} {m['examples']:5d}")
        em = report["emergency"]
        fmt = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
        lines += ["", f"emergency: recall {fmt(em['recall'])}  precision {fmt(em['precision'])}"
                      f"  (tp {em['true_positives']}, fn {em['false_negatives']},"
                      f" fp {em['false_positives']})"]
        if report["confusions"]:
            lines += ["", "top confusions (gold -> predicted):"]
            lines += [f"  {c['gold']} -> {c['predicted']}: {c['count']}"
                      for c in report["confusions"]]
    if "language_id" in report:
        li = report["language_id"]
        per = ", ".join(f"{k} {v:.3f}" for k, v in li["per_language"].items())
        lines += ["", f"language id: {li['accuracy']:.4f} on {li['examples']} ({per})"]
    if "latency" in report:
        lat = report["latency"]
        lines += ["", f"latency: p50 {lat['p50_ms']:.3f} ms, p95 {lat['p95_ms']:.3f} ms, "
                      f"p99 {lat['p99_ms']:.3f} ms"]
    return "\n".join(lines)
