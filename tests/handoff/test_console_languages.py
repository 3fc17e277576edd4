"""The console in Arabic, English and French (issue #20): every key in all three languages
with the same placeholders, ``?lang=fr`` and the language picker, and the choice remembered
for the session."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bot.app import Sanad
from handoff.texts import CONSOLE_LANGUAGES, RTL_LANGUAGES, CannedReply, ConsoleText
from tests.handoff.conftest import PASSWORD, Console, start_console

PLACEHOLDER = re.compile(r"\{(\w+)\}")
PICKER = re.compile(r'<a class="lang-switch" href="([^"]+)" lang="(\w+)" hreflang="\w+"'
                    r'( aria-current="true")?>([^<]+)</a>')


@pytest.fixture
async def console(sanad_sqlite: Sanad) -> AsyncIterator[Console]:
    running = await start_console(sanad_sqlite)
    yield running
    await running.close()
    await running.server.close()


def test_every_key_in_all_three_languages_with_the_same_placeholders() -> None:
    texts = ConsoleText.load()
    assert CONSOLE_LANGUAGES == ("ar", "en", "fr")
    keys = {lang: set(texts.texts[lang]) for lang in CONSOLE_LANGUAGES}
    assert keys["ar"] == keys["en"] == keys["fr"], {
        lang: sorted(keys["en"] ^ found) for lang, found in keys.items()}
    assert texts.problems() == []
    for key in keys["en"]:
        wanted = sorted(PLACEHOLDER.findall(texts.texts["en"][key]))
        for lang in ("ar", "fr"):
            assert sorted(PLACEHOLDER.findall(texts.texts[lang][key])) == wanted, (lang, key)
    untranslated = [k for k in keys["en"] if texts.texts["fr"][k] == texts.texts["en"][k]
                    and len(texts.texts["en"][k]) > 12 and "{" not in texts.texts["en"][k]]
    assert untranslated == [], "French copied from English"


def test_a_missing_french_key_is_reported(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "text.yml"
    path.write_text('ar: {a: "x", b: "y"}\nen: {a: "x", b: "y"}\nfr: {a: "x"}\n',
                    encoding="utf-8")
    assert ConsoleText.load(path).problems() == ["fr: missing b"]


async def test_lang_fr_and_the_picker(console: Console) -> None:
    anonymous = await console.browser()
    page = await (await anonymous.get("/console/login?lang=fr")).text()
    assert '<html lang="fr" dir="ltr">' in page and "Connexion" in page
    links = {m.group(2): (m.group(1), bool(m.group(3)), m.group(4))
             for m in PICKER.finditer(page)}
    assert links == {"ar": ("/console/login?lang=ar", False, "العربية"),
                     "en": ("/console/login?lang=en", False, "English"),
                     "fr": ("/console/login?lang=fr", True, "Français")}
    assert 'name="lang" value="fr"' in page
    response = await anonymous.post("/console/login", {"name": "cw1", "password": PASSWORD,
                                                       "lang": "fr"})
    assert response.status == 303
    queue = await (await anonymous.get("/console/queue")).text()
    assert '<html lang="fr"' in queue and "File des cas" in queue, "the session is French"

    arabic = await (await anonymous.get("/console/queue?lang=ar")).text()
    assert '<html lang="ar" dir="rtl">' in arabic and "ar" in RTL_LANGUAGES
    assert '<html lang="ar"' in await (await anonymous.get("/console/account")).text()
    french = await (await anonymous.get("/console/account?lang=fr")).text()
    assert '<html lang="fr" dir="ltr">' in french and "Mon compte" in french
    unknown = await (await anonymous.get("/console/account?lang=de")).text()
    assert '<html lang="fr"' in unknown, "an unknown language changes nothing"


def test_console_text_and_canned_replies_fall_back_along_the_declared_chain() -> None:
    """A language without a text (a progressive one such as Tigrinya, or an unknown code)
    shows its fallback's text, never a missing key; complete languages must have every key."""
    texts = ConsoleText({"ar": {"a": "أ"}, "en": {"a": "A", "b": "B"}, "fr": {"a": "A-fr"}})
    assert texts.t("ar", "b") == "B"
    assert texts.t("ti", "a") == "A"
    assert texts.t("fr", "a") == "A-fr"
    assert texts.t("fr", "zz") == "zz"
    assert texts.problems() == ["ar: missing b", "fr: missing b"]
    reply = CannedReply("x", {"en": "t"}, {"en": "hello", "ar": "أهلا"})
    assert reply.text_for("ar") == "أهلا"
    assert reply.text_for("fr") == "hello"
    assert reply.text_for("ti") == "hello"
