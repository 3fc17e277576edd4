from __future__ import annotations

import pytest

from nlu.normalize import arabizi_key, arabizi_keys, normalize


@pytest.mark.parametrize(("raw", "expected"), [
    ("أهلاً وسهلاً", "اهلا وسهلا"),          # hamza forms + tanween
    ("إلى آخر ٱلكلام", "الي اخر الكلام"),     # إ آ ٱ, ى->ي
    ("مدرسة", "مدرسه"),                      # ة->ه
    ("مسؤول شئ", "مسوول شي"),                # ؤ->و, ئ->ي
    ("مرحبـــا", "مرحبا"),                   # tatweel
    ("السّلامُ عليكُم", "السلام عليكم"),       # harakat, shadda
    ("ساعدوووني", "ساعدوني"),                # elongation
    ("الحقوووووني!!!", "الحقوني"),
    ("رقمي ٠١٢٣٤٥٦٧٨٩", "رقمي 0123456789"),  # Arabic-Indic digits
    ("۱۲۳ ۴۵۶", "123 456"),                  # Persian digits
    ("هل هذا سري؟", "هل هذا سري"),           # Arabic question mark
    ("ﻻ", "لا"),                             # presentation form ligature
    ("Ils m'ont ENFERMÉ", "ils m ont enferme"),
    ("ça va, Sœur?", "ca va soeur"),
    ("HELLO   World", "hello world"),
    ("pleeease", "please"),
    ("thanks🙏🏽🙏🏽🙏🏽", "thanks 🙏"),          # skin tones dropped, emoji kept once
    ("ok👍", "ok 👍"),
    ("a\x00b\u200bc\u202e", "a b c"),         # controls / format chars
    ("", ""),
    ("   ", ""),
])
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_is_idempotent() -> None:
    for text in ["أيوة يا باشا!!", "ana 3ayeeez asafer", "Ça m'énerve 😡😡😡", "ﷺ"]:
        once = normalize(text)
        assert normalize(once) == once


@pytest.mark.parametrize("group", [
    ["3ayez", "3aiz", "aayez", "3ayz", "3ayza", "3AYEZ"],
    ["beyedrabni", "byedrbny", "biyedrabny", "bydrbni"],
    ["shoghl", "sho8l", "shoghol", "shughl"],
    ["ma7bos", "m7boos", "ma7boos"],
    ["delwa2ty", "dlw2ty", "delwaqti"],
    ["ezayak", "izzayak", "ezzayak"],
    ["5atfeeny", "khatfiny"],
])
def test_arabizi_variants_cluster(group: list[str]) -> None:
    keys = {arabizi_key(normalize(w)) for w in group}
    assert len(keys) == 1, keys


def test_arabizi_keys_skip_non_latin() -> None:
    assert arabizi_key("عايز") == ""
    assert arabizi_keys(normalize("ana عايز 3ayez")) == "n z"
