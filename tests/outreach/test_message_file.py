"""The campaign message file and quiet-hours windows: checked at creation, never at send."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import load_content
from bot.content import ContentLibrary
from bot.outreach.message_file import MessageFileError, load, parse, pick
from bot.outreach.window import WindowError, is_open, parse_window
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def content() -> ContentLibrary:
    return load_content(make_settings("sqlite+aiosqlite://"))[0]


def test_texts_and_buttons_in_every_language(content: ContentLibrary, tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text('ar: "اعرف حقوقك"\nen: "Know your rights"\nfr: "Vos droits"\n'
                    "buttons: [aw:open:what_is_trafficking]\nwindow: '10:00-20:00'\n"
                    "max_handoffs_per_hour: 5\n", encoding="utf-8")

    parsed = load(path, content)

    assert [m.lang for m in parsed.messages] == ["ar", "en", "fr"]
    assert (parsed.window, parsed.max_handoffs_per_hour) == ("10:00-20:00", 5)
    for message in parsed.messages:
        module = content.module("what_is_trafficking", message.lang)
        assert module is not None
        assert [(b.id, b.title) for b in message.buttons] == [
            ("aw:open:what_is_trafficking", module.button)]
    assert pick(parsed.messages, "fr").text == "Vos droits"
    assert pick(parsed.messages, "fr").outbound().text == (
        "Vos droits\n\nPour ne plus recevoir ces messages, envoyez : stop")
    assert pick(parsed.messages, None).lang == "ar"


@pytest.mark.parametrize(("raw", "problem"), [
    ("just text", "expected a mapping"),
    ({}, "no text"),
    ({"ar": ""}, "ar: the text must be a non-empty string"),
    ({"en": "x" * 4061}, "en: 4061 characters, more than 4060 (4096 with the opt-out line)"),
    ({"en": "hi", "de": "hallo"}, "unknown key(s) de"),
    ({"en": "hi", "buttons": ["menu:learn"]}, "'menu:learn' is not an id like aw:open:"),
    ({"en": "hi", "buttons": ["aw:open:no_such_module"]},
     "no awareness module 'aw:open:no_such_module' in 'en'"),
    ({"en": "hi", "buttons": "aw:open:what_is_trafficking"}, "buttons must be a list"),
    ({"en": "hi", "buttons": ["aw:open:what_is_trafficking"] * 4}, "at most 3"),
    ({"en": "hi", "window": "9-21"}, "window: expected HH:MM-HH:MM"),
    ({"en": "hi", "max_handoffs_per_hour": 0}, "max_handoffs_per_hour must be"),
])
def test_problems_are_named(content: ContentLibrary, raw: object, problem: str) -> None:
    with pytest.raises(MessageFileError) as error:
        parse(raw, content)
    assert problem in str(error.value)


def test_an_unreadable_file_is_an_error(content: ContentLibrary, tmp_path: Path) -> None:
    with pytest.raises(MessageFileError, match="cannot read"):
        load(tmp_path / "missing.yml", content)
    (tmp_path / "bad.yml").write_text("ar: [unclosed", encoding="utf-8")
    with pytest.raises(MessageFileError, match="not valid YAML"):
        load(tmp_path / "bad.yml", content)


@pytest.mark.parametrize(("window", "utc_time", "inside"), [
    ("09:00-21:00", "06:59", False),  # 08:59 in Cairo (UTC+2 in winter)
    ("09:00-21:00", "07:00", True),
    ("09:00-21:00", "18:59", True),
    ("09:00-21:00", "19:00", False),  # 21:00 in Cairo: closed
    ("22:00-06:00", "21:00", True),  # 23:00, a window across midnight
    ("22:00-06:00", "05:00", False),  # 07:00
    ("00:00-24:00", "12:00", True),
    (None, "01:00", True),
])
def test_quiet_hours_in_cairo(window: str | None, utc_time: str, inside: bool) -> None:
    hour, minute = (int(p) for p in utc_time.split(":"))
    moment = datetime(2025, 1, 15, hour, minute, tzinfo=UTC)
    assert is_open(window, "Africa/Cairo", moment) is inside


@pytest.mark.parametrize("bad", ["", "9:00", "25:00-26:00", "10:00-10:00", "10:60-11:00"])
def test_bad_windows(bad: str) -> None:
    with pytest.raises(WindowError):
        parse_window(bad)
