"""Mutation testing of the safety-critical modules with mutmut 3, in a scratch copy of the tree.

mutmut writes a ``mutants/`` folder next to the sources, so it never runs in the work tree:
this script copies the repository (without .git, .venv, mutants) to ``--scratch``, runs
``mutmut run`` there with ``[tool.mutmut]`` from pyproject.toml (the four modules and their
fast tests), then applies ``HAND_MUTANTS`` (what mutmut does not mutate: module constants,
properties, dataclass defaults) one at a time, and prints killed / survived per module as
JSON (``--out`` also writes it).

    .venv/bin/python bench/mutation.py                     # about 5 minutes on 2 cores
    .venv/bin/python bench/mutation.py --out bench/mutation.json

Mutants judged equivalent (no test can tell them from the original) are listed in
``EQUIVALENT`` with the reason; the score is given with and without them. Their names are
mutmut's and stay valid while the module's source does not change: after an edit, check them
with ``mutmut show NAME`` in the scratch copy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", ".venv", "mutants", "__pycache__", "*.egg-info",
                                ".pytest_cache", ".mypy_cache", ".ruff_cache", ".sanad*")
DETECTED = {"killed", "timeout", "segfault"}

EQUIVALENT: dict[str, str] = {
    "bot.flows.screening_score.x_score__mutmut_29":
        "`>` -> `>=` between a red flag's level and the current one: when they are equal the "
        "mutant assigns the same level again, which changes nothing",
    "nlu.safety.xǁSafetyNetǁ_blocked__mutmut_4":
        "text.count(' ', None, start): a start of None is 0",
    "nlu.safety.xǁSafetyNetǁ_blocked__mutmut_10":
        "spaces counted from position 1 instead of 0: the rules read normalised text, which "
        "never begins with a space (normalize strips it; the Arabizi skeleton text is joined "
        "from the tokens)",
    "nlu.safety.xǁSafetyNetǁfired__mutmut_9":
        "the Arabizi skeleton text is recomputed for each keyed rule instead of once: the same "
        "value, only slower",
    "nlu.safety.xǁSafetyNetǁload__mutmut_2":
        "read_text(encoding=None) uses the locale's encoding: UTF-8 here, in CI and in "
        "production (Python switches the C/POSIX locale to UTF-8 by itself, PEP 538/540)",
    "nlu.safety.xǁSafetyNetǁload__mutmut_10":
        "'UTF-8' and 'utf-8' name the same codec",
}


# mutmut 3 mutates function bodies only: not module constants, not @property bodies, not
# dataclass defaults. These hand-written mutants cover what it leaves out; each is applied
# alone in the scratch copy and must fail its test file.
HAND_MUTANTS: list[tuple[str, str, str, str]] = [
    # (file, original, mutant, tests)
    ("handoff/policy.py", 'CASE_ROLES = ("caseworker", "supervisor")',
     'CASE_ROLES = ("caseworker",)', "tests/handoff/test_policy_pinned.py"),
    ("handoff/policy.py", 'DASHBOARD_ROLES = ("supervisor", "outreach", "admin")',
     'DASHBOARD_ROLES = ("supervisor", "admin")', "tests/handoff/test_policy_pinned.py"),
    ("handoff/policy.py", 'CAMPAIGN_ROLES = ("outreach", "supervisor", "admin")',
     'CAMPAIGN_ROLES = ("outreach", "admin")', "tests/handoff/test_policy_pinned.py"),
    ("handoff/policy.py", 'UNCLAIMED = ("waiting", "transferred")', 'UNCLAIMED = ("waiting",)',
     "tests/handoff/test_policy_pinned.py"),
    ("handoff/policy.py", 'return self.role == "supervisor"', "return self.role in CASE_ROLES",
     "tests/handoff/test_policy_pinned.py"),
    ("handoff/policy.py", 'return self.role == "admin"', 'return self.role != "caseworker"',
     "tests/handoff/test_policy_pinned.py"),
    ("nlu/safety.py", "BLOCKER_WINDOW_TOKENS = 3", "BLOCKER_WINDOW_TOKENS = 4",
     "tests/nlu/test_safety_rules_pinned.py"),
    ("nlu/safety.py", "BLOCKER_WINDOW_TOKENS = 3", "BLOCKER_WINDOW_TOKENS = 2",
     "tests/nlu/test_safety_rules_pinned.py"),
    ("nlu/safety.py", "MAX_SAFETY_CHARS = 2000", "MAX_SAFETY_CHARS = 2001",
     "tests/nlu/test_safety_rules_pinned.py"),
    ("bot/flows/screening_score.py", 'OFFER_PERSON_LEVELS = frozenset({"high", "urgent"})',
     'OFFER_PERSON_LEVELS = frozenset({"urgent"})', "tests/test_screening_scoring.py"),
    ("bot/flows/screening_score.py", '"medium": "normal"', '"medium": "high"',
     "tests/test_screening_scoring.py"),
    ("bot/flows/screening_score.py", "ADULT_AGE = 18", "ADULT_AGE = 17",
     "tests/test_screening_scoring.py"),
    ("bot/flows/screening_score.py", "MIN_AGE_ANSWER, MAX_AGE_ANSWER = 5, 100",
     "MIN_AGE_ANSWER, MAX_AGE_ANSWER = 5, 99", "tests/test_screening_scoring.py"),
    ("bot/flows/screening_score.py", 'LEVELS = ("low", "medium", "high", "urgent")',
     'LEVELS = ("low", "high", "medium", "urgent")', "tests/test_screening_scoring.py"),
    ("bot/flood.py", "noticed: float = field(default=-1e9)",
     "noticed: float = field(default=0.0)", "tests/test_flood_pinned.py"),
]


def run_hand_mutants(scratch: Path) -> dict[str, dict]:
    """Apply each hand-written mutant alone to the scratch copy and run its tests."""
    env = {**os.environ, "PYTHONPATH": str(scratch)}  # the copy, not the editable install
    report: dict[str, dict] = {}
    for path, original, mutant, tests in HAND_MUTANTS:
        source_file = scratch / path
        source = source_file.read_text(encoding="utf-8")
        if original not in source:
            raise SystemExit(f"{path}: {original!r} is gone; update HAND_MUTANTS")
        source_file.write_text(source.replace(original, mutant, 1), encoding="utf-8")
        try:
            failed = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", tests],
                cwd=scratch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ).returncode != 0
        finally:
            source_file.write_text(source, encoding="utf-8")
        module = path.removesuffix(".py").replace("/", ".")
        entry = report.setdefault(module, {"mutants": 0, "killed": 0, "surviving": []})
        entry["mutants"] += 1
        entry["killed"] += failed
        if not failed:
            entry["surviving"].append(f"{original} -> {mutant}")
    return report


def copy_tree(scratch: Path) -> None:
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(ROOT, scratch, ignore=IGNORE, symlinks=True)


def mutmut(scratch: Path, *args: str, capture: bool = False) -> str:
    done = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=scratch, check=True,
                          text=True, stdout=subprocess.PIPE if capture else subprocess.DEVNULL)
    return done.stdout or ""


def results(scratch: Path) -> dict[str, str]:
    """Mutant name -> status ("killed", "survived", "no tests", "timeout", ...)."""
    out: dict[str, str] = {}
    for line in mutmut(scratch, "results", "--all", "true", capture=True).splitlines():
        name, sep, status = line.strip().partition(": ")
        if sep and "__mutmut_" in name:
            out[name] = status.strip()
    return out


def module_of(name: str) -> str:
    return name.split(".x", 1)[0] if ".x" in name else name.rsplit(".", 1)[0]


def summary(statuses: dict[str, str]) -> dict[str, dict]:
    by_module: dict[str, Counter[str]] = {}
    undetected: dict[str, list[str]] = {}
    for name, status in sorted(statuses.items()):
        module = module_of(name)
        by_module.setdefault(module, Counter())[status] += 1
        if status not in DETECTED:
            undetected.setdefault(module, []).append(name)
    report: dict[str, dict] = {}
    for module, counts in by_module.items():
        total = sum(counts.values())
        killed = sum(counts[s] for s in DETECTED)
        left = undetected.get(module, [])
        equivalent = [n for n in left if n in EQUIVALENT]
        report[module] = {
            "mutants": total, "killed": killed,
            "survived": counts["survived"], "no_tests": counts["no tests"],
            "equivalent": len(equivalent),
            "score": round(killed / total, 3) if total else None,
            "score_without_equivalent": (round(killed / (total - len(equivalent)), 3)
                                         if total - len(equivalent) else None),
            "surviving": [n for n in left if n not in EQUIVALENT],
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/sanad-mutation"),
                        help="where the tree is copied and mutated (wiped first)")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    parser.add_argument("--reuse", action="store_true",
                        help="report on the scratch copy's last run without running again")
    args = parser.parse_args()
    scratch = args.scratch.resolve()
    if scratch == ROOT or ROOT in scratch.parents:
        parser.error("--scratch must be outside the repository")
    if not args.reuse:
        copy_tree(scratch)
        mutmut(scratch, "run")
    report = summary(results(scratch))
    for module, hand in run_hand_mutants(scratch).items():
        report.setdefault(module, {})["hand_written"] = hand
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
