"""Parsing and validation of the risk questionnaire (``content/screening.yml``).

The questionnaire is data; the flow that asks it and the engine that scores it belong to the
screening flow. What is checked here is what that engine relies on: the required indicator
ids exist, every "yes" weighs 1..5, red flags name real indicators, thresholds rise, and every
text exists in every language within its limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._fields import Fields, display_path, frozen, read_yaml
from .limits import (
    AGE_OPTION_ID_RE,
    AGE_OPTION_TITLE_MAX,
    INDICATOR_ID_RE,
    MINOR_FLAG,
    REQUIRED_INDICATORS,
    RISK_LEVELS,
    SCREENING_ADVICE_MAX,
    SCREENING_GROUPS,
    SCREENING_LEVEL_TEXT_MAX,
    SCREENING_QUESTION_MAX,
    SCREENING_QUESTIONS_MAX,
    SCREENING_QUESTIONS_MIN,
    SCREENING_WEIGHT_MAX,
    SCREENING_WEIGHT_MIN,
    SCREENING_WHY_MAX,
)
from .models import (
    AgeOption,
    ProblemLog,
    RedFlag,
    ScreeningQuestion,
    ScreeningSpec,
    Source,
)
from .sources import parse_sources

SCREENING_FIELDS = ("version", "sources", "age", "questions", "red_flags", "levels",
                    "level_text")
QUESTION_FIELDS = ("id", "group", "weight", "text", "why", "advice", "services", "source")
THRESHOLD_LEVELS = RISK_LEVELS[1:]  # "low" is below every threshold


def load_screening(root: Path, log: ProblemLog, service_ids: frozenset[str],
                   verified_ids: frozenset[str]) -> ScreeningSpec | None:
    """The questionnaire, or None if it is too broken to use; problems go to ``log``.

    ``service_ids`` are all services in ``services.yml``; ``verified_ids`` those that may be
    shown. A question pointing at an unverified service would silently show nothing.
    """
    path = root / "screening.yml"
    shown = display_path(path, root)
    if not path.is_file():
        log.add(shown, "file", "is missing")
        return None
    data = read_yaml(path, shown, log)
    if data is None:
        return None
    return parse_screening(data, shown, log, service_ids, verified_ids)


def parse_screening(data: Any, shown: str, log: ProblemLog, service_ids: frozenset[str],
                    verified_ids: frozenset[str]) -> ScreeningSpec | None:
    """Check the questionnaire's parsed YAML; also used for approved revisions."""
    fields = Fields(data, shown, "", log)
    if not fields.ok:
        return None
    fields.only(SCREENING_FIELDS)
    fields.integer("version", minimum=1)
    sources = parse_sources(fields, "sources")
    age_text, age_options = _age(fields.child("age"))
    questions = _questions(fields, sources, service_ids, verified_ids)
    question_ids = {q.id for q in questions}
    red_flags = _red_flags(fields, question_ids)
    thresholds = _thresholds(fields.child("levels"), questions)
    level_text = _level_text(fields.child("level_text"))
    if age_text is None or thresholds is None or level_text is None or not questions:
        return None
    return ScreeningSpec(
        age_text=age_text, age_options=age_options, questions=questions,
        red_flags=red_flags, thresholds=thresholds, level_text=level_text, sources=sources,
    )


def _age(fields: Fields) -> tuple[Mapping[str, str] | None, tuple[AgeOption, ...]]:
    if not fields.ok:
        return None, ()
    fields.only(("text", "options"))
    text = fields.translations("text", max_len=SCREENING_QUESTION_MAX)
    options: list[AgeOption] = []
    seen: set[str] = set()
    for index, item in enumerate(fields.items("options")):
        option = Fields(item, fields.file, f"{fields.name('options')}[{index}]", fields.log)
        if not option.ok:
            continue
        option.only(("id", "minor", "title"))
        option_id = option.string("id")
        if option_id is not None:
            if not AGE_OPTION_ID_RE.match(option_id):
                option.problem("id", f"{option_id!r} must match [a-z0-9_]{{1,32}}")
            if option_id in seen:
                option.problem("id", f"duplicate age option {option_id!r}")
            seen.add(option_id)
        minor = option.boolean("minor", default=False)
        title = option.translations("title", max_len=AGE_OPTION_TITLE_MAX)
        if option_id is not None and title is not None:
            options.append(AgeOption(id=option_id, minor=minor, title=title))
    if fields.present("options") and not any(o.minor for o in options):
        fields.problem("options", "one option must be marked minor: true (under 18)")
    return text, tuple(options)


def _questions(fields: Fields, sources: tuple[Source, ...], service_ids: frozenset[str],
               verified_ids: frozenset[str]) -> tuple[ScreeningQuestion, ...]:
    items = fields.items("questions")
    if fields.present("questions") and not (
        SCREENING_QUESTIONS_MIN <= len(items) <= SCREENING_QUESTIONS_MAX
    ):
        fields.problem("questions", f"{len(items)} questions (the screening asks "
                                    f"{SCREENING_QUESTIONS_MIN} to {SCREENING_QUESTIONS_MAX})")
    source_ids = {s.id for s in sources}
    result: list[ScreeningQuestion] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        question = _question(item, fields, f"questions[{index}]", source_ids, service_ids,
                             verified_ids)
        if question is None:
            continue
        if question.id in seen:
            fields.log.add(fields.file, f"questions[{index}].id",
                           f"duplicate indicator {question.id!r}")
            continue
        seen.add(question.id)
        result.append(question)
    if fields.present("questions"):
        for required in REQUIRED_INDICATORS:
            if required not in seen:
                fields.problem("questions", f"required indicator {required!r} is missing")
    return tuple(result)


def _question(data: Any, parent: Fields, path: str, source_ids: set[str],
              service_ids: frozenset[str],
              verified_ids: frozenset[str]) -> ScreeningQuestion | None:
    fields = Fields(data, parent.file, path, parent.log)
    if not fields.ok:
        return None
    fields.only(QUESTION_FIELDS)
    question_id = fields.string("id")
    if question_id is not None:
        if not INDICATOR_ID_RE.match(question_id):
            fields.problem("id", f"{question_id!r} must match [a-z_]+")
        if question_id == MINOR_FLAG:
            fields.problem("id", f"{MINOR_FLAG!r} is reserved for the under-18 age option")
    group = fields.choice("group", SCREENING_GROUPS)
    weight = fields.integer("weight", minimum=SCREENING_WEIGHT_MIN,
                            maximum=SCREENING_WEIGHT_MAX)
    text = fields.translations("text", max_len=SCREENING_QUESTION_MAX)
    why = fields.translations("why", max_len=SCREENING_WHY_MAX)
    advice = fields.translations("advice", max_len=SCREENING_ADVICE_MAX)
    services = fields.strings("services", required=False)
    for index, service_id in enumerate(services):
        if service_id not in service_ids:
            fields.log.add(fields.file, f"{path}.services[{index}]",
                           f"unknown service {service_id!r} (not in services.yml)")
        elif service_id not in verified_ids:
            fields.log.add(fields.file, f"{path}.services[{index}]",
                           f"service {service_id!r} is not verified, so it is never shown")
    source = fields.string("source", required=False)
    if source is not None and source not in source_ids:
        fields.problem("source", f"unknown source id {source!r}")
    if None in (question_id, group, weight, text, why, advice):
        return None
    assert question_id is not None and group is not None and weight is not None
    assert text is not None and why is not None and advice is not None
    return ScreeningQuestion(id=question_id, group=group, weight=weight, text=text,
                             why=why, advice=advice, services=services, source=source)


def _red_flags(fields: Fields, question_ids: set[str]) -> tuple[RedFlag, ...]:
    result: list[RedFlag] = []
    for index, item in enumerate(fields.items("red_flags", required=False)):
        flag = Fields(item, fields.file, f"red_flags[{index}]", fields.log)
        if not flag.ok:
            continue
        flag.only(("all_of", "min_level"))
        all_of = flag.strings("all_of")
        if flag.present("all_of") and not all_of:
            flag.problem("all_of", "names no indicator")
        for cond_index, indicator in enumerate(all_of):
            if indicator != MINOR_FLAG and indicator not in question_ids:
                flag.log.add(flag.file, f"red_flags[{index}].all_of[{cond_index}]",
                             f"unknown indicator {indicator!r}")
        min_level = flag.choice("min_level", THRESHOLD_LEVELS)
        if all_of and min_level is not None:
            result.append(RedFlag(all_of=all_of, min_level=min_level))
    return tuple(result)


def _thresholds(fields: Fields,
                questions: tuple[ScreeningQuestion, ...]) -> Mapping[str, int] | None:
    if not fields.ok:
        return None
    fields.only(THRESHOLD_LEVELS)
    values: dict[str, int] = {}
    for level in THRESHOLD_LEVELS:
        value = fields.integer(level, minimum=1)
        if value is not None:
            values[level] = value
    if len(values) != len(THRESHOLD_LEVELS):
        return None
    previous = 0
    for level in THRESHOLD_LEVELS:
        if values[level] <= previous:
            fields.problem(level, f"{values[level]} must be above the level below it "
                                  f"({previous})")
        previous = values[level]
    reachable = sum(q.weight for q in questions)
    if questions and values["urgent"] > reachable:
        fields.problem("urgent", f"{values['urgent']} can never be reached (all weights add "
                                 f"up to {reachable})")
    return frozen(values)


def _level_text(fields: Fields) -> Mapping[str, Mapping[str, str]] | None:
    if not fields.ok:
        return None
    fields.only(RISK_LEVELS)
    texts: dict[str, Mapping[str, str]] = {}
    for level in RISK_LEVELS:
        text = fields.translations(level, max_len=SCREENING_LEVEL_TEXT_MAX)
        if text is not None:
            texts[level] = text
    if len(texts) != len(RISK_LEVELS):
        return None
    return frozen(texts)
