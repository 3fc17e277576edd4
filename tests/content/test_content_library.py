"""The real content in ``content/`` passes the checker and serves what the flows need."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.content import (
    DEFAULT_CONTENT_ROOT,
    LANGUAGES,
    ContentError,
    ContentLibrary,
    Problem,
    check,
)
from bot.content.limits import (
    KNOWN_INTENTS,
    LEARNING_INTENTS,
    REQUIRED_INDICATORS,
    SERVICE_CATEGORIES,
)

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return ContentLibrary.load(REPO_CONTENT)


def test_real_content_passes_check() -> None:
    problems = check(REPO_CONTENT)
    assert problems == [], "\n".join(str(p) for p in problems)


def test_default_root_is_the_repository_content() -> None:
    if os.environ.get("SANAD_CONTENT_DIR"):
        pytest.skip("SANAD_CONTENT_DIR overrides the default root")
    assert DEFAULT_CONTENT_ROOT == REPO_CONTENT
    assert check() == []


def test_load_with_defaults_works() -> None:
    if os.environ.get("SANAD_CONTENT_DIR"):
        pytest.skip("SANAD_CONTENT_DIR overrides the default root")
    assert ContentLibrary.load().modules("ar")


def test_at_least_ten_modules_in_every_language(library: ContentLibrary) -> None:
    ids = {lang: [m.id for m in library.modules(lang)] for lang in LANGUAGES}
    assert len(ids["ar"]) >= 10
    for lang in LANGUAGES:
        assert ids[lang] == ids["ar"], f"{lang} differs from ar"


def test_modules_come_in_menu_order(library: ContentLibrary) -> None:
    for lang in LANGUAGES:
        orders = [m.order for m in library.modules(lang)]
        assert orders == sorted(orders)
        assert len(set(orders)) == len(orders)


def test_every_module_is_complete_and_sourced(library: ContentLibrary) -> None:
    for lang in LANGUAGES:
        for module in library.modules(lang):
            assert module.lang == lang
            assert 3 <= len(module.messages) <= 6
            assert module.sources, module.id
            known = {s.id for s in module.sources}
            for message in module.messages:
                assert set(message.sources) <= known
            assert any(m.sources for m in module.messages), module.id
            for source in module.sources:
                assert source.title and (source.url or source.publisher)
            for next_id in module.next:
                assert library.module(next_id, lang) is not None
            assert set(module.intents) <= KNOWN_INTENTS


def test_button_fits_whatsapp_and_callback_data(library: ContentLibrary) -> None:
    for lang in LANGUAGES:
        for module in library.modules(lang):
            assert len(module.button) <= 20
            assert len(module.summary) <= 72
            assert len(module.title) <= 60
            assert len(f"aw:open:{module.id}".encode()) <= 64


def test_modules_are_honest_drafts(library: ContentLibrary) -> None:
    """No qualified human has reviewed them yet; the files must say so."""
    for lang in LANGUAGES:
        for module in library.modules(lang):
            assert module.reviewed is False
            assert module.reviewer is None


def test_drafts_hidden_without_show_drafts() -> None:
    production = ContentLibrary.load(REPO_CONTENT, show_drafts=False)
    for lang in LANGUAGES:
        assert production.modules(lang) == ()
        assert production.module("check_job_offer", lang) is None
        assert production.module_for_intent("check_job_offer", lang) is None


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("intent", LEARNING_INTENTS)
def test_each_learning_intent_maps_to_a_module(library: ContentLibrary, intent: str,
                                               lang: str) -> None:
    module = library.module_for_intent(intent, lang)
    assert module is not None
    assert module.intents[0] == intent
    primaries = [m.id for m in library.modules(lang) if m.intents[:1] == (intent,)]
    assert primaries == [module.id]


def test_unknown_language_and_module(library: ContentLibrary) -> None:
    assert library.modules("so") == ()
    assert library.module("check_job_offer", "so") is None
    assert library.module("no_such_module", "en") is None
    assert library.module_for_intent("greet", "en") is None


def test_only_verified_services_are_returned(library: ContentLibrary) -> None:
    services = library.services()
    assert services
    assert all(s.verified for s in services)
    assert all(s.verified_on is not None for s in services)
    ids = {s.id for s in services}
    # Kept in services.yml for the next reviewer, but never shown.
    assert "mol_recruitment_check" not in ids
    assert library.service("mol_recruitment_check") is None
    assert library.service("egyptian_german_centre") is None


def test_key_hotlines_are_present(library: ContentLibrary) -> None:
    expected = {
        "child_helpline_16000": "16000",
        "ncw_15115": "15115",
        "nchr_15508": "15508",
        "police_122": "122",
        "ambulance_123": "123",
    }
    for service_id, phone in expected.items():
        service = library.service(service_id)
        assert service is not None, service_id
        assert service.phone == phone
        assert service.source.title
        for lang in LANGUAGES:
            assert service.name[lang] and service.helps_with[lang]


def test_services_by_category(library: ContentLibrary) -> None:
    child = library.services(category="child")
    assert [s.id for s in child] == ["child_helpline_16000"]
    for category in SERVICE_CATEGORIES:
        assert all(category in s.categories for s in library.services(category=category))
    with pytest.raises(ValueError):
        library.services(category="no_such_category")


def test_phone_numbers_are_digits(library: ContentLibrary) -> None:
    for service in library.services():
        assert service.phone is None or service.phone.isdigit()


def test_screening_has_what_the_flow_needs(library: ContentLibrary) -> None:
    spec = library.screening
    ids = [q.id for q in spec.questions]
    assert 10 <= len(ids) <= 14
    assert set(REQUIRED_INDICATORS) <= set(ids)
    assert [o.id for o in spec.age_options if o.minor] == ["under_18"]
    assert dict(spec.thresholds) == {"medium": 3, "high": 8, "urgent": 14}
    assert set(spec.level_text) == {"low", "medium", "high", "urgent"}
    for question in spec.questions:
        assert 1 <= question.weight <= 5
        for lang in LANGUAGES:
            assert question.text[lang] and question.why[lang] and question.advice[lang]
            assert len(question.text[lang]) <= 300
        for service_id in question.services:
            assert library.service(service_id) is not None
    for flag in spec.red_flags:
        assert set(flag.all_of) <= set(ids) | {"minor"}
    assert spec.question("violence_threats") is not None


def test_required_red_flags(library: ContentLibrary) -> None:
    flags = {(frozenset(f.all_of), f.min_level) for f in library.screening.red_flags}
    assert (frozenset({"documents_retained", "not_free_to_leave"}), "high") in flags
    assert (frozenset({"violence_threats"}), "high") in flags
    assert (frozenset({"minor"}), "high") in flags
    assert (frozenset({"violence_threats", "not_free_to_leave"}), "urgent") in flags


def test_library_is_read_only(library: ContentLibrary) -> None:
    service = library.services()[0]
    with pytest.raises(TypeError):
        service.name["en"] = "changed"  # type: ignore[index]
    with pytest.raises(AttributeError):
        service.phone = "0"  # type: ignore[misc]


def test_problem_and_error_format() -> None:
    problem = Problem("content/fr/modules/x.yml", "messages[2].text",
                      "640 characters (limit 600)")
    assert str(problem) == "content/fr/modules/x.yml: messages[2].text: 640 characters (limit 600)"
    error = ContentError([problem])
    assert error.problems == [problem]
    assert str(problem) in str(error)
