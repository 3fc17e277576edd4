"""Broken content makes ``check`` fail with a problem naming the file and the field.

Each test copies the real ``content/`` to a temporary directory, breaks one thing, and
looks for the problem an editor would need to fix it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.content import ContentError, ContentLibrary, Problem, check
from bot.content.models import ProblemLog
from bot.content.modules import load_module

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"
MODULE = "check_job_offer"


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, root, ignore=shutil.ignore_patterns("ui.yml"))
    return root


def edit(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def find(problems: list[Problem], file: str, field: str) -> Problem:
    matches = [p for p in problems if p.file == file and p.field == field]
    assert matches, f"no problem for {file} {field}; got:\n" + "\n".join(map(str, problems))
    return matches[0]


def module_path(root: Path, lang: str, module_id: str = MODULE) -> Path:
    return root / lang / "modules" / f"{module_id}.yml"


def test_copy_is_clean(content: Path) -> None:
    assert check(content) == []


# --- the five breakages of the issue ------------------------------------------------------
def test_missing_translation(content: Path) -> None:
    module_path(content, "fr").unlink()
    problem = find(check(content), f"content/fr/modules/{MODULE}.yml", "file")
    assert "missing translation" in problem.message


def test_button_too_long(content: Path) -> None:
    edit(module_path(content, "en"), lambda d: d.update(button="x" * 30))
    problem = find(check(content), f"content/en/modules/{MODULE}.yml", "button")
    assert problem.message == "30 characters (limit 20)"


def test_removed_source(content: Path) -> None:
    def drop_first_cited(data: Any) -> None:
        cited = data["messages"][0]["sources"][0]
        data["sources"] = [s for s in data["sources"] if s["id"] != cited]

    edit(module_path(content, "ar"), drop_first_cited)
    problem = find(check(content), f"content/ar/modules/{MODULE}.yml",
                   "messages[0].sources[0]")
    assert "unknown source id" in problem.message


def test_module_without_any_source(content: Path) -> None:
    edit(module_path(content, "en"), lambda d: d.pop("sources"))
    problem = find(check(content), f"content/en/modules/{MODULE}.yml", "sources")
    assert "required" in problem.message


def test_missing_next_module(content: Path) -> None:
    edit(module_path(content, "fr"), lambda d: d["next"].append("no_such_module"))
    problems = check(content)
    problem = find(problems, f"content/fr/modules/{MODULE}.yml", "next[3]")
    assert "no_such_module" in problem.message


def test_message_too_long(content: Path) -> None:
    edit(module_path(content, "fr"), lambda d: d["messages"][2].update(text="é" * 700))
    problem = find(check(content), f"content/fr/modules/{MODULE}.yml", "messages[2].text")
    assert str(problem) == (f"content/fr/modules/{MODULE}.yml: messages[2].text: "
                            "700 characters (limit 600)")


# --- more breakages ------------------------------------------------------------------------
def test_load_raises_with_every_problem(content: Path) -> None:
    module_path(content, "fr").unlink()
    edit(module_path(content, "en"), lambda d: d.update(button="x" * 30))
    with pytest.raises(ContentError) as caught:
        ContentLibrary.load(content)
    fields = {(p.file, p.field) for p in caught.value.problems}
    assert (f"content/fr/modules/{MODULE}.yml", "file") in fields
    assert (f"content/en/modules/{MODULE}.yml", "button") in fields


def test_env_variable_points_at_content(content: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    module_path(content, "fr").unlink()
    monkeypatch.setenv("SANAD_CONTENT_DIR", str(content))
    assert any(p.file == f"content/fr/modules/{MODULE}.yml" for p in check())


def test_invalid_yaml(content: Path) -> None:
    module_path(content, "en").write_text("id: [unclosed\n", encoding="utf-8")
    problem = find(check(content), f"content/en/modules/{MODULE}.yml", "file")
    assert "invalid YAML" in problem.message


def test_too_few_messages(content: Path) -> None:
    edit(module_path(content, "ar"), lambda d: d.update(messages=d["messages"][:2]))
    problem = find(check(content), f"content/ar/modules/{MODULE}.yml", "messages")
    assert "2 messages" in problem.message


def test_unknown_field_is_reported(content: Path) -> None:
    edit(module_path(content, "en"), lambda d: d.update(sumary="typo"))
    find(check(content), f"content/en/modules/{MODULE}.yml", "sumary")


def test_unknown_intent(content: Path) -> None:
    edit(module_path(content, "en"), lambda d: d.update(intents=["check_job_ofer"]))
    find(check(content), f"content/en/modules/{MODULE}.yml", "intents[0]")


def test_learning_intent_without_module(content: Path) -> None:
    for lang in ("ar", "en", "fr"):
        edit(module_path(content, lang), lambda d: d.update(intents=[]))
    problem = find(check(content), "content/en/modules", "intents")
    assert "check_job_offer" in problem.message


def test_id_must_match_file_name(content: Path) -> None:
    edit(module_path(content, "en"), lambda d: d.update(id="other_id"))
    find(check(content), f"content/en/modules/{MODULE}.yml", "id")


def test_reviewed_module_needs_reviewer(content: Path) -> None:
    edit(module_path(content, "en"), lambda d: d.update(reviewed=True))
    find(check(content), f"content/en/modules/{MODULE}.yml", "reviewer")


def test_reviewed_in_yaml_is_not_an_approval(content: Path) -> None:
    """Approval lives in the console (docs/content-review.md); the old YAML flag alone no
    longer makes production serve a module (tests/content/test_review.py)."""
    edit(module_path(content, "en"),
         lambda d: d.update(reviewed=True, reviewer="A. Caseworker (test)"))
    library = ContentLibrary.load(content, show_drafts=False)
    assert library.modules("en") == ()
    assert library.module_for_intent("check_job_offer", "en") is None


def test_ui_files_are_ignored(content: Path) -> None:
    (content / "en" / "ui.yml").write_text("this: [is not checked here\n", encoding="utf-8")
    assert check(content) == []


def test_missing_content_directory(tmp_path: Path) -> None:
    problems = check(tmp_path / "nowhere")
    assert problems and problems[0].field == "file"


# --- services --------------------------------------------------------------------------------
def edit_service(root: Path, service_id: str, change: Callable[[dict[str, Any]], None]) -> int:
    index = -1

    def apply(data: Any) -> None:
        nonlocal index
        for i, service in enumerate(data["services"]):
            if service["id"] == service_id:
                index = i
                change(service)

    edit(root / "services.yml", apply)
    assert index >= 0
    return index


def test_verified_service_needs_a_date(content: Path) -> None:
    index = edit_service(content, "ncw_15115", lambda s: s.update(verified_on=None))
    find(check(content), "content/services.yml", f"services[{index}].verified_on")


def test_phone_must_be_digits(content: Path) -> None:
    index = edit_service(content, "ncw_15115", lambda s: s.update(phone="151 15"))
    problem = find(check(content), "content/services.yml", f"services[{index}].phone")
    assert "digits only" in problem.message


def test_verified_service_needs_contact(content: Path) -> None:
    index = edit_service(content, "iom_egypt", lambda s: s.update(url=None))
    find(check(content), "content/services.yml", f"services[{index}].verified")


def test_service_needs_every_language(content: Path) -> None:
    index = edit_service(content, "nchr_15508", lambda s: s["helps_with"].pop("fr"))
    find(check(content), "content/services.yml", f"services[{index}].helps_with.fr")


def test_service_helps_with_limit(content: Path) -> None:
    index = edit_service(content, "nchr_15508", lambda s: s["helps_with"].update(en="y" * 161))
    problem = find(check(content), "content/services.yml", f"services[{index}].helps_with.en")
    assert problem.message == "161 characters (limit 160)"


def test_service_unknown_category(content: Path) -> None:
    index = edit_service(content, "nchr_15508", lambda s: s.update(categories=["fun"]))
    find(check(content), "content/services.yml", f"services[{index}].categories[0]")


# --- screening -------------------------------------------------------------------------------
def edit_screening(root: Path, change: Callable[[Any], None]) -> None:
    edit(root / "screening.yml", change)


def test_required_indicator_missing(content: Path) -> None:
    edit_screening(content, lambda d: d.update(
        questions=[q for q in d["questions"] if q["id"] != "isolation"]))
    problem = find(check(content), "content/screening.yml", "questions")
    assert "isolation" in problem.message


def test_weight_out_of_range(content: Path) -> None:
    edit_screening(content, lambda d: d["questions"][0].update(weight=9))
    find(check(content), "content/screening.yml", "questions[0].weight")


def test_question_missing_translation(content: Path) -> None:
    edit_screening(content, lambda d: d["questions"][1]["text"].pop("ar"))
    find(check(content), "content/screening.yml", "questions[1].text.ar")


def test_red_flag_unknown_indicator(content: Path) -> None:
    edit_screening(content, lambda d: d["red_flags"].append(
        {"all_of": ["no_such_indicator"], "min_level": "high"}))
    problems = check(content)
    assert any(p.file == "content/screening.yml" and p.field.startswith("red_flags[")
               and "no_such_indicator" in p.message for p in problems)


def test_thresholds_must_increase(content: Path) -> None:
    edit_screening(content, lambda d: d["levels"].update(high=2))
    find(check(content), "content/screening.yml", "levels.high")


def test_age_option_title_limit(content: Path) -> None:
    edit_screening(content, lambda d: d["age"]["options"][1]["title"].update(en="z" * 21))
    find(check(content), "content/screening.yml", "age.options[1].title.en")


def test_question_service_must_exist(content: Path) -> None:
    edit_screening(content, lambda d: d["questions"][0].update(services=["nope"]))
    find(check(content), "content/screening.yml", "questions[0].services[0]")


def test_question_service_must_be_verified(content: Path) -> None:
    edit_screening(content, lambda d: d["questions"][0].update(
        services=["mol_recruitment_check"]))
    problem = find(check(content), "content/screening.yml", "questions[0].services[0]")
    assert "not verified" in problem.message


# --- property: the button limit is exactly 20 characters ---------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from("abcإزايé "), min_size=1, max_size=40))
def test_button_limit_property(button: str) -> None:
    source = module_path(REPO_CONTENT, "en")
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["button"] = button
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "content"
        path = module_path(root, "en")
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        log = ProblemLog()
        load_module(path, root, "en", log)
    flagged = any(p.field == "button" for p in log.problems)
    stripped = button.strip()
    assert flagged == (not stripped or len(stripped) > 20)
