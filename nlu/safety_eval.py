"""Evaluation of the safety layer on labelled messages (`sanad nlu test` on a safety file).

What matters for a person in danger, per label and per variety:

* recall: of the messages that carry a label, the share the layer acted on;
* covered: of those, the share that got at least a protective answer of some kind (acting on
  the label, or asking "are you safe now?"), which is what ``grey`` is measured by;
* false alarms: of the hard negatives (messages labelled with nothing), the share that got an
  emergency, self-harm, minor or child-at-risk answer, or a safety question.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from .safeguard import SafetyAssessment, SafetyDetector
from .safety_model import LABELS, SafetyExample

PROTECTIVE = ("emergency", "self_harm", "minor", "child_at_risk")
"""Labels whose answer replaces what the user asked for: a false one is a false alarm."""


def _ratio(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _covered(label: str, found: SafetyAssessment) -> bool:
    if label in found.labels:
        return True
    if label in PROTECTIVE or label == "grey":
        return found.ask or bool(set(PROTECTIVE) & found.labels)
    return False


def _false_alarm(found: SafetyAssessment) -> bool:
    return found.ask or bool(set(PROTECTIVE) & found.labels)


def evaluate(detector: SafetyDetector,
             examples: Sequence[SafetyExample]) -> dict[str, Any]:
    """Recall, coverage and false alarms per label and per variety, plus age accuracy."""
    found = [detector.assess(e.text) for e in examples]
    per_label: dict[str, dict[str, Any]] = {}
    for label in LABELS:
        rows = [(e, f) for e, f in zip(examples, found, strict=True) if label in e.labels]
        if not rows:
            continue
        by_variety: dict[str, list[bool]] = defaultdict(list)
        for e, f in rows:
            by_variety[e.variety or "?"].append(label in f.labels)
        others = [f for e, f in zip(examples, found, strict=True) if label not in e.labels]
        per_label[label] = {
            "support": len(rows),
            "recall": _ratio(sum(label in f.labels for _, f in rows), len(rows)),
            "covered": _ratio(sum(_covered(label, f) for _, f in rows), len(rows)),
            "false_positive_rate": _ratio(sum(label in f.labels for f in others), len(others)),
            "recall_by_variety": {v: _ratio(sum(h), len(h)) for v, h in sorted(by_variety.items())},
        }
    negatives = [(e, f) for e, f in zip(examples, found, strict=True) if not e.labels]
    neg_by_variety: dict[str, list[bool]] = defaultdict(list)
    for e, f in negatives:
        neg_by_variety[e.variety or "?"].append(_false_alarm(f))
    aged = [(e, f) for e, f in zip(examples, found, strict=True) if e.age is not None]
    return {
        "examples": len(examples),
        "labels": per_label,
        "hard_negatives": {
            "support": len(negatives),
            "false_alarm_rate": _ratio(sum(_false_alarm(f) for _, f in negatives),
                                       len(negatives)),
            "by_variety": {v: _ratio(sum(h), len(h)) for v, h in sorted(neg_by_variety.items())},
        },
        "ages": {"support": len(aged),
                 "exact": _ratio(sum(f.age == e.age for e, f in aged), len(aged))},
    }


def format_safety_report(report: dict[str, Any]) -> str:
    """A plain-text table: one row per label, one column per variety."""
    varieties = sorted({v for row in report["labels"].values()
                        for v in row["recall_by_variety"]})

    def cell(value: float | None) -> str:
        return "   -  " if value is None else f"{value:6.3f}"

    lines = [f"safety examples: {report['examples']}",
             f"{'label':<20}{'n':>5} {'recall':>6} {'cover':>6} {'fpr':>6}  "
             + " ".join(f"{v:>7}" for v in varieties)]
    for label, row in report["labels"].items():
        lines.append(
            f"{label:<20}{row['support']:>5} {cell(row['recall'])} {cell(row['covered'])} "
            f"{cell(row['false_positive_rate'])}  "
            + " ".join(f"{cell(row['recall_by_variety'].get(v)):>7}" for v in varieties))
    neg = report["hard_negatives"]
    lines.append(f"{'hard negatives':<20}{neg['support']:>5} false alarms "
                 f"{cell(neg['false_alarm_rate'])}  "
                 + " ".join(f"{cell(neg['by_variety'].get(v)):>7}" for v in varieties))
    ages = report["ages"]
    lines.append(f"stated ages: {ages['support']}, read exactly {cell(ages['exact'])}")
    return "\n".join(lines)
