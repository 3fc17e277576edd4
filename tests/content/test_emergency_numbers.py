"""The emergency answer (``services.yml``, category ``emergency``) for people who fear the police.

Undocumented migrants and trafficking victims often fear the police; NGO practice is safety
first, with the options explained. So the emergency numbers do not lead with the police: the
ambulance, the hotlines NCCPIM&TIP names for trafficking victims, UNHCR for refugees, then the
police, each saying what it is for, and every one of them verified. They are served even
before a reviewer approves the directory (``bot/content/gate.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import LANGUAGES, ContentLibrary
from bot.content.review import Approvals

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"
EXPECTED = ["ambulance_123", "child_helpline_16000", "ncw_15115", "nchr_15508", "unhcr_egypt",
            "police_122"]


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return ContentLibrary.load(REPO_CONTENT)


def test_the_police_is_not_the_first_or_only_option(library: ContentLibrary) -> None:
    ids = [s.id for s in library.services(category="emergency")]
    assert ids == EXPECTED
    assert ids[0] != "police_122" and ids.index("police_122") == len(ids) - 1


def test_every_emergency_line_is_verified_and_says_what_it_is_for(
        library: ContentLibrary) -> None:
    for service in library.services(category="emergency"):
        assert service.verified and service.verified_on and service.phone, service.id
        assert service.source.title or service.source.publisher, service.id
        for lang in LANGUAGES:
            assert service.name[lang] and len(service.helps_with[lang]) >= 20, (service.id, lang)


def test_the_same_lines_are_served_before_the_directory_is_approved() -> None:
    production = ContentLibrary.load(REPO_CONTENT, show_drafts=False)
    production.apply_approvals(Approvals(()))
    assert not production.services_approved
    assert [s.id for s in production.services(category="emergency")] == EXPECTED
    assert [s.id for s in production.services()] == EXPECTED


def test_the_services_module_leads_with_help_that_is_not_the_police(
        library: ContentLibrary) -> None:
    for lang in LANGUAGES:
        module = library.module("services_help", lang)
        assert module is not None
        first = module.messages[0].text
        assert first.index("123") < first.index("122"), lang
        fear = module.question("fear_police")
        assert fear is not None and "122" not in fear.answer
        for number in ("123", "16000", "15115", "15508", "0227390400"):
            assert number in fear.answer, (lang, number)
