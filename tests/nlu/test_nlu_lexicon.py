from __future__ import annotations

import pytest

from nlu import skip, yes_no

YES = ["نعم", "اه", "آه", "ايوه", "أيوة", "ايوا", "aywa", "aiwa", "Aywaa", "yes", "Yes!!", "yeah",
       "yep", "ok", "oui", "Ouais", "✅", "👍", "👍🏽", "اكيد", "tab3an", "yes please",
       "ايوه يا سند 🙏", "oui merci", "d'accord", "yes yes", "اه والله"]
NO = ["لا", "لأ", "لاء", "la2", "laa", "La", "no", "No.", "nope", "non", "Non merci", "❌", "👎",
      "no thanks", "la2 shokran", "لا شكرا", "كلا", "لا لا", "nah"]
NEITHER = ["no idea", "مش عارف", "مش عارفه", "I don't know", "je sais pas", "maybe", "ممكن",
           "yes no", "اه لا", "", "   ", "hello", "yes I want to talk to someone",
           "no one is helping me", "la traite", "what", "🤔", "x" * 500]


@pytest.mark.parametrize("text", YES)
def test_yes(text: str) -> None:
    assert yes_no(text) == "yes"


@pytest.mark.parametrize("text", NO)
def test_no(text: str) -> None:
    assert yes_no(text) == "no"


@pytest.mark.parametrize("text", NEITHER)
def test_neither(text: str) -> None:
    assert yes_no(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("skip", True), ("Skip please", True), ("تخطي", True), ("تخطّى", True), ("عدي", True),
    ("passer", True), ("Suivant", True), ("مش عايز اجاوب", True), ("next", True),
    ("msh 3ayez agaweb", True), ("next question pls", True),
    ("hello", False), ("yes", False), ("", False), ("skip the boat trip", False),
])
def test_skip(text: str, expected: bool) -> None:
    assert skip(text) is expected


def test_engine_uses_lexicon_for_short_answers(engine) -> None:  # type: ignore[no-untyped-def]
    for text in YES:
        assert engine.parse_sync(text).intent.name == "affirm", text
    for text in NO:
        assert engine.parse_sync(text).intent.name == "deny", text
