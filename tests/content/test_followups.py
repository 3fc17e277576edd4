"""Follow-up questions inside a module: parsing, the linter, the matcher, plural forms.

The matcher is measured on phrasings written apart from the YAML examples
(``followup_heldout.yml``), so these tests measure generalisation, not memory.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import ContentLibrary, Problem, check
from bot.content.followups import FollowUpIndex
from bot.content.limits import LANGUAGES
from bot.content.plural import category, parse_forms, plural
from bot.i18n import UiCatalog

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"
HELD_OUT = yaml.safe_load(Path(__file__).with_name("followup_heldout.yml").read_text("utf-8"))
#: Held-out phrasings for the seven older modules' questions (written before their examples,
#: by other voices: Sudanese, Levantine, MSA, Arabizi, misspellings); never used to tune.
HELD_OUT_OLDER = yaml.safe_load(
    Path(__file__).with_name("followup_heldout_older.yml").read_text("utf-8"))
HELD_OUT_SETS = {"first": HELD_OUT, "older_modules": HELD_OUT_OLDER}
MODULE = "check_job_offer"

#: The share of held-out phrasings that must reach the right answer, per language and set.
#: Measured December 2026 (docs/content-followups.md): 88.6% to 97.7% per language.
MIN_MATCH_RATE = 0.85

#: Over all languages, the first held-out set must never fall below the 121 of 132 (91.7%)
#: measured before the older modules got their questions (now 124).
MIN_FIRST_SET_RIGHT = 121


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return ContentLibrary.load(REPO_CONTENT)


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, root, ignore=shutil.ignore_patterns("ui.yml"))
    return root


def edit(root: Path, lang: str, change: Callable[[Any], None], module: str = MODULE) -> None:
    path = root / lang / "modules" / f"{module}.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def problems_at(problems: list[Problem], file: str, field: str) -> list[Problem]:
    return [p for p in problems if p.file == file and p.field.startswith(field)]


# --- parsing -------------------------------------------------------------------------------
def test_questions_are_parsed_with_known_sources(library: ContentLibrary) -> None:
    for lang in LANGUAGES:
        module = library.module(MODULE, lang)
        assert module is not None
        passport = module.question("give_passport")
        assert passport is not None and passport.sources == ("ilo_indicators",)
        assert 4 <= len(passport.examples) <= 8
        for question in module.questions:
            assert all(module.source(s) is not None for s in question.sources)


def test_every_language_answers_the_same_questions(library: ContentLibrary) -> None:
    for module in library.modules("en"):
        ids = [q.id for q in module.questions]
        for lang in ("ar", "fr"):
            other = library.module(module.id, lang)
            assert other is not None and [q.id for q in other.questions] == ids


def test_every_module_has_questions(library: ContentLibrary) -> None:
    for lang in LANGUAGES:
        modules = library.modules(lang)
        assert len(modules) >= 16, lang
        for module in modules:
            assert len(module.questions) >= 4, (lang, module.id)


# --- the linter ----------------------------------------------------------------------------
def test_answer_citing_an_unknown_source(content: Path) -> None:
    edit(content, "en", lambda d: d["questions"][0].update(sources=["nowhere"]))
    found = problems_at(check(content), f"content/en/modules/{MODULE}.yml",
                        "questions[0].sources[0]")
    assert found and "unknown source id 'nowhere'" in found[0].message


def test_a_number_needs_a_source_in_an_answer(content: Path) -> None:
    edit(content, "en", lambda d: d["questions"][0].update(
        answer="About 5,000 people were affected.", sources=[]))
    found = problems_at(check(content), f"content/en/modules/{MODULE}.yml",
                        "questions[0].sources")
    assert found and "number" in found[0].message


def test_a_number_needs_a_source_in_a_message(content: Path) -> None:
    edit(content, "fr", lambda d: d["messages"][-1].update(text="Appelez le 16000.",
                                                          sources=[]))
    last = len(yaml.safe_load((content / "fr" / "modules" / f"{MODULE}.yml")
                              .read_text("utf-8"))["messages"]) - 1
    found = problems_at(check(content), f"content/fr/modules/{MODULE}.yml",
                        f"messages[{last}].sources")
    assert found and "number" in found[0].message


def test_guidance_without_numbers_may_cite_nothing(content: Path) -> None:
    edit(content, "en", lambda d: d["questions"][0].update(
        answer="Keep it with you and ask for a copy instead.", sources=[]))
    assert check(content) == []


def test_a_source_nobody_cites_is_reported(content: Path) -> None:
    edit(content, "en", lambda d: d["sources"].append(
        {"id": "uncited", "title": "Never cited", "publisher": "Nobody", "url": None}))
    found = problems_at(check(content), f"content/en/modules/{MODULE}.yml", "sources[")
    assert found and "cited by no message" in found[0].message


def test_too_few_examples_and_a_duplicate_id(content: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["questions"][0]["examples"] = ["only one"]
        data["questions"][1]["id"] = data["questions"][0]["id"]

    edit(content, "en", change)
    problems = check(content)
    shown = f"content/en/modules/{MODULE}.yml"
    assert problems_at(problems, shown, "questions[0].examples")
    assert any("duplicate question id" in p.message
               for p in problems_at(problems, shown, "questions[1].id"))


def test_question_ids_must_match_across_languages(content: Path) -> None:
    edit(content, "fr", lambda d: d["questions"].pop())
    found = problems_at(check(content), f"content/fr/modules/{MODULE}.yml", "questions")
    assert found and "differ" in found[0].message


def test_unknown_field_in_a_question(content: Path) -> None:
    edit(content, "ar", lambda d: d["questions"][0].update(source=["ilo_indicators"]))
    assert problems_at(check(content), f"content/ar/modules/{MODULE}.yml",
                       "questions[0].source")


# --- the matcher ---------------------------------------------------------------------------
def held_out(lang: str, data: dict[str, Any] = HELD_OUT) -> list[tuple[str, str, str]]:
    return [(module, question, text)
            for module, questions in data[lang].items()
            for question, texts in questions.items() for text in texts]


@pytest.mark.parametrize("which", sorted(HELD_OUT_SETS))
def test_held_out_phrasings_are_not_copies_of_the_examples(library: ContentLibrary,
                                                           which: str) -> None:
    for lang in LANGUAGES:
        for module_id, _, text in held_out(lang, HELD_OUT_SETS[which]):
            module = library.module(module_id, lang)
            assert module is not None
            examples = {e for q in module.questions for e in q.examples}
            assert text not in examples, f"{text!r} is in the YAML: not held out"


@pytest.mark.parametrize("which", sorted(HELD_OUT_SETS))
@pytest.mark.parametrize("lang", LANGUAGES)
def test_held_out_phrasings_reach_their_answer(library: ContentLibrary, lang: str,
                                               which: str) -> None:
    cases = held_out(lang, HELD_OUT_SETS[which])
    right = [case for case in cases
             if (m := library.follow_up(case[0], lang, case[2])) is not None
             and m.question.id == case[1]]
    wrong = [(case, m.question.id) for case in cases
             if (m := library.follow_up(case[0], lang, case[2])) is not None
             and m.question.id != case[1]]
    rate = len(right) / len(cases)
    assert rate >= MIN_MATCH_RATE, f"{which} {lang}: {len(right)}/{len(cases)} matched"
    # A wrong answer is worse than none (the NLU still gets its chance after a miss).
    assert len(wrong) <= len(cases) // 10, wrong


def test_the_first_held_out_set_does_not_regress(library: ContentLibrary) -> None:
    """More modules with questions change every term's weight; the old answers must hold."""
    right = sum(1 for lang in LANGUAGES for module, question, text in held_out(lang)
                if (m := library.follow_up(module, lang, text)) is not None
                and m.question.id == question)
    assert right >= MIN_FIRST_SET_RIGHT, f"{right}/{sum(len(held_out(x)) for x in LANGUAGES)}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_navigation_and_greetings_never_match(library: ContentLibrary, lang: str) -> None:
    with_questions = [m for m in library.modules(lang) if m.questions]
    for text in HELD_OUT["negatives"][lang]:
        for module in with_questions:
            assert library.follow_up(module.id, lang, text) is None, (text, module.id)


def test_every_example_finds_its_own_question(library: ContentLibrary) -> None:
    """Two questions of one module whose examples collide would make one unreachable."""
    for lang in LANGUAGES:
        for module in library.modules(lang):
            for question in module.questions:
                for example in question.examples:
                    found = library.follow_up(module.id, lang, example)
                    if found is None:  # a short or ambiguous example is allowed to fall
                        continue       # through to the NLU, never to the wrong answer
                    assert found.question.id == question.id, (lang, module.id, example)


def test_questions_stay_inside_their_module(library: ContentLibrary) -> None:
    index = FollowUpIndex(library.modules("en"))
    found = index.match("check_job_offer", "should I give him my passport?")
    assert found is not None and found.question.id == "give_passport"
    # The same words in another module never get the job-offer module's answer.
    other = index.match("irregular_routes", "should I give him my passport?")
    assert other is None or other.question.id != "give_passport"
    assert index.match("no_such_module", "should I give him my passport?") is None


def test_hidden_modules_answer_nothing() -> None:
    production = ContentLibrary.load(REPO_CONTENT, show_drafts=False)
    if production.module(MODULE, "en") is None:
        assert production.follow_up(MODULE, "en", "should I give him my passport?") is None


# --- plural forms --------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "expected"), [
    (0, "zero"), (1, "one"), (2, "two"), (3, "few"), (10, "few"), (11, "many"),
    (17, "many"), (99, "many"), (100, "other"), (101, "other"), (102, "other"),
    (103, "few"), (111, "many"),
])
def test_arabic_plural_categories(n: int, expected: str) -> None:
    assert category("ar", n) == expected


def test_english_and_french_plural_categories() -> None:
    assert [category("en", n) for n in (0, 1, 2)] == ["other", "one", "other"]
    assert [category("fr", n) for n in (0, 1, 2, 1_000_000)] == ["one", "one", "other", "many"]


def test_topic_counts_read_right_in_every_language() -> None:
    ui = UiCatalog.load(REPO_CONTENT)
    forms = {lang: ui.text(lang, "awareness.topics_count") for lang in LANGUAGES}
    assert plural(forms["ar"], "ar", 2) == "موضوعين"
    assert plural(forms["ar"], "ar", 3) == "3 مواضيع"
    assert plural(forms["ar"], "ar", 11) == "11 موضوع"
    assert plural(forms["ar"], "ar", 16) == "16 موضوع"
    assert plural(forms["en"], "en", 1) == "1 topic"
    assert plural(forms["en"], "en", 16) == "16 topics"
    assert plural(forms["fr"], "fr", 16) == "16 thèmes"
    sources = ui.text("ar", "awareness.sources_count")
    assert plural(sources, "ar", 1) == "مصدر واحد"
    assert plural(sources, "ar", 5) == "5 مصادر"


def test_plural_forms_in_ui_files_are_well_formed() -> None:
    ui = UiCatalog.load(REPO_CONTENT)
    for lang in LANGUAGES:
        for key in ("awareness.topics_count", "awareness.sources_count"):
            forms = parse_forms(ui.text(lang, key))
            if lang == "ar":
                assert set(forms) == {"zero", "one", "two", "few", "many", "other"}


def test_malformed_plural_forms_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_forms("one: a topic")  # no `other`
    with pytest.raises(ValueError):
        parse_forms("single: x | other: y")
