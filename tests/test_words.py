"""The one normaliser for words that act (bot.words): every spelling of a word meets the others."""

from __future__ import annotations

import pytest

from bot.i18n import UiCatalog
from bot.words import fold, name_key, starts_with_any


@pytest.mark.parametrize(("typed", "canonical"), [
    ("stop", "stop"), ("stop.", "stop"), ("Stop!", "stop"), (" STOP ", "stop"),
    ("stop\u200f", "stop"), ("ＳＴＯＰ", "stop"), ("stooop", "stop"),
    ("خروج.", "خروج"), ("خروج!!", "خروج"), ("خــروج", "خروج"),  # tatweel
    ("اخفى", "اخفي"), ("إخفي", "اخفي"), ("أخفي", "اخفي"),  # alef and yaa forms
    ("كفاية", "كفايه"), ("كفايةٌ", "كفايه"),  # taa marbuta, a diacritic
    ("٣", "3"), ("۳", "3"), ("3.", "3"), ("(3)", "3"),  # Arabic-Indic digits, a numbered reply
    ("Next ▶", "next"), ("◀ التالي", "التالي"), ("👍", ""),
    ("arrête", "arrete"), ("Ça suffit", "ca suffit"),
    ("wa2af  el   as2ela", "wa2af el as2ela"),
])
def test_fold(typed: str, canonical: str) -> None:
    assert fold(typed) == canonical


@pytest.mark.parametrize(("typed", "key"), [
    ("بالإنجليزي", "انجليزي"), ("العربيه", "عربيه"), ("El-Menya", "menya"), ("الشيخ", "شيخ"),
    ("ال", "ال"), ("la", ""),
])
def test_name_key_drops_articles_only(typed: str, key: str) -> None:
    assert name_key(typed) == key


def test_word_lists_hold_every_language_folded() -> None:
    ui = UiCatalog({"en": {"words.stop": "stop, Stop it!, "}, "ar": {"words.stop": "وقف, كفاية"}})
    assert ui.words("words.stop") == {"stop", "stop it", "وقف", "كفايه"}
    assert ui.words("words.nothing") == frozenset()
    assert fold("كفاية!") in ui.words("words.stop")


@pytest.mark.parametrize(("text", "expected"), [
    ("why?", True), ("Why do you ask!", True), ("ليه كده", True), ("whyy", False),
    ("tell me why", False), ("why " + "x " * 8, False), ("", False),
])
def test_starts_with_any(text: str, expected: bool) -> None:
    assert starts_with_any(text, {"why", "ليه"}, 8) is expected
