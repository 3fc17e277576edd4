"""``sanad content check`` validates ``content/partners.yml`` (referral partners), naming the
file and the field of every problem, instead of the back office failing at start-up."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import Problem, check

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"
FILE = "content/partners.yml"


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, root, ignore=shutil.ignore_patterns("ui.yml"))
    return root


def edit(root: Path, name: str, change: Callable[[Any], None]) -> None:
    path = root / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def at(problems: list[Problem], field: str) -> list[str]:
    return [p.message for p in problems if p.file == FILE and p.field == field]


def test_the_real_partners_file_passes() -> None:
    assert [p for p in check(REPO_CONTENT) if p.file == FILE] == []


def test_a_broken_partners_file_names_every_problem(content: Path) -> None:
    def breakage(data: dict[str, Any]) -> None:
        first, second, third = data["partners"][:3]
        first["services"] = ["no_such_service"]
        del second["source"]
        second["governorates"] = ["atlantis"]
        third["id"] = first["id"]
        third["contact"] = {"verified": False, "phone": "0123456789"}
        third["source"] = {"title": "A title nobody can find again"}

    edit(content, "partners.yml", breakage)
    problems = check(content)
    assert any("unknown service 'no_such_service'" in m for m in at(problems,
                                                                    "partners[0].services[0]"))
    assert any("is required" in m for m in at(problems, "partners[1].source"))
    assert any("unknown area 'atlantis'" in m for m in at(problems,
                                                          "partners[1].governorates[0]"))
    assert any("duplicate partner id" in m for m in at(problems, "partners[2].id"))
    assert any("unverified contact" in m for m in at(problems, "partners[2].contact.phone"))
    assert any("url or, failing that, a publisher" in m
               for m in at(problems, "partners[2].source.url"))


def test_a_partner_service_that_is_no_longer_verified(content: Path) -> None:
    """Un-verifying a service in services.yml breaks the partners that deliver it."""
    def unverify(data: dict[str, Any]) -> None:
        for service in data["services"]:
            if service["id"] == "iom_egypt":
                service["verified"] = False
                service["note"] = "Unverified: the page moved."

    edit(content, "services.yml", unverify)
    partners = yaml.safe_load((content / "partners.yml").read_text("utf-8"))["partners"]
    index = next(i for i, p in enumerate(partners) if "iom_egypt" in p["services"])
    position = partners[index]["services"].index("iom_egypt")
    found = at(check(content), f"partners[{index}].services[{position}]")
    assert found and "not verified" in found[0]


def test_a_partner_without_services_or_with_a_typo_field(content: Path) -> None:
    def breakage(data: dict[str, Any]) -> None:
        data["partners"][0]["services"] = []
        data["partners"][0]["governorate"] = ["cairo"]

    edit(content, "partners.yml", breakage)
    problems = check(content)
    assert at(problems, "partners[0].services")
    assert "unknown field" in at(problems, "partners[0].governorate")


def test_no_partners_file_is_not_a_problem(content: Path) -> None:
    (content / "partners.yml").unlink()
    assert [p for p in check(content) if "partners" in p.file] == []
