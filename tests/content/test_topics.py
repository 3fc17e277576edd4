"""The newer topics are reachable by words: a module that is a ``subtopic_of`` an intent opens
instead of the intent's general module when the message names its keywords
(``bot.content.topics``), in every language; without such words the general module opens."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import ContentLibrary, Problem, check
from bot.content.topics import keyword_hits

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"

CASES = [
    ("learn_trafficking", "ar", "عايز أعرف عن تجارة الأعضاء", "organ_trafficking"),
    ("learn_trafficking", "ar", "بيع الكلى", "organ_trafficking"),
    ("learn_trafficking", "ar", "etgar bel a3da2", "organ_trafficking"),
    ("learn_trafficking", "ar", "زواج القاصرات اتجار؟", "child_marriage"),
    ("learn_trafficking", "ar", "يعني ايه استغلال جنسي", "sexual_exploitation"),
    ("learn_trafficking", "ar", "عمالة الأطفال والتسول", "child_labour"),
    ("learn_trafficking", "ar", "يعني ايه اتجار بالبشر", "what_is_trafficking"),
    ("know_rights", "ar", "حقوق اللاجئين في مصر", "refugee_rights"),
    ("know_rights", "ar", "الكفيل ماسك جوازي", "know_your_rights"),
    ("report_concern", "ar", "بنت جيراني هتتجوز وهي عندها 14 سنة", "child_marriage"),
    ("report_concern", "ar", "صاحبي الكفيل ماسك جوازه", "help_someone"),
    ("learn_trafficking", "en", "tell me about organ trafficking", "organ_trafficking"),
    ("learn_trafficking", "en", "what is sexual exploitation", "sexual_exploitation"),
    ("learn_trafficking", "en", "child marriage", "child_marriage"),
    ("learn_trafficking", "en", "children begging in the street", "child_labour"),
    ("learn_trafficking", "en", "what is human trafficking", "what_is_trafficking"),
    ("know_rights", "en", "refugee rights in egypt", "refugee_rights"),
    ("know_rights", "en", "my employer keeps my passport", "know_your_rights"),
    ("learn_trafficking", "fr", "le trafic d'organes", "organ_trafficking"),
    ("learn_trafficking", "fr", "mariage des enfants", "child_marriage"),
    ("learn_trafficking", "fr", "c'est quoi la traite", "what_is_trafficking"),
    ("know_rights", "fr", "droits des réfugiés", "refugee_rights"),
]


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return ContentLibrary.load(REPO_CONTENT)


@pytest.mark.parametrize(("intent", "lang", "text", "expected"), CASES)
def test_the_message_opens_the_module_it_names(library: ContentLibrary, intent: str,
                                               lang: str, text: str, expected: str) -> None:
    module = library.module_for_intent(intent, lang, text)
    assert module is not None and module.id == expected


def test_without_the_words_the_general_module_opens(library: ContentLibrary) -> None:
    for lang in ("ar", "en", "fr"):
        for intent, general in (("learn_trafficking", "what_is_trafficking"),
                                ("know_rights", "know_your_rights"),
                                ("report_concern", "help_someone")):
            for text in (None, "", "ok"):
                module = library.module_for_intent(intent, lang, text)
                assert module is not None and module.id == general


def test_every_new_topic_is_a_subtopic_with_keywords(library: ContentLibrary) -> None:
    for module_id in ("child_marriage", "sexual_exploitation", "organ_trafficking",
                      "child_labour", "refugee_rights"):
        for lang in ("ar", "en", "fr"):
            module = library.module(module_id, lang)
            assert module is not None and module.subtopic_of and module.keywords


def test_keywords_match_behind_prefixes_and_before_endings(library: ContentLibrary) -> None:
    refugees = library.module("refugee_rights", "ar")
    assert refugees is not None
    assert keyword_hits(refugees, "حقوق اللاجئين") == 1   # ال + لاجئ + ين
    assert keyword_hits(refugees, "ملجأ") == 0
    organs = library.module("organ_trafficking", "en")
    assert organs is not None and keyword_hits(organs, "selling organs") >= 1


# --- the checker ---------------------------------------------------------------------------
@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, root, ignore=shutil.ignore_patterns("ui.yml"))
    return root


def edit(root: Path, lang: str, module: str, change: Callable[[Any], None]) -> None:
    path = root / lang / "modules" / f"{module}.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def at(problems: list[Problem], lang: str, module: str, field: str) -> list[str]:
    shown = f"content/{lang}/modules/{module}.yml"
    return [p.message for p in problems if p.file == shown and p.field == field]


def test_an_unknown_or_duplicated_subtopic_intent(content: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["subtopic_of"] = ["learn_trafficing", "know_rights"]
        data["intents"] = ["know_rights"]

    edit(content, "en", "organ_trafficking", change)
    problems = check(content)
    assert "unknown intent" in at(problems, "en", "organ_trafficking", "subtopic_of[0]")[0]
    assert "already in intents" in at(problems, "en", "organ_trafficking", "subtopic_of[1]")[0]


def test_a_subtopic_needs_keywords_and_the_same_intents_everywhere(content: Path) -> None:
    edit(content, "fr", "refugee_rights", lambda d: d.update(keywords=[]))
    edit(content, "ar", "refugee_rights", lambda d: d.update(subtopic_of=["report_concern"]))
    problems = check(content)
    assert at(problems, "fr", "refugee_rights", "subtopic_of")
    assert any("differs" in m for lang in ("en", "fr")
               for m in at(problems, lang, "refugee_rights", "subtopic_of"))
