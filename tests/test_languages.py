"""Languages declared once (bot/languages.py), and a language that ships progressively."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.config import SUPPORTED_LANGUAGES
from bot.content.limits import LANGUAGES as CONTENT_LANGUAGES
from bot.i18n import UiCatalog, content_root
from bot.languages import LANGUAGES, REFERENCE, Language, Languages


def test_everything_that_lists_languages_reads_the_declaration() -> None:
    assert SUPPORTED_LANGUAGES == CONTENT_LANGUAGES == LANGUAGES.codes == ("ar", "en", "fr")
    assert UiCatalog.load().texts.keys() == set(LANGUAGES.codes)
    assert LANGUAGES.rtl == {"ar"}
    assert all((content_root() / code / "ui.yml").is_file() for code in LANGUAGES.codes)


@pytest.mark.parametrize(("declared", "message"), [
    ((Language("en", "ltr", "Latn", None), Language("ti", "ltr", "Ethi", "am")),
     "fallback 'am' is not declared"),
    ((Language("en", "ltr", "Latn", None), Language("aa", "ltr", "Latn", "bb"),
      Language("bb", "ltr", "Latn", "aa")), "loop"),
    ((Language("en", "ltr", "Latn", "fr"), Language("fr", "ltr", "Latn", None)),
     "reference language 'en'"),
    ((Language("fr", "ltr", "Latn"),), "fallback 'en' is not declared"),
])
def test_inconsistent_declarations_fail_at_start(declared: tuple[Language, ...],
                                                 message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Languages(declared)


def test_fallback_chains() -> None:
    assert list(LANGUAGES.chain("ar")) == ["ar", "en"]
    assert list(LANGUAGES.chain("en")) == ["en"]
    assert list(LANGUAGES.chain("xx")) == [REFERENCE]  # unknown: the reference


# Two languages that ship progressively: "ti" has a few texts and falls back on "tx", which
# has others and falls back on French. (Test strings, not translations.)
PROGRESSIVE = Languages((
    *LANGUAGES,
    Language("tx", "ltr", "Latn", fallback="fr", complete=False),
    Language("ti", "ltr", "Ethi", fallback="tx", complete=False),
))
TI = 'language:\n  name: "ትግርኛ"\nmenu:\n  prompt: "TI prompt"\n'
TX = 'language:\n  name: "TX"\nmenu:\n  greeting: "TX greeting"\n  prompt: "TX prompt"\n'


def progressive_root(tmp_path: Path, ti: str = TI) -> Path:
    root = tmp_path / "content"
    shutil.copytree(content_root(), root)
    for code, text in (("ti", ti), ("tx", TX)):
        (root / code).mkdir()
        (root / code / "ui.yml").write_text(text, encoding="utf-8")
    return root


def test_a_partial_language_falls_back_text_by_text(tmp_path: Path) -> None:
    ui = UiCatalog.load(progressive_root(tmp_path), PROGRESSIVE)
    assert ui.text("ti", "menu.prompt") == "TI prompt"
    assert ui.text("ti", "menu.greeting") == "TX greeting"
    assert ui.text("ti", "menu.thanks") == ui.text("fr", "menu.thanks")
    assert ui.text("ti", "awareness.counter", n=1, total=3) == ui.text(
        "fr", "awareness.counter", n=1, total=3)
    assert ui.text("ti", "language.name") == "ትግርኛ"
    assert ui.check() == []  # missing texts of a partial language are not errors


def test_a_partial_language_still_needs_its_name_and_known_keys(tmp_path: Path) -> None:
    root = progressive_root(tmp_path, ti='menu:\n  prompt: "TI {oops}"\n  nonsense: "x"\n')
    problems = {(p.file, p.field, p.message) for p in UiCatalog.load(root, PROGRESSIVE).check()}
    assert problems == {
        ("content/ti/ui.yml", "language.name", "missing translation"),
        ("content/ti/ui.yml", "menu.nonsense", "not in content/en/ui.yml"),
        ("content/ti/ui.yml", "menu.prompt", "placeholders differ from English"),
    }


def test_a_complete_language_must_have_every_text(tmp_path: Path) -> None:
    root = progressive_root(tmp_path)
    complete = Languages((*LANGUAGES, Language("tx", "ltr", "Latn", fallback="fr"),
                          Language("ti", "ltr", "Ethi", fallback="tx", complete=False)))
    problems = UiCatalog.load(root, complete).check()
    assert problems and {p.file for p in problems} == {"content/tx/ui.yml"}
