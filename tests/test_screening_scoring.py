"""Screening scoring pinned: every threshold at ±1, every red flag with and without each of its
indicators, the age-18 boundary, who is offered a person, and the properties that no answer
can lower the level and that the level never falls as the score rises."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.content import ContentLibrary, ScreeningSpec
from bot.content.models import RedFlag, ScreeningQuestion
from bot.flows.screening_score import (
    LEVELS,
    Assessment,
    age_option_for,
    offers_person,
    priority_for,
    score,
)


@cache
def questionnaire() -> ScreeningSpec:
    """The real questionnaire, content/screening.yml."""
    spec = ContentLibrary.load().screening
    assert spec is not None
    return spec


@cache
def without_red_flags() -> ScreeningSpec:
    """The real weights and thresholds, no red flags: the level the score alone gives."""
    spec = questionnaire()
    return make_spec({q.id: q.weight for q in spec.questions}, spec.thresholds)


def make_spec(weights: Mapping[str, int], thresholds: Mapping[str, int],
              red_flags: tuple[RedFlag, ...] = ()) -> ScreeningSpec:
    """A questionnaire of just these weights, thresholds and red flags (no texts needed)."""
    questions = tuple(
        ScreeningQuestion(id=qid, group="exploitation", weight=weight, text={}, why={},
                          advice={}, services=(), source=None)
        for qid, weight in weights.items())
    return ScreeningSpec(age_text={}, age_options=(), questions=questions, red_flags=red_flags,
                         thresholds=thresholds, level_text={}, sources=())


def yes(*ids: str) -> dict[str, str]:
    return dict.fromkeys(ids, "yes")


def rank(level: str) -> int:
    return LEVELS.index(level)


ONES = make_spec({f"q{i:02}": 1 for i in range(20)}, {"medium": 3, "high": 8, "urgent": 14})
"""Twenty questions of weight 1: a score of n is n "yes" answers."""


# --- the data: what the questionnaire intends --------------------------------------------
def test_the_questionnaire_keeps_its_intended_thresholds() -> None:
    assert dict(questionnaire().thresholds) == {"medium": 3, "high": 8, "urgent": 14}


def test_the_questionnaire_keeps_its_red_flags() -> None:
    assert {(f.all_of, f.min_level) for f in questionnaire().red_flags} == {
        (("documents_retained", "not_free_to_leave"), "high"),
        (("violence_threats",), "high"),
        (("minor",), "high"),
        (("violence_threats", "not_free_to_leave"), "urgent"),
        (("planned_crossing", "departure_soon"), "high"),
    }


# --- thresholds ----------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "level"), [
    (0, "low"), (2, "low"), (3, "medium"), (4, "medium"), (7, "medium"), (8, "high"),
    (9, "high"), (13, "high"), (14, "urgent"), (15, "urgent"), (20, "urgent"),
])
def test_each_threshold_is_reached_at_its_value_and_not_one_below(n: int, level: str) -> None:
    answers = yes(*[f"q{i:02}" for i in range(n)])
    assessment = score(ONES, answers, minor=False)
    assert (assessment.score, assessment.level) == (n, level)


@pytest.mark.parametrize(("n", "level"), [(4, "low"), (5, "medium"), (6, "high"), (7, "urgent")])
def test_thresholds_come_from_the_data(n: int, level: str) -> None:
    spec = make_spec({f"q{i}": 1 for i in range(8)}, {"medium": 5, "high": 6, "urgent": 7})
    assert score(spec, yes(*[f"q{i}" for i in range(n)]), minor=False).level == level


@pytest.mark.parametrize(("answers", "total", "level"), [
    ({}, 0, "low"),
    (yes("recruitment_fees", "excessive_hours"), 2, "low"),
    (yes("recruitment_debt"), 3, "medium"),
    (yes("deceived_job", "recruitment_fees"), 3, "medium"),
    (yes("recruitment_debt", "deceived_job", "wages_withheld"), 7, "medium"),
    (yes("recruitment_debt", "deceived_job", "wages_withheld", "recruitment_fees"), 8, "high"),
    (yes("recruitment_debt", "documents_retained", "deceived_job", "wages_withheld",
         "abusive_living", "recruitment_fees"), 13, "high"),
    (yes("recruitment_debt", "documents_retained", "deceived_job", "wages_withheld",
         "abusive_living", "recruitment_fees", "excessive_hours"), 14, "urgent"),
], ids=["nothing", "2-low", "3-medium-one", "3-medium-two", "7-medium", "8-high", "13-high",
        "14-urgent"])
def test_the_questionnaire_scores_each_level_at_its_threshold(
    answers: dict[str, str], total: int, level: str
) -> None:
    assessment = score(questionnaire(), answers, minor=False)
    assert (assessment.score, assessment.level, assessment.red_flags) == (total, level, ())


def test_medium_is_produced_by_warning_signs_alone() -> None:
    """The level between "low" and "high" exists: a debt to a recruiter is a warning sign."""
    assessment = score(questionnaire(), yes("recruitment_debt"), minor=False)
    assert assessment == Assessment("medium", 3, ("recruitment_debt",), ())


# --- what counts ---------------------------------------------------------------------------
def test_only_yes_counts() -> None:
    answers = {"recruitment_debt": "no", "deceived_job": "skip", "wages_withheld": "YES",
               "isolation": "yes", "not_a_question": "yes"}
    assert score(questionnaire(), answers, minor=False) == Assessment("low", 2, ("isolation",), ())


def test_indicators_follow_the_questionnaire_order_and_minor_comes_last() -> None:
    answers = yes("departure_soon", "deceived_job", "isolation")
    found = score(questionnaire(), answers, minor=True).indicators
    assert found == ("deceived_job", "isolation", "departure_soon", "minor")


def test_being_a_minor_weighs_nothing_in_the_score() -> None:
    assert score(questionnaire(), {}, minor=True).score == 0
    assert score(questionnaire(), yes("isolation"), minor=True).score == 2


# --- red flags -----------------------------------------------------------------------------
@pytest.mark.parametrize(("answers", "minor", "level", "total"), [
    (yes("documents_retained", "not_free_to_leave"), False, "high", 7),
    (yes("violence_threats"), False, "high", 5),
    ({}, True, "high", 0),
    (yes("violence_threats", "not_free_to_leave"), False, "urgent", 9),
    (yes("planned_crossing", "departure_soon"), False, "high", 5),
], ids=["documents+not-free", "violence", "minor", "violence+not-free", "crossing+soon"])
def test_each_red_flag_raises_the_level_above_what_the_score_gives(
    answers: dict[str, str], minor: bool, level: str, total: int
) -> None:
    assessment = score(questionnaire(), answers, minor=minor)
    assert (assessment.score, assessment.level) == (total, level)
    assert rank(level) > rank(score(without_red_flags(), answers, minor=minor).level), (
        "the red flag, not the score, decides")


@pytest.mark.parametrize(("answers", "level"), [
    (yes("documents_retained"), "medium"),
    (yes("not_free_to_leave"), "medium"),
    (yes("planned_crossing"), "medium"),
    (yes("departure_soon"), "low"),
], ids=["documents-alone", "not-free-alone", "crossing-alone", "soon-alone"])
def test_half_a_red_flag_raises_nothing(answers: dict[str, str], level: str) -> None:
    assessment = score(questionnaire(), answers, minor=False)
    assert (assessment.level, assessment.red_flags) == (level, ())


def test_the_red_flags_that_fired_are_reported_in_the_questionnaires_order() -> None:
    answers = yes("violence_threats", "not_free_to_leave", "documents_retained")
    assert score(questionnaire(), answers, minor=True).red_flags == (
        ("documents_retained", "not_free_to_leave"), ("violence_threats",), ("minor",),
        ("violence_threats", "not_free_to_leave"),
    )


def test_a_red_flag_never_lowers_the_level() -> None:
    spec = make_spec({f"q{i}": 1 for i in range(4)}, {"medium": 1, "high": 2, "urgent": 3},
                     (RedFlag(all_of=("q0",), min_level="medium"),))
    assert score(spec, yes("q0", "q1", "q2"), minor=False).level == "urgent"
    assert score(spec, yes("q0"), minor=False).level == "medium"


def test_a_red_flag_to_medium_raises_low() -> None:
    spec = make_spec({"a": 1, "b": 1}, {"medium": 2, "high": 3, "urgent": 4},
                     (RedFlag(all_of=("a",), min_level="medium"),))
    assert score(spec, yes("a"), minor=False).level == "medium"
    assert score(spec, yes("b"), minor=False).level == "low"


# --- what the level leads to ---------------------------------------------------------------
@pytest.mark.parametrize(("level", "minor", "offered"), [
    ("low", False, False), ("medium", False, False), ("high", False, True),
    ("urgent", False, True), ("low", True, True), ("medium", True, True),
    ("high", True, True), ("urgent", True, True),
])
def test_high_or_urgent_or_a_minor_is_offered_a_person_at_once(
    level: str, minor: bool, offered: bool
) -> None:
    assert offers_person(level, minor=minor) is offered


@pytest.mark.parametrize(("level", "priority"), [
    ("urgent", "urgent"), ("high", "high"), ("medium", "normal"), ("low", "normal"),
    ("unknown", "normal"),
])
def test_the_case_priority_follows_the_level(level: str, priority: str) -> None:
    assert priority_for(level) == priority


# --- age -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("age", "option"), [
    (-1, None), (0, None), (4, None), (5, "under_18"), (15, "under_18"), (17, "under_18"),
    (18, "18_24"), (24, "18_24"), (25, "25_plus"), (60, "25_plus"), (100, "25_plus"),
    (101, None),
])
def test_a_typed_age_picks_its_option_with_17_a_minor_and_18_an_adult(
    age: int, option: str | None
) -> None:
    assert age_option_for(age, {}) == option


# --- properties ----------------------------------------------------------------------------
QUESTION_IDS = [q.id for q in questionnaire().questions]
answer_sets = st.dictionaries(st.sampled_from(QUESTION_IDS), st.sampled_from(["yes", "no", "skip"]))


@settings(max_examples=200, deadline=None)
@given(answers=answer_sets, minor=st.booleans(), extra=st.sampled_from(QUESTION_IDS))
def test_adding_a_yes_never_lowers_the_level_or_the_score(
    answers: dict[str, str], minor: bool, extra: str
) -> None:
    before = score(questionnaire(), answers, minor=minor)
    after = score(questionnaire(), {**answers, extra: "yes"}, minor=minor)
    assert rank(after.level) >= rank(before.level)
    assert after.score >= before.score


@settings(max_examples=200, deadline=None)
@given(answers=answer_sets)
def test_being_a_minor_never_lowers_the_level(answers: dict[str, str]) -> None:
    adult = score(questionnaire(), answers, minor=False)
    minor = score(questionnaire(), answers, minor=True)
    assert rank(minor.level) >= max(rank(adult.level), rank("high"))


@settings(max_examples=200, deadline=None)
@given(a=answer_sets, b=answer_sets)
def test_without_red_flags_the_level_is_monotone_in_the_score(
    a: dict[str, str], b: dict[str, str]
) -> None:
    first, second = score(without_red_flags(), a, minor=False), score(without_red_flags(), b,
                                                                       minor=False)
    if first.score <= second.score:
        assert rank(first.level) <= rank(second.level)
    else:
        assert rank(first.level) >= rank(second.level)


@settings(max_examples=200, deadline=None)
@given(answers=answer_sets, minor=st.booleans())
def test_red_flags_only_ever_raise_the_level_the_score_gives(
    answers: dict[str, str], minor: bool
) -> None:
    flagged = score(questionnaire(), answers, minor=minor)
    by_score = score(without_red_flags(), answers, minor=minor)
    assert flagged.score == by_score.score
    assert rank(flagged.level) >= rank(by_score.level)
