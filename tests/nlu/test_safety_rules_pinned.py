"""The safety rules' machinery pinned (nlu/safety.py): the negation window just inside and just
outside, matches that begin on a space or on a word, rules that need every pattern, the first
rule of each label, the Arabizi skeleton, the length limit and figurative contexts.

A small rule set written here pins the mechanics exactly; the packaged rules pin real phrases.
"""

from __future__ import annotations

import pytest

from nlu.normalize import normalize
from nlu.safety import (
    BLOCKER_WINDOW_TOKENS,
    MAX_SAFETY_CHARS,
    SafetyNet,
    default_safety_net,
    is_emergency,
)

RULES = {
    "rules": [
        {"id": "word-start", "any": [r"\blocked\s+me\b"]},
        {"id": "space-start", "any": [r"(?:^|\s)trapped(?=\s|$)"]},
        {"id": "engine", "all": [r"\bengine\s+died\b", r"\bsea\b"]},
        {"id": "triple", "label": "triple", "all": [r"\balpha\b", r"\bbeta\b", r"\bgamma\b"]},
        {"id": "self-first", "label": "self_harm", "any": [r"\bhurt\s+myself\b"]},
        {"id": "self-second", "label": "self_harm", "any": [r"\bmyself\b"]},
        {"id": "keys", "label": "keyed", "over": "keys", "any": [r"(?:^|\s)hbsn(?=\s|$)"]},
        {"id": "keys-arabic", "label": "keyed_arabic", "over": "keys",
         "any": [r"(?:^|\s)حابسني(?=\s|$)"]},
    ],
    "blockers": [r"(?:^|\s)(?:if|not|w)(?=\s|$)"],
    "figurative": [r"\bexam\b", r"😂"],
}


@pytest.fixture
def net() -> SafetyNet:
    """Built by each test (a few small patterns), not once at import or per module: mutation
    testing runs only the tests that call a mutated function, so each must build its own."""
    return SafetyNet.from_mapping(RULES)


@pytest.fixture
def packaged() -> SafetyNet:
    """The packaged rules, loaded afresh (``default_safety_net`` is cached for the process)."""
    return SafetyNet.load()


def test_the_window_is_three_tokens() -> None:
    assert BLOCKER_WINDOW_TOKENS == 3


@pytest.mark.parametrize(("text", "fires"), [
    ("locked me", True),                     # nothing before the match
    ("if locked me", False),                 # a negation right before
    ("if a locked me", False),
    ("if a b locked me", False),             # just inside: 3 tokens before
    ("if a b c locked me", True),            # just outside: 4 tokens before
    ("a b c locked me if", True),            # after the match: never a blocker
    ("a if b c d locked me", True),
    ("ifx locked me", True),                 # a blocker is a whole token
])
def test_a_negation_blocks_a_match_that_starts_on_a_word_only_within_the_window(
    text: str, fires: bool, net: SafetyNet
) -> None:
    assert ("emergency" in net.fired(text)) is fires


@pytest.mark.parametrize(("text", "fires"), [
    ("trapped", True),
    ("if trapped", False),
    ("w trapped", False),                    # a one-letter negation before a leading space
    ("if a b trapped", False),               # just inside
    ("if a b c trapped", True),              # just outside
    ("a b c trapped", True),
])
def test_a_match_that_starts_on_its_leading_space_has_the_same_window(
    text: str, fires: bool, net: SafetyNet
) -> None:
    assert ("emergency" in net.fired(text)) is fires


def test_a_blocked_mention_does_not_hide_a_later_clear_one(net: SafetyNet) -> None:
    assert net.fired("if he locked me and then he locked me") == {"emergency": "word-start"}
    assert net.fired("if he locked me or if he locked me") == {}


@pytest.mark.parametrize(("text", "fires"), [
    ("the engine died at sea", True),
    ("sea and the engine died", True),       # the other patterns may be anywhere
    ("the engine died", False),
    ("at sea", False),
    ("if the engine died at sea", False),    # the first pattern is negated
    ("the engine died if at sea", True),     # only the first pattern's window counts
    ("if a b c the engine died at sea", True),
])
def test_a_rule_that_needs_every_pattern(text: str, fires: bool, net: SafetyNet) -> None:
    assert ("emergency" in net.fired(text)) is fires


@pytest.mark.parametrize(("text", "fires"), [
    ("alpha beta gamma", True), ("alpha beta", False), ("alpha gamma", False),
    ("beta gamma", False), ("gamma beta alpha", True),
])
def test_every_pattern_of_a_three_pattern_rule_is_needed(
    text: str, fires: bool, net: SafetyNet
) -> None:
    assert ("triple" in net.fired(text)) is fires


def test_the_first_rule_of_each_label_wins_and_every_label_is_reported(net: SafetyNet) -> None:
    found = net.fired("i hurt myself when they locked me")
    assert found == {"self_harm": "self-first", "emergency": "word-start"}
    assert net.fired("talking to myself") == {"self_harm": "self-second"}


def test_a_rule_without_a_label_is_an_emergency_rule(net: SafetyNet) -> None:
    assert net.match_normalized("locked me") == "word-start"
    assert net.match_normalized("hurt myself") is None, "self-harm is not an emergency"
    assert net.match_normalized("alpha beta gamma") is None


def test_keyed_rules_read_the_arabizi_skeleton_and_keep_other_tokens(net: SafetyNet) -> None:
    assert net.fired("7abesny") == {"keyed": "keys"}
    assert net.fired("ana 7absny") == {"keyed": "keys"}
    assert net.fired("حابسني") == {"keyed_arabic": "keys-arabic"}, "an Arabic token stays"
    assert net.fired("if 7abesny") == {}, "the window reads the words as written"
    assert net.fired("7abes") == {}


def test_a_rule_set_may_leave_out_blockers_and_figurative_patterns() -> None:
    bare = SafetyNet.from_mapping({"rules": [{"id": "r", "any": [r"\blocked\s+me\b"]}]})
    assert bare.fired("if locked me") == {"emergency": "r"}
    assert not bare.figurative("this exam")
    assert SafetyNet.from_mapping({}).fired("locked me") == {}


@pytest.mark.parametrize("text", ["", " ", "   "])
def test_nothing_fires_on_empty_text(text: str, net: SafetyNet) -> None:
    assert net.fired(text) == {}


def test_the_rules_read_the_first_2000_characters(net: SafetyNet) -> None:
    assert MAX_SAFETY_CHARS == 2000
    statement = " locked me"
    inside = "x" * (2000 - len(statement)) + statement
    outside = "x" * (2001 - len(statement)) + statement
    assert net.fired(inside) == {"emergency": "word-start"}
    assert net.fired(outside) == {}


@pytest.mark.parametrize(("text", "figurative"), [
    ("this exam is hard", True), ("exams", False), ("😂", True), ("locked me", False),
])
def test_figurative_contexts(text: str, figurative: bool, net: SafetyNet) -> None:
    assert net.figurative(text) is figurative


def test_figurative_reads_the_first_2000_characters(net: SafetyNet) -> None:
    assert net.figurative("y" * 1995 + " exam")
    assert not net.figurative("y" * 1996 + " exam")


def test_match_normalises_the_text_first(net: SafetyNet) -> None:
    assert net.match("LOCKED,   Me!") == "word-start"
    assert net.is_emergency("Trapped.")
    assert not net.is_emergency("If trapped?")


# --- the packaged rules ----------------------------------------------------------------------
@pytest.mark.parametrize(("text", "rule"), [
    ("they locked me in", "en-held"),
    ("what if they locked me in", None),                   # hypothetical, 2 tokens before
    ("no one came and they locked me in", "en-held"),      # "no" 5 tokens before: outside
    ("nobody locked me in", None),
    ("لو حد حبسني", None),
    ("حد حبسني", "ar-held"),
    ("مش بيضربني", None),
    ("مش عارف ليه هو بيضربني", "ar-beaten"),               # "مش" 4 tokens before: outside
    ("mesh beyedrabni", None),
    ("beyedrabni", "arabizi-keys"),
    ("ils ne m ont pas enferme", None),
    ("ils m ont enferme", "fr-held"),
    ("the engine stopped and we are at sea", "en-boat-engine"),
    ("the engine stopped", None),
])
def test_packaged_rules_and_their_negations(
    text: str, rule: str | None, packaged: SafetyNet
) -> None:
    assert packaged.match_normalized(normalize(text)) == rule


@pytest.mark.parametrize(("text", "labels"), [
    ("i want to end my life", {"self_harm": "en-self-harm"}),
    ("i don t want to live anymore", {"self_harm": "en-self-harm"}),
    ("they locked me in and i want to die", {"emergency": "en-held",
                                              "self_harm": "en-self-harm"}),
])
def test_packaged_rules_report_every_label(
    text: str, labels: dict[str, str], packaged: SafetyNet
) -> None:
    assert packaged.fired(normalize(text)) == labels


@pytest.mark.parametrize("text", ["this exam is killing me", "the news said a boat sank",
                                  "الحر ده هيموتني", "mat4 el ahly", "mort de rire"])
def test_packaged_figurative_contexts(text: str, packaged: SafetyNet) -> None:
    assert packaged.figurative(normalize(text))


@pytest.mark.parametrize("text", ["they locked me in", "my boss took my passport", "اتحبست"])
def test_plain_statements_are_not_figurative(text: str, packaged: SafetyNet) -> None:
    assert not packaged.figurative(normalize(text))


def test_the_packaged_rules_are_loaded_once() -> None:
    assert default_safety_net() is default_safety_net()
    assert is_emergency("they locked me in") and not is_emergency("what if they locked me in")
