"""Emergency safety net: recall on statements of immediate danger, precision on near misses."""

from __future__ import annotations

import pytest

from nlu import is_emergency
from nlu.rasa_data import Example

EMERGENCIES = [
    # Egyptian / MSA / other dialects
    "حد بيضربني", "حابسني", "هيموتوني", "المركب بيغرق", "ساعدوني انا محبوس",
    "صاحب الشغل حابسني في الشقة", "قافلين عليا الباب", "الحقوووني", "بيهددوني بالقتل",
    "احنا في البحر والمركب بيغرق", "أنا محتجزة ولا أستطيع الخروج", "سيقتلونني",
    "عم يضربوني", "القارب عم يغرق", "ما فيني اطلع من البيت", "بنتي اتخطفت",
    "الموتور وقف واحنا في نص البحر", "أنا مختطف", "مش بيسيبوني اخرج",
    # Arabizi
    "7ad beyedrabni", "7abesny", "el markeb beyeghra2", "ana ma7bos", "el7a2ooni",
    "hay2teloony", "beyhadedni", "2aflin 3alaya el bab", "5atfeeny", "ana ma5tofa",
    # English
    "they locked me in", "help me they will kill me", "he is beating me", "I'm trapped",
    "the boat is sinking", "we are drowning", "they won't let me leave", "I've been kidnapped",
    "my daughter is in danger now", "SOS", "the engine stopped and we are at sea",
    # French
    "ils m'ont enfermé", "ils m’ont enfermée", "il me frappe", "ils vont me tuer",
    "le bateau coule", "au secours", "je suis séquestrée", "ils ne me laissent pas sortir",
    "🆘",
]

NOT_EMERGENCIES = [
    "what is trafficking", "is the boat dangerous?", "my cousin is beaten by his employer",
    "my friend's boss beats him", "what if they lock me in", "what do I do if someone hits me",
    "am I in danger", "est-ce que je suis en danger", "انا في خطر؟", "هل المركب خطر",
    "ابن عمي صاحب الشغل بيضربه", "اخويا محبوس في ليبيا", "لو حد حبسني اعمل ايه",
    "mesh beyedrabni", "ils ne m'ont pas enfermé", "hotline number", "my passport was stolen",
    "I want to work in an Italian restaurant", "hidden fees", "batalna nesafer",
    "المراكب بتغرق كتير", "how many boats sink every year", "the boat sank last year",
    "my boss kept my passport", "الكفيل ماسك جوازي", "I can't leave my job because of debts",
    "مش قادر اطلع فيزا", "help", "ساعدني", "I need help", "j'ai besoin d'aide", "kill time",
    "nobody is hitting me", "je ne suis pas enfermé", "fear of being locked in",
]


@pytest.mark.parametrize("text", EMERGENCIES)
def test_emergency_fires(text: str) -> None:
    assert is_emergency(text)


@pytest.mark.parametrize("text", NOT_EMERGENCIES)
def test_emergency_does_not_fire(text: str) -> None:
    assert not is_emergency(text)


def test_safety_net_alone_on_heldout(heldout: list[Example]) -> None:
    gold = [e.intent == "emergency" for e in heldout]
    fired = [is_emergency(e.text) for e in heldout]
    tp = sum(g and f for g, f in zip(gold, fired, strict=True))
    fp = sum(f and not g for g, f in zip(gold, fired, strict=True))
    assert tp == sum(gold)  # recall 1.0
    assert tp / (tp + fp) >= 0.9


def test_safety_net_precision_on_training_data(training: list[Example]) -> None:
    fired = [e for e in training if e.intent != "emergency" and is_emergency(e.text)]
    assert len(fired) <= 2, [e.text for e in fired]


def test_engine_forces_emergency(engine) -> None:  # type: ignore[no-untyped-def]
    for text in EMERGENCIES:
        result = engine.parse_sync(text)
        assert result.intent.name == "emergency", text
        assert result.intent.confidence >= 0.95
        assert result.ranking[0] == result.intent
