from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.content import ContentError
from bot.i18n import UiCatalog, content_root


def broken_copy(tmp_path: Path, lang: str, old: str, new: str) -> Path:
    root = tmp_path / "content"
    shutil.copytree(content_root(), root)
    path = root / lang / "ui.yml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return root


def test_the_real_catalog_is_complete() -> None:
    assert UiCatalog.load().check() == []


@pytest.mark.parametrize(("old", "new", "field", "message"), [
    ('  "yes": ', "  yes: ", "common.True", "key is not text"),
    ('  cover: "Done ✔️"', "  cover:", "exit.cover", "expected text, got NoneType"),
])
def test_structural_problems_name_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    with pytest.raises(ContentError) as caught:
        UiCatalog.load(broken_copy(tmp_path, "en", old, new))
    assert any(p.file == "content/en/ui.yml" and p.field == field and message in p.message
               for p in caught.value.problems), caught.value.problems


def test_placeholders_must_match_across_languages(tmp_path: Path) -> None:
    root = broken_copy(tmp_path, "ar", 'counter: "({n}/{total})"', 'counter: "({n})"')
    problems = UiCatalog.load(root).check()
    assert [str(p) for p in problems] == [
        "content/ar/ui.yml: awareness.counter: placeholders differ from English"]
