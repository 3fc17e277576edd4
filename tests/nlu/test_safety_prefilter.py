"""The rules' one-search prefilter (``Rule.any_of``) only skips work: on every message of the
safety training and dev data, the rules fire exactly as they do pattern by pattern."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from nlu.normalize import normalize
from nlu.safety import Rule, SafetyNet, default_safety_net

DATA = Path(__file__).resolve().parents[2] / "nlu" / "safety_data"


def _texts() -> list[str]:
    texts = []
    for path in sorted(DATA.glob("**/*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines()
                  if line.strip()]
    return texts


def test_every_any_rule_has_a_prefilter() -> None:
    net = default_safety_net()
    assert all(r.any_of is not None for r in net.rules if not r.require_all)


def test_prefilter_changes_no_decision() -> None:
    net = default_safety_net()
    walked = SafetyNet(tuple(dataclasses.replace(r, any_of=None) for r in net.rules),
                       net.blockers, net.figurative_patterns)
    texts = _texts()
    assert len(texts) > 1000
    fired = 0
    for text in texts:
        normalized = normalize(text)
        found = net.fired(normalized)
        assert found == walked.fired(normalized), text
        fired += bool(found)
    assert fired > 200  # the data exercises the rules, not only the no-match path


def test_a_prefilter_that_finds_nothing_skips_the_rule() -> None:
    """Pinned: the prefilter is consulted (a mutant ignoring it would not be caught by the
    equivalence test alone)."""
    rule = Rule("r", (re.compile("danger"),), False, False,
                any_of=re.compile("never-matches-anything"))
    assert not SafetyNet((rule,), ()).fired("danger now")
    assert SafetyNet((dataclasses.replace(rule, any_of=None),), ()).fired("danger now")


def test_back_references_are_not_joined() -> None:
    assert Rule.joined((re.compile(r"(a)\1"), re.compile("b"))) is None
    joined = Rule.joined((re.compile("ab"), re.compile("cd")))
    assert joined is not None and joined.search("xxcd") and not joined.search("ac")
