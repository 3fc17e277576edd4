"""Production serves only approved content, by hash (``bot.content.review``/``gate``).

No database here: approvals are built as ``Review`` values, exactly what
``review_store.load_approvals`` returns. Each test copies the real ``content/`` so that it
can edit YAML the way an editor would.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import LANGUAGES, ContentLibrary
from bot.content.review import (
    Approvals,
    Item,
    Review,
    content_hash,
    current_items,
    statuses,
)
from handoff.content_cli import production_problems

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"
MODULE = "check_job_offer"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, root, ignore=shutil.ignore_patterns("ui.yml"))
    return root


def edit(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def module_path(root: Path, lang: str, module_id: str = MODULE) -> Path:
    return root / lang / "modules" / f"{module_id}.yml"


def items_of(root: Path) -> dict[tuple[str, str, str], Item]:
    return {item.key: item for item in current_items(root)}


def approve(item: Item, at: datetime = T0, reviewer: str = "Amal (IOM)") -> Review:
    return Review(item.kind, item.item_id, item.lang, item.digest, "approved", reviewer, "",
                  at, item.data)


def approve_all(root: Path, *, kinds: tuple[str, ...] = ("module", "screening", "services"),
                at: datetime = T0) -> list[Review]:
    return [approve(i, at) for i in current_items(root) if i.kind in kinds]


def production(root: Path, reviews: list[Review]) -> ContentLibrary:
    library = ContentLibrary.load(root, show_drafts=False)
    library.apply_approvals(Approvals(tuple(reviews)))
    return library


# --- hashes --------------------------------------------------------------------------------
def test_hash_ignores_key_order_and_review_bookkeeping(content: Path) -> None:
    before = items_of(content)[("module", MODULE, "en")].digest
    edit(module_path(content, "en"),
         lambda d: d.update(reviewed=True, reviewer="Someone (YAML, obsolete)"))
    data = yaml.safe_load(module_path(content, "en").read_text(encoding="utf-8"))
    shuffled = dict(reversed(list(data.items())))
    module_path(content, "en").write_text(
        "# a comment changes nothing\n" + yaml.safe_dump(shuffled, allow_unicode=True),
        encoding="utf-8")
    assert items_of(content)[("module", MODULE, "en")].digest == before


def test_hash_changes_with_the_text(content: Path) -> None:
    before = items_of(content)[("module", MODULE, "en")].digest
    edit(module_path(content, "en"), lambda d: d["messages"][0].update(text="Changed."))
    after = items_of(content)
    assert after[("module", MODULE, "en")].digest != before
    assert len({after[("module", MODULE, lang)].digest for lang in LANGUAGES}) == 3


def test_screening_hash_is_per_language_but_weights_count_everywhere(content: Path) -> None:
    before = {lang: items_of(content)[("screening", "screening", lang)].digest
              for lang in LANGUAGES}
    path = content / "screening.yml"
    edit(path, lambda d: d["questions"][0]["text"].update(fr="Une autre formulation ?"))
    french_fix = {lang: items_of(content)[("screening", "screening", lang)].digest
                  for lang in LANGUAGES}
    assert french_fix["fr"] != before["fr"]
    assert (french_fix["ar"], french_fix["en"]) == (before["ar"], before["en"])
    edit(path, lambda d: d["questions"][0].update(weight=d["questions"][0]["weight"] % 5 + 1))
    reweighted = {lang: items_of(content)[("screening", "screening", lang)].digest
                  for lang in LANGUAGES}
    assert all(reweighted[lang] != french_fix[lang] for lang in LANGUAGES)


def test_hash_is_a_pure_function_of_the_data() -> None:
    data = {"id": "x", "title": "T", "reviewed": False}
    assert content_hash("module", data, "en") == content_hash(
        "module", {"title": "T", "id": "x", "reviewer": "n"}, "en")
    assert content_hash("module", data, "en") != content_hash("module", {"id": "x"}, "en")


# --- what production serves ----------------------------------------------------------------
def test_production_serves_nothing_unapproved(content: Path) -> None:
    edit(module_path(content, "en"),
         lambda d: d.update(reviewed=True, reviewer="A. Caseworker (YAML)"))
    library = production(content, [])
    for lang in LANGUAGES:
        assert library.modules(lang) == ()
        assert library.module(MODULE, lang) is None
        assert library.module_for_intent("check_job_offer", lang) is None
    assert library.service("nccpim_tip") is None
    assert all("emergency" in s.categories for s in library.services())
    assert not library.screening_offered
    assert library.served is not None
    assert f"module {MODULE} (en): never approved" in library.served.hidden
    assert any(h.startswith("screening questionnaire") for h in library.served.hidden)


def test_development_still_serves_drafts(content: Path) -> None:
    library = ContentLibrary.load(content, show_drafts=True)
    library.apply_approvals(Approvals())  # no effect with drafts shown
    assert library.module(MODULE, "en") is not None
    assert library.screening_offered and library.services()
    assert not library.gated and library.served is None


def test_approving_a_module_serves_that_module_in_that_language_only(content: Path) -> None:
    item = items_of(content)[("module", MODULE, "en")]
    library = production(content, [approve(item)])
    assert [m.id for m in library.modules("en")] == [MODULE]
    assert library.module_for_intent("check_job_offer", "en") is not None
    assert library.modules("ar") == () and library.modules("fr") == ()


def test_approval_arrives_without_a_restart(content: Path) -> None:
    library = production(content, [])
    assert library.modules("en") == ()
    item = items_of(content)[("module", MODULE, "en")]
    library.apply_approvals(Approvals((approve(item),)))
    assert library.module(MODULE, "en") is not None


def test_editing_an_approved_module_freezes_the_approved_version(content: Path) -> None:
    item = items_of(content)[("module", MODULE, "en")]
    approved_title = item.data["title"]
    edit(module_path(content, "en"), lambda d: d.update(title="Unreviewed new title"))
    library = production(content, [approve(item)])
    served = library.module(MODULE, "en")
    assert served is not None and served.title == approved_title
    assert library.served is not None and any(MODULE in f for f in library.served.frozen)
    (status,) = [s for s in statuses(library.review_items(), Approvals((approve(item),)))
                 if s.item.key == ("module", MODULE, "en")]
    assert status.status == "stale" and status.last is not None


def test_reapproving_serves_the_new_version(content: Path) -> None:
    old = items_of(content)[("module", MODULE, "en")]
    edit(module_path(content, "en"), lambda d: d.update(title="Reviewed new title"))
    new = items_of(content)[("module", MODULE, "en")]
    library = production(content, [approve(old), approve(new, T0 + timedelta(days=1))])
    served = library.module(MODULE, "en")
    assert served is not None and served.title == "Reviewed new title"


def test_requesting_changes_on_the_approved_version_withdraws_it(content: Path) -> None:
    item = items_of(content)[("module", MODULE, "en")]
    changes = Review(item.kind, item.item_id, item.lang, item.digest, "changes_requested",
                     "Amal (IOM)", "the hotline number is outdated", T0 + timedelta(hours=1))
    library = production(content, [approve(item), changes])
    assert library.module(MODULE, "en") is None
    (status,) = statuses([item], Approvals((approve(item), changes)))
    assert status.status == "never" and status.changes_requested


def test_a_frozen_version_that_no_longer_passes_the_checks_is_hidden(content: Path) -> None:
    item = items_of(content)[("module", MODULE, "en")]
    broken = Review(item.kind, item.item_id, item.lang, "0" * 64, "approved", "Amal", "", T0,
                    {**item.data, "title": "x" * 500})  # over today's title limit
    library = production(content, [broken])
    assert library.module(MODULE, "en") is None
    assert library.served is not None and library.served.notes


def test_screening_needs_every_language(content: Path) -> None:
    items = items_of(content)
    reviews = [approve(items[("screening", "screening", lang)]) for lang in ("ar", "en")]
    assert not production(content, reviews).screening_offered
    reviews.append(approve(items[("screening", "screening", "fr")]))
    library = production(content, reviews)
    assert library.screening_offered
    assert library.screening.questions


def test_an_edited_screening_keeps_serving_the_approved_version(content: Path) -> None:
    reviews = approve_all(content, kinds=("screening", "services"))
    first = yaml.safe_load((content / "screening.yml").read_text(encoding="utf-8"))
    edit(content / "screening.yml",
         lambda d: d["questions"][0]["text"].update(en="An unreviewed rewording?"))
    library = production(content, reviews)
    assert library.screening_offered
    assert library.screening.questions[0].text["en"] == first["questions"][0]["text"]["en"]
    assert library.served is not None and any("screening" in f for f in library.served.frozen)


def test_only_emergency_numbers_are_listed_before_the_directory_is_approved(
        content: Path) -> None:
    library = production(content, [])
    emergency = library.services(category="emergency")
    assert emergency and library.services() == emergency
    assert all(s.verified and s.phone for s in emergency)
    assert not library.services_approved


def test_services_are_hidden_until_approved_then_frozen(content: Path) -> None:
    assert production(content, []).service("nccpim_tip") is None
    reviews = approve_all(content, kinds=("services",))
    approved = production(content, reviews).services()
    assert approved and all(s.verified for s in approved)
    first = approved[0].id

    def reword(data: Any) -> None:
        entry = next(s for s in data["services"] if s["id"] == first)
        entry["helps_with"]["en"] = "An unreviewed description."

    edit(content / "services.yml", reword)
    frozen = production(content, reviews)
    assert [s.id for s in frozen.services()] == [s.id for s in approved]
    served = frozen.service(first)
    assert served is not None and served.helps_with["en"] == approved[0].helps_with["en"]
    draft = ContentLibrary.load(content).service(first)
    assert draft is not None and draft.helps_with["en"] == "An unreviewed description."


# --- the production check --------------------------------------------------------------------
def test_production_check_fails_on_an_empty_library(content: Path) -> None:
    problems = production_problems(production(content, []))
    files = {p.file for p in problems}
    assert {f"content/{lang}/modules" for lang in LANGUAGES} <= files
    assert "content/screening.yml" in files and "content/services.yml" in files


def test_production_check_passes_when_everything_is_approved(content: Path) -> None:
    assert production_problems(production(content, approve_all(content))) == []


def test_production_check_names_a_language_left_empty(content: Path) -> None:
    reviews = [r for r in approve_all(content) if not (r.kind == "module" and r.lang == "fr")]
    problems = production_problems(production(content, reviews))
    assert [p.file for p in problems] == ["content/fr/modules"]


def test_development_has_no_production_problems(content: Path) -> None:
    assert production_problems(ContentLibrary.load(content, show_drafts=True)) == []


def test_configuration_checks_can_still_name_unapproved_services(content: Path) -> None:
    library = production(content, [])
    assert library.service("nccpim_tip") is None
    found = library.configured_service("nccpim_tip")
    assert found is not None and found.verified
