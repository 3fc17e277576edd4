"""Findings of the content review (#26): topic names typed alone open their module (also as a
first message and while reading the general module), marriage-age questions reach child
marriage, refugee legal-aid questions get the refugee legal-aid service, the coercion offer
stays off module answers it does not concern, and the two short modules answer five questions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import Sanad, build
from bot.content import ContentLibrary
from bot.content.topics import hits, keyword_hits
from bot.messages import Inbound, Turn
from nlu import EmbeddedNLU
from nlu.safeguard import SafetyAssessment
from tests.conftest import make_settings

REPO_CONTENT = Path(__file__).resolve().parents[1] / "content"
GREETING = {"ar": "مرحبا", "en": "hello", "fr": "bonjour"}


async def say(app: Sanad, user: str, *steps: str) -> Turn:
    """Each step is typed text, or ``@button``; the last turn."""
    ref = app.store.user_ref("terminal", user)
    turn = None
    for step in steps:
        inbound = (Inbound(user=ref, button_id=step[1:]) if step.startswith("@")
                   else Inbound(user=ref, text=step))
        turn = await app.engine.handle_turn(inbound, address=user)
    assert turn is not None
    return turn


def opened(turn: Turn) -> list[str]:
    return [e.module_id for e in turn.events if e.name == "ModuleOpened"]


def text_of(turn: Turn) -> str:
    return "\n".join(m.text for m in turn.outbound)


def buttons(turn: Turn) -> list[str]:
    return [b.id for m in turn.outbound for b in m.buttons]


# --- 1. topic names typed alone ----------------------------------------------------------
@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return ContentLibrary.load(REPO_CONTENT)


def test_a_phrase_keyword_matches_behind_arabic_prefixes(library: ContentLibrary) -> None:
    module = library.module("sexual_exploitation", "ar")
    assert module is not None
    assert keyword_hits(module, "الاستغلال الجنسي") == 1   # ال + استغلال, ال + جنسي
    assert keyword_hits(module, "استغلال وحاجات جنسية تانية") == 0  # not a phrase
    assert hits(["child labour"], "what about child labours") == 1
    assert hits(["child labour"], "labour of a child") == 0


@pytest.mark.parametrize(("intent", "lang", "text", "expected"), [
    ("learn_trafficking", "en", "forced labour", "forced_labour_signs"),
    ("learn_trafficking", "fr", "travail forcé", "forced_labour_signs"),
    ("know_rights", "ar", "الشغل بالغصب", "forced_labour_signs"),
    ("learn_trafficking", "fr", "sécurité en ligne", "online_safety"),
    ("learn_trafficking", "ar", "الأمان على النت", "online_safety"),
    ("check_job_offer", "en", "online recruiters", "online_recruitment"),
    ("learn_trafficking", "ar", "السماسرة أونلاين", "online_recruitment"),
    ("learn_irregular_migration", "en", "returning home", "returning_home"),
    ("learn_irregular_migration", "fr", "retour au pays", "returning_home"),
    ("learn_trafficking", "ar", "جواز الأطفال", "child_marriage"),
    ("report_concern", "en", "children working in the fields", "child_labour"),
])
def test_the_older_topics_are_reachable_by_their_names(library: ContentLibrary, intent: str,
                                                       lang: str, text: str,
                                                       expected: str) -> None:
    module = library.module_for_intent(intent, lang, text)
    assert module is not None and module.id == expected


@pytest.mark.parametrize(("lang", "text", "expected"), [
    ("fr", "sextorsion", "sexual_exploitation"),
    ("fr", "travail des enfants", "child_labour"),
    ("fr", "trafic d'organes", "organ_trafficking"),
    ("en", "child labour", "child_labour"),
    ("ar", "الاستغلال الجنسي", "sexual_exploitation"),
])
async def test_a_topic_name_typed_at_the_menu_or_inside_the_general_module(
        sanad_sqlite: Sanad, lang: str, text: str, expected: str) -> None:
    user = f"topic-{lang}-{text}"
    assert opened(await say(sanad_sqlite, user, GREETING[lang], text)) == [expected]
    # While reading the general module the name opened the subtopic too (it answered "we're
    # on 'What is trafficking?'" before).
    inside = await say(sanad_sqlite, user, "@aw:open:what_is_trafficking", text)
    assert opened(inside) == [expected]


async def test_a_french_topic_word_as_the_very_first_message(sanad_sqlite: Sanad) -> None:
    turn = await say(sanad_sqlite, "first-sextorsion", "sextorsion")
    assert opened(turn) == ["sexual_exploitation"]
    assert "Exploitation sexuelle et sextorsion en ligne" in text_of(turn)


# --- 2. the legal age of marriage ----------------------------------------------------------
@pytest.mark.parametrize(("lang", "text"), [
    ("en", "what is the legal age of marriage?"),
    ("en", "what's the minimum age for marriage in Egypt?"),
    ("ar", "سن الجواز القانوني كام؟"),
    ("ar", "السن القانوني للزواج كام"),
    ("fr", "quel est l'âge légal du mariage ?"),
    ("fr", "à quel âge peut-on se marier en Égypte ?"),
])
async def test_marriage_age_questions_open_child_marriage(sanad_sqlite: Sanad, lang: str,
                                                          text: str) -> None:
    turn = await say(sanad_sqlite, f"age-{lang}-{text}", GREETING[lang], text)
    assert opened(turn) == ["child_marriage"]


def test_marriage_words_win_over_rights_words_under_know_rights(library: ContentLibrary) -> None:
    for lang, text in (("ar", "سن الجواز القانوني"), ("en", "minimum age for marriage"),
                       ("fr", "à quel âge se marier")):
        module = library.module_for_intent("know_rights", lang, text)
        assert module is not None and module.id == "child_marriage"
    module = library.module_for_intent("know_rights", "ar", "الكفيل ماسك جوازي")
    assert module is not None and module.id == "know_your_rights"


# --- 3. refugee legal aid ------------------------------------------------------------------
@pytest.mark.parametrize(("lang", "text", "heading"), [
    ("en", "I'm a refugee, where can I get a lawyer?", "Legal help:"),
    ("ar", "أنا لاجئ، ألاقي محامي فين؟", "مساعدة قانونية:"),
    ("fr", "je suis réfugié, où trouver un avocat ?", "Aide juridique :"),
])
async def test_a_refugee_asking_for_a_lawyer_gets_refugee_legal_aid(
        sanad_sqlite: Sanad, lang: str, text: str, heading: str) -> None:
    turn = await say(sanad_sqlite, f"lawyer-{lang}", GREETING[lang], text)
    body = text_of(turn)
    stars = sanad_sqlite.content.service("stars_legal_psychosocial")
    assert stars is not None and stars.name[lang] in body
    assert body.startswith(heading)
    assert "122" not in body   # the general emergency list is one tap away, not the answer
    assert "sv:emergency" in buttons(turn)


async def test_a_plain_request_for_help_still_gets_the_emergency_list(sanad_sqlite: Sanad) -> None:
    body = text_of(await say(sanad_sqlite, "help-plain", "hello", "where can I get help?"))
    assert "122" in body and "StARS" not in body


# --- 4. the coercion offer beside module answers ----------------------------------------------
@dataclass
class FixedSafety:
    """The safety layer as a stub: the same indicators for every text."""

    labels: frozenset[str]

    def assess(self, text: str) -> SafetyAssessment:
        return SafetyAssessment(labels=self.labels if text else frozenset())


@pytest.fixture
async def forced_marriage_flagged(sqlite_url: str,
                                  embedded_nlu: EmbeddedNLU) -> AsyncIterator[Sanad]:
    app = await build(make_settings(sqlite_url), nlu=embedded_nlu,
                      safety=FixedSafety(frozenset({"forced_marriage"})))
    yield app
    await app.store.engine.dispose()


@pytest.fixture
async def documents_flagged(sqlite_url: str, embedded_nlu: EmbeddedNLU) -> AsyncIterator[Sanad]:
    app = await build(make_settings(sqlite_url), nlu=embedded_nlu,
                      safety=FixedSafety(frozenset({"documents_retained"})))
    yield app
    await app.store.engine.dispose()


COERCION = "like someone keeping your passport"


async def test_no_passport_warning_beside_a_marriage_answer(
        forced_marriage_flagged: Sanad) -> None:
    turn = await say(forced_marriage_flagged, "cm", "hello", "@aw:open:child_marriage",
                     "what is the legal age of marriage?")
    body = text_of(turn)
    assert "The legal age of marriage in Egypt is 18" in body
    assert COERCION not in body
    assert "aw:src:child_marriage:legal_age" in buttons(turn)
    # Outside a module answer the same indicator still brings the offer.
    menu = await say(forced_marriage_flagged, "cm2", "hello", "tell me about child marriage")
    assert COERCION in text_of(menu)


async def test_the_passport_warning_stays_beside_a_passport_answer(
        documents_flagged: Sanad) -> None:
    turn = await say(documents_flagged, "pp", "hello", "@aw:open:check_job_offer",
                     "should I give him my passport?")
    body = text_of(turn)
    assert "your passport should stay with you" in body
    assert COERCION in body and "sc:start" in buttons(turn)


# --- 5. five questions in the two short modules ----------------------------------------------
@pytest.mark.parametrize(("module_id", "added"), [("organ_trafficking", "report_broker"),
                                                  ("child_labour", "parents_agree")])
def test_five_questions_in_every_language(library: ContentLibrary, module_id: str,
                                          added: str) -> None:
    orders = set()
    for lang in ("ar", "en", "fr"):
        module = library.module(module_id, lang)
        assert module is not None
        orders.add(tuple(q.id for q in module.questions))
        question = module.question(added)
        assert question is not None and question.sources and len(question.answer) <= 600
    assert len(orders) == 1 and len(orders.pop()) == 5
