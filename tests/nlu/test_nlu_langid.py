from __future__ import annotations

import pytest

from nlu import Language, identify
from nlu.evaluate import language_label
from nlu.langid import default_identifier


def _accuracy(rows: list[dict], predict) -> float:  # type: ignore[no-untyped-def]
    return sum(predict(r["text"]) == r["lang"] for r in rows) / len(rows)


def test_langid_set_is_big_and_short(langid_rows: list[dict]) -> None:
    assert len(langid_rows) >= 300
    assert {r["lang"] for r in langid_rows} == {"ar", "ar-Latn", "en", "fr"}
    assert all(1 <= len(r["text"].split()) <= 8 for r in langid_rows)


def test_langid_accuracy(langid_rows: list[dict]) -> None:
    acc = _accuracy(langid_rows, lambda t: language_label(identify(t)))
    assert acc >= 0.97, acc


def test_langdetect_alone_is_far_lower(langid_rows: list[dict]) -> None:
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0

    def predict(text: str) -> str:
        try:
            code = detect(text)
        except LangDetectException:
            return "und"
        return code

    # langdetect has no Arabizi: its best possible answer for it is plain "ar".
    rows = [{**r, "lang": "ar" if r["lang"] == "ar-Latn" else r["lang"]} for r in langid_rows]
    ours = _accuracy(langid_rows, lambda t: language_label(identify(t)))
    theirs = _accuracy(rows, predict)
    assert theirs < ours - 0.2, (theirs, ours)


@pytest.mark.parametrize("text", [
    "ana 3ayez asafer", "7ad beyedrabni", "ezayak ya basha", "mesh 3aref a3mel eh",
    "ana 3ayez job fe Italy", "la2", "aywa", "inshallah bokra", "keda tamam",
])
def test_arabizi_is_arabic_in_latin_script(text: str) -> None:
    lang = identify(text)
    assert (lang.code, lang.script) == ("ar", "Latn")
    assert default_identifier().is_arabizi(text)


@pytest.mark.parametrize(("text", "code", "script"), [
    ("عايز اسافر", "ar", "Arab"),
    ("عايز job في italy", "ar", "Arab"),
    ("I need help with my passport", "en", "Latn"),
    ("j'ai besoin d'aide", "fr", "Latn"),
    ("ሰላም ኣለኹ", "ti", "Ethi"),
    ("Привет как дела", "ru", "Cyrl"),
])
def test_scripts_and_languages(text: str, code: str, script: str) -> None:
    lang = identify(text)
    assert (lang.code, lang.script) == (code, script)
    assert 0.0 < lang.confidence <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "😀😀", "12345", "!!!", "🙏👍"])
def test_undetermined(text: str) -> None:
    lang = identify(text)
    assert lang == Language("und", "Zyyy", 0.0)


def test_not_arabizi_words() -> None:
    for text in ["see you 2nite", "meet at 5pm", "I'm 25 years old"]:
        assert identify(text).code == "en"


def test_deterministic() -> None:
    text = "hola como estas amigo mio"
    assert len({identify(text) for _ in range(5)}) == 1
