"""A new language ships progressively (issue #22): declared with ``complete=False`` and only
its own name translated, the content checks pass and everything it lacks (interface texts,
modules, services, screening, the Telegram menu, WhatsApp labels) comes from its fallback.

Runs in a subprocess: the language is declared before anything reads ``bot.languages``, as a
real deployment would declare it in that file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
import bot.languages as declared
declared.LANGUAGES = declared.Languages((*declared.LANGUAGES,
    declared.Language("ti", direction="ltr", script="Ethi", complete=False)))

from bot.channels.telegram_commands import load_commands
from bot.channels.whatsapp_templates import WhatsAppTexts, check as check_whatsapp
from bot.content import ContentLibrary, check
from bot.i18n import UiCatalog

library = ContentLibrary.load()
ui = UiCatalog.load()
services = library.services(category="emergency")
print(json.dumps({
    "problems": [str(p) for p in check() + ui.check() + check_whatsapp()],
    "modules_ti": [m.id for m in library.modules("ti")],
    "modules_en": [m.id for m in library.modules("en")],
    "first_title_ti": library.modules("ti")[0].title,
    "first_title_en": library.modules("en")[0].title,
    "own_module_ti": library.module("what_is_trafficking", "ti").title,
    "service_name_ti": services[0].name["ti"],
    "service_name_en": services[0].name["en"],
    "menu_text_ti": ui.text("ti", "common.menu"),
    "menu_text_en": ui.text("en", "common.menu"),
    "language_name_ti": ui.text("ti", "language.name"),
    "telegram_menus": sorted(load_commands()),
}, ensure_ascii=False))
"""


def test_a_language_with_only_its_name_and_one_module_passes_checks_and_falls_back(
        tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    (content / "ti" / "modules").mkdir(parents=True)
    (content / "ti" / "ui.yml").write_text('language:\n  name: "ትግርኛ"\n', encoding="utf-8")
    # one module translated (the title is enough to tell it from the English one)
    english = (content / "en" / "modules" / "what_is_trafficking.yml").read_text("utf-8")
    title_line = next(line for line in english.splitlines() if line.startswith("title:"))
    (content / "ti" / "modules" / "what_is_trafficking.yml").write_text(
        english.replace(title_line, 'title: "ምንታይ እዩ ዘዋውራ ሰባት"'), encoding="utf-8")
    env = {**os.environ, "SANAD_CONTENT_DIR": str(content), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["problems"] == []
    assert seen["modules_ti"] == seen["modules_en"]
    assert seen["own_module_ti"] == "ምንታይ እዩ ዘዋውራ ሰባት"
    assert seen["first_title_ti"] in (seen["first_title_en"], "ምንታይ እዩ ዘዋውራ ሰባት")
    assert seen["service_name_ti"] == seen["service_name_en"]
    assert seen["menu_text_ti"] == seen["menu_text_en"]
    assert seen["language_name_ti"] == "ትግርኛ"
    assert seen["telegram_menus"] == ["ar", "en", "fr"]


def test_a_complete_language_must_still_translate_everything(tmp_path: Path) -> None:
    """The fallback is for declared progressive languages only: French missing a module is
    still an error."""
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    (content / "fr" / "modules" / "what_is_trafficking.yml").unlink()
    script = ("from bot.content import check\n"
              "print([str(p) for p in check()])")
    env = {**os.environ, "SANAD_CONTENT_DIR": str(content), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "missing translation of module 'what_is_trafficking'" in done.stdout
