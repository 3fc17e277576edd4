"""Arabic modules stay easy to read on a phone for young Egyptians: short sentences and no
legal or classical words where a plain one exists (issue #26, register). A guard, not a
grammar: the limits are today's worst case, so a new long sentence or legal term fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.content import ContentLibrary

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"
#: Words a reader aged 15 stumbles on, each with the plain form the modules use instead.
HARD_WORDS = {
    "جنائياً": "ما بيتعاقبش",
    "مدنياً": "ما بيتطالبش بتعويض",
    "المعني بالمخدرات": "مكتب الأمم المتحدة للمخدرات والجريمة",
    "غير الشرعية": "غير النظامية",
    "يتعين": "لازم",
    "بموجب": "حسب",
}
MAX_WORDS = 30
SENTENCE_END = re.compile(r"[.!؟?\n:؛]+")


@pytest.fixture(scope="module")
def texts() -> list[tuple[str, str]]:
    library = ContentLibrary.load(REPO_CONTENT)
    found = []
    for module in library.modules("ar"):
        found += [(module.id, m.text) for m in module.messages]
        found += [(module.id, q.answer) for q in module.questions]
        found += [(module.id, q.feedback) for q in module.quiz]
    return found


def test_sentences_are_short(texts: list[tuple[str, str]]) -> None:
    long = [(module_id, sentence.strip()) for module_id, text in texts
            for sentence in SENTENCE_END.split(text) if len(sentence.split()) > MAX_WORDS]
    assert not long, long


def test_no_legal_or_classical_words(texts: list[tuple[str, str]]) -> None:
    hard = [(module_id, word, HARD_WORDS[word]) for module_id, text in texts
            for word in HARD_WORDS if word in text]
    assert not hard, hard
